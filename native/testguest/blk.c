/* virtio-blk tests.
 *   vctest=blk: read the sectors the host patterned, write two, flush, read them back, GET_ID.
 *   vctest=badchain: malformed descriptor chains fail on their own (zero bytes used, status
 *     untouched) and the device keeps serving the next, well-formed request.
 *   vctest=hotplug: a free slot gets a disk through the control socket while the guest waits.
 * Host pattern: byte j of sector s is (s * 31 + j) & 0xff; the guest writes (s * 17 + j * 3 + 1). */
#include "rt.h"
#include "tests.h"
#include "virtio.h"

#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_GET_ID 8
#define F_FLUSH (1ull << 9)
#define SECTOR 512

struct req {
  uint32_t type, reserved;
  uint64_t sector;
};

static struct req g_req __attribute__((aligned(16)));
static uint8_t g_data[4 * SECTOR] __attribute__((aligned(4096)));
static volatile uint8_t g_status;

static uint8_t host_pattern(uint64_t s, unsigned j) { return (uint8_t)(s * 31 + j); }
static uint8_t guest_pattern(uint64_t s, unsigned j) { return (uint8_t)(s * 17 + j * 3 + 1); }

static uint64_t capacity(const struct vdev* d) {
  return virtio_read(d, 0x100) | (uint64_t)virtio_read(d, 0x104) << 32;
}

/* One request; returns the used length (-1 on timeout), the status byte in *status. */
static int64_t blk_io(struct vdev* d, uint32_t type, uint64_t sector, uint32_t len, uint8_t* status) {
  g_req.type = type;
  g_req.reserved = 0;
  g_req.sector = sector;
  g_status = 0xee;
  struct vbuf b[3];
  unsigned n = 0;
  b[n++] = (struct vbuf){(uint64_t)(uintptr_t)&g_req, sizeof g_req, false};
  if (len) b[n++] = (struct vbuf){(uint64_t)(uintptr_t)g_data, len, type != T_OUT};
  b[n++] = (struct vbuf){(uint64_t)(uintptr_t)&g_status, 1, true};
  vq_add(&d->q[0], b, n);
  vq_kick(&d->q[0]);
  struct vring_used_elem e;
  if (!vq_wait(&d->q[0], &e, 3000000)) return -1;
  *status = g_status;
  return e.len;
}

static bool open_blk(unsigned nth, struct vdev* d) {
  if (!virtio_find(VIRTIO_ID_BLOCK, nth, d)) {
    check(false, "blk.found", "no virtio-blk device #%u", nth);
    return false;
  }
  return virtio_init(d, 0, 1);
}

static bool sectors_match(uint64_t first, unsigned count, uint8_t (*pattern)(uint64_t, unsigned)) {
  for (unsigned s = 0; s < count; s++)
    for (unsigned j = 0; j < SECTOR; j++)
      if (g_data[s * SECTOR + j] != pattern(first + s, j)) return false;
  return true;
}

static void check_id(struct vdev* d, const char* want, const char* what) {
  uint8_t st = 0;
  memset(g_data, 0, 20);
  int64_t len = blk_io(d, T_GET_ID, 0, 20, &st);
  char got[21];
  memcpy(got, g_data, 20);
  got[20] = 0;
  check(st == 0 && len > 0 && strncmp(got, want, 21) == 0, what, "status %u, id \"%s\", expected \"%s\"", st, got,
        want);
}

void test_blk(void) {
  struct vdev d;
  if (!open_blk(0, &d)) return;
  const uint64_t cap = capacity(&d), want = cmdline_u64("expect_sectors", 0);
  check(cap == want, "blk.capacity", "%lu sectors, expected %lu", cap, want);
  uint8_t st = 0;
  int64_t len = blk_io(&d, T_IN, 0, 2 * SECTOR, &st);
  check(len == 2 * SECTOR + 1 && st == 0 && sectors_match(0, 2, host_pattern), "blk.read",
        "used %ld, status %u, or data differs", len, st);
  for (unsigned s = 0; s < 2; s++)
    for (unsigned j = 0; j < SECTOR; j++) g_data[s * SECTOR + j] = guest_pattern(4 + s, j);
  len = blk_io(&d, T_OUT, 4, 2 * SECTOR, &st);
  check(len >= 1 && st == 0, "blk.write", "used %ld, status %u", len, st);
  len = blk_io(&d, T_FLUSH, 0, 0, &st);
  check(len >= 1 && st == 0, "blk.flush", "used %ld, status %u", len, st);
  memset(g_data, 0, sizeof g_data);
  len = blk_io(&d, T_IN, 4, 2 * SECTOR, &st);
  check(st == 0 && sectors_match(4, 2, guest_pattern), "blk.read_back", "status %u or data differs", st);
  len = blk_io(&d, T_IN, cap, SECTOR, &st);
  check(st == 1, "blk.read_past_end", "status %u, expected IOERR (1)", st);
  char serial[24];
  if (cmdline_get("expect_serial", serial, sizeof serial)) check_id(&d, serial, "blk.get_id");
}

/* Submits a chain whose descriptors are written by hand, and expects it back unused. */
static void expect_rejected(struct vdev* d, const char* what, void (*mangle)(struct vq* q, uint16_t head)) {
  struct vq* q = &d->q[0];
  const uint16_t head = q->next_desc;
  struct vbuf b[3] = {{(uint64_t)(uintptr_t)&g_req, sizeof g_req, false},
                      {(uint64_t)(uintptr_t)g_data, SECTOR, true},
                      {(uint64_t)(uintptr_t)&g_status, 1, true}};
  g_req.type = T_IN;
  g_req.sector = 0;
  g_status = 0xee;
  vq_fill(q, head, b, 3);
  mangle(q, head);
  q->next_desc = (uint16_t)((head + 3) % q->size);
  vq_publish(q, head);
  vq_kick(q);
  struct vring_used_elem e;
  bool used = vq_wait(q, &e, 3000000);
  check(used && e.id == head && e.len == 0 && g_status == 0xee, what,
        "used=%d id=%u len=%u status=0x%x (expected the chain back with 0 bytes, status untouched)", used,
        used ? e.id : 0, used ? e.len : 0, g_status);
}

static void outside_ram(struct vq* q, uint16_t head) { q->desc[(head + 1) % q->size].addr = 0x7f0000000000ull; }
static void next_out_of_range(struct vq* q, uint16_t head) { q->desc[(head + 1) % q->size].next = 0x7fff; }
/* The status descriptor chains back to the data descriptor: writable -> writable forever. */
static void loops(struct vq* q, uint16_t head) {
  q->desc[(head + 2) % q->size].flags |= VRING_DESC_F_NEXT;
  q->desc[(head + 2) % q->size].next = (uint16_t)((head + 1) % q->size);
}
/* A device-readable descriptor after a device-writable one (the status byte made readable). */
static void write_before_read(struct vq* q, uint16_t head) {
  q->desc[(head + 2) % q->size].flags &= (uint16_t)~VRING_DESC_F_WRITE;
}
static void wrapping_len(struct vq* q, uint16_t head) {
  q->desc[(head + 1) % q->size].addr = 0xfffffffffffff000ull;
  q->desc[(head + 1) % q->size].len = 0x2000;
}

void test_badchain(void) {
  struct vdev d;
  if (!open_blk(0, &d)) return;
  expect_rejected(&d, "badchain.buffer_outside_ram", outside_ram);
  expect_rejected(&d, "badchain.next_out_of_range", next_out_of_range);
  expect_rejected(&d, "badchain.descriptor_loop", loops);
  expect_rejected(&d, "badchain.readable_after_writable", write_before_read);
  expect_rejected(&d, "badchain.address_wraps", wrapping_len);
  /* The device must still be healthy: no DEVICE_NEEDS_RESET, and a good request works. */
  check(!(virtio_status(&d) & 64), "badchain.no_reset_needed", "status 0x%x has DEVICE_NEEDS_RESET",
        virtio_status(&d));
  uint8_t st = 0;
  int64_t len = blk_io(&d, T_IN, 0, SECTOR, &st);
  check(len == SECTOR + 1 && st == 0 && sectors_match(0, 1, host_pattern), "badchain.good_request_after",
        "used %ld, status %u", len, st);
}

void test_hotplug(void) {
  /* Find the empty slot (capacity 0) among the block devices. */
  struct vdev d;
  bool found = false;
  for (unsigned nth = 0; nth < VIRTIO_MAX_SLOTS && !found; nth++) {
    if (!virtio_find(VIRTIO_ID_BLOCK, nth, &d)) break;
    found = capacity(&d) == 0;
  }
  check(found, "hotplug.empty_slot", "no block slot with capacity 0");
  if (!found || !virtio_init(&d, 0, 1)) return;
  const uint32_t gen0 = virtio_read(&d, 0x0fc);
  gprintf("HOTPLUG waiting slot %u\n", d.slot);
  const uint64_t end = rdtsc() + 20000000ull * tsc_khz() / 1000;
  uint64_t cap = 0;
  while ((cap = capacity(&d)) == 0 && rdtsc() < end) delay_us(2000);
  check(cap == cmdline_u64("expect_sectors", 0), "hotplug.capacity", "%lu sectors after attach", cap);
  check(virtio_read(&d, 0x0fc) != gen0, "hotplug.config_generation", "ConfigGeneration did not change");
  if (!cap) return;
  uint8_t st = 0;
  int64_t len = blk_io(&d, T_IN, 1, SECTOR, &st);
  check(len == SECTOR + 1 && st == 0 && sectors_match(1, 1, host_pattern), "hotplug.read", "used %ld, status %u",
        len, st);
  char serial[24];
  if (cmdline_get("expect_serial", serial, sizeof serial)) check_id(&d, serial, "hotplug.get_id");
}
