#include "virtio.h"

#include "tests.h"

/* virtio-mmio registers (virtio 1.2 §4.2.2) */
#define REG_MAGIC 0x000
#define REG_VERSION 0x004
#define REG_DEVICE_ID 0x008
#define REG_DEVICE_FEATURES 0x010
#define REG_DEVICE_FEATURES_SEL 0x014
#define REG_DRIVER_FEATURES 0x020
#define REG_DRIVER_FEATURES_SEL 0x024
#define REG_QUEUE_SEL 0x030
#define REG_QUEUE_NUM_MAX 0x034
#define REG_QUEUE_NUM 0x038
#define REG_QUEUE_READY 0x044
#define REG_QUEUE_NOTIFY 0x050
#define REG_STATUS 0x070
#define REG_QUEUE_DESC_LOW 0x080
#define REG_QUEUE_DESC_HIGH 0x084
#define REG_QUEUE_DRIVER_LOW 0x090
#define REG_QUEUE_DRIVER_HIGH 0x094
#define REG_QUEUE_DEVICE_LOW 0x0a0
#define REG_QUEUE_DEVICE_HIGH 0x0a4

#define STATUS_ACK 1
#define STATUS_DRIVER 2
#define STATUS_DRIVER_OK 4
#define STATUS_FEATURES_OK 8
#define F_VERSION_1 (1ull << 32)

/* Ring memory: one 4 KiB page per queue (descriptors at 0, avail ring at 1 KiB, used at 2 KiB). */
static uint8_t g_rings[16][4096] __attribute__((aligned(4096)));
static unsigned g_rings_used;

uint32_t virtio_read(const struct vdev* d, uint32_t reg) { return mmio_read32(d->base + reg); }
void virtio_write(const struct vdev* d, uint32_t reg, uint32_t value) { mmio_write32(d->base + reg, value); }
uint32_t virtio_status(const struct vdev* d) { return virtio_read(d, REG_STATUS); }

bool virtio_find(uint32_t device_id, unsigned nth, struct vdev* d) {
  for (uint32_t slot = 0; slot < VIRTIO_MAX_SLOTS; slot++) {
    const uint64_t base = VIRTIO_MMIO_BASE + (uint64_t)slot * VIRTIO_SLOT_SIZE;
    /* An unmapped slot reads as all ones: the end of the populated slots. */
    if (mmio_read32(base + REG_MAGIC) != VIRTIO_MAGIC) return false;
    if (mmio_read32(base + REG_DEVICE_ID) != device_id) continue;
    if (nth--) continue;
    memset(d, 0, sizeof *d);
    d->base = base;
    d->slot = slot;
    d->device_id = device_id;
    return true;
  }
  return false;
}

bool virtio_init(struct vdev* d, uint64_t features, unsigned nq) {
  if (virtio_read(d, REG_VERSION) != 2) {
    check(false, "virtio.version", "slot %u: version %u, expected 2", d->slot, virtio_read(d, REG_VERSION));
    return false;
  }
  virtio_write(d, REG_STATUS, 0);
  virtio_write(d, REG_STATUS, STATUS_ACK | STATUS_DRIVER);
  virtio_write(d, REG_DEVICE_FEATURES_SEL, 0);
  uint64_t offered = virtio_read(d, REG_DEVICE_FEATURES);
  virtio_write(d, REG_DEVICE_FEATURES_SEL, 1);
  offered |= (uint64_t)virtio_read(d, REG_DEVICE_FEATURES) << 32;
  const uint64_t want = features | F_VERSION_1;
  if ((offered & want) != want) {
    check(false, "virtio.features", "slot %u offers 0x%lx, need 0x%lx", d->slot, offered, want);
    return false;
  }
  virtio_write(d, REG_DRIVER_FEATURES_SEL, 0);
  virtio_write(d, REG_DRIVER_FEATURES, (uint32_t)want);
  virtio_write(d, REG_DRIVER_FEATURES_SEL, 1);
  virtio_write(d, REG_DRIVER_FEATURES, (uint32_t)(want >> 32));
  virtio_write(d, REG_STATUS, STATUS_ACK | STATUS_DRIVER | STATUS_FEATURES_OK);
  if (!(virtio_status(d) & STATUS_FEATURES_OK)) {
    check(false, "virtio.features_ok", "slot %u refused features 0x%lx", d->slot, want);
    return false;
  }
  d->nq = nq;
  for (unsigned i = 0; i < nq; i++) {
    struct vq* q = &d->q[i];
    virtio_write(d, REG_QUEUE_SEL, i);
    uint32_t max = virtio_read(d, REG_QUEUE_NUM_MAX);
    if (max == 0 || g_rings_used >= sizeof g_rings / sizeof g_rings[0]) {
      check(false, "virtio.queue", "slot %u queue %u: QueueNumMax %u", d->slot, i, max);
      return false;
    }
    uint8_t* mem = g_rings[g_rings_used++];
    memset(mem, 0, 4096);
    q->size = max < VQ_SIZE ? (uint16_t)max : VQ_SIZE;
    q->index = (uint16_t)i;
    q->desc = (volatile struct vring_desc*)mem;
    q->avail = (volatile uint16_t*)(mem + 1024);
    q->used = (volatile uint16_t*)(mem + 2048);
    q->avail[0] = VRING_AVAIL_F_NO_INTERRUPT;
    q->notify = d->base + REG_QUEUE_NOTIFY;
    virtio_write(d, REG_QUEUE_NUM, q->size);
    virtio_write(d, REG_QUEUE_DESC_LOW, (uint32_t)(uintptr_t)q->desc);
    virtio_write(d, REG_QUEUE_DESC_HIGH, 0);
    virtio_write(d, REG_QUEUE_DRIVER_LOW, (uint32_t)(uintptr_t)q->avail);
    virtio_write(d, REG_QUEUE_DRIVER_HIGH, 0);
    virtio_write(d, REG_QUEUE_DEVICE_LOW, (uint32_t)(uintptr_t)q->used);
    virtio_write(d, REG_QUEUE_DEVICE_HIGH, 0);
    virtio_write(d, REG_QUEUE_READY, 1);
  }
  virtio_write(d, REG_STATUS, STATUS_ACK | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK);
  return true;
}

void vq_fill(struct vq* q, uint16_t head, const struct vbuf* bufs, unsigned n) {
  for (unsigned i = 0; i < n; i++) {
    const uint16_t at = (uint16_t)((head + i) % q->size);
    q->desc[at].addr = bufs[i].addr;
    q->desc[at].len = bufs[i].len;
    q->desc[at].flags = (uint16_t)((bufs[i].device_writes ? VRING_DESC_F_WRITE : 0) | (i + 1 < n ? VRING_DESC_F_NEXT : 0));
    q->desc[at].next = (uint16_t)((head + i + 1) % q->size);
  }
}

void vq_publish(struct vq* q, uint16_t head) {
  q->avail[2 + q->avail_idx % q->size] = head;
  barrier(); /* the ring entry before the index that publishes it (x86 keeps store order) */
  q->avail_idx++;
  q->avail[1] = q->avail_idx;
  barrier();
}

uint16_t vq_add(struct vq* q, const struct vbuf* bufs, unsigned n) {
  const uint16_t head = q->next_desc;
  q->next_desc = (uint16_t)((q->next_desc + n) % q->size);
  vq_fill(q, head, bufs, n);
  vq_publish(q, head);
  return head;
}

void vq_kick(struct vq* q) { mmio_write32(q->notify, q->index); }

bool vq_poll(struct vq* q, struct vring_used_elem* out) {
  barrier();
  if (q->used[1] == q->used_seen) return false;
  barrier();
  const volatile struct vring_used_elem* ring = (const volatile struct vring_used_elem*)(q->used + 2);
  out->id = ring[q->used_seen % q->size].id;
  out->len = ring[q->used_seen % q->size].len;
  q->used_seen++;
  return true;
}

bool vq_wait(struct vq* q, struct vring_used_elem* out, uint64_t us) {
  const uint64_t end = rdtsc() + us * tsc_khz() / 1000;
  do {
    if (vq_poll(q, out)) return true;
    cpu_relax();
  } while (rdtsc() < end);
  return false;
}

/* vctest=rng: 64 bytes from virtio-rng, not all equal. */
void test_rng(void) {
  struct vdev d;
  if (!virtio_find(VIRTIO_ID_RNG, 0, &d)) {
    check(false, "rng.found", "no virtio-rng device");
    return;
  }
  if (!virtio_init(&d, 0, 1)) return;
  static uint8_t buf[64];
  memset(buf, 0, sizeof buf);
  struct vbuf b = {(uint64_t)(uintptr_t)buf, sizeof buf, true};
  vq_add(&d.q[0], &b, 1);
  vq_kick(&d.q[0]);
  struct vring_used_elem e;
  bool done = vq_wait(&d.q[0], &e, 2000000);
  unsigned distinct = 0;
  for (unsigned i = 1; i < sizeof buf; i++) distinct += buf[i] != buf[0];
  check(done && e.len == sizeof buf && distinct > 0, "rng.read", "used=%d len=%u distinct=%u", done, done ? e.len : 0,
        distinct);
}
