/* vctest=vsock: a stream connection each way through the VMM's hybrid vsock.
 *   1. guest -> host: connect to CID 2 port vsock_port= (the host test listens on <uds>_<port>),
 *      send bytes, read the echo, compare, shut down.
 *   2. host -> guest: print "LISTEN <port>" (vsock_listen=), accept the connection the host makes
 *      with "CONNECT <port>", echo one line back, shut down. */
#include "rt.h"
#include "tests.h"
#include "virtio.h"

#define OP_REQUEST 1
#define OP_RESPONSE 2
#define OP_RST 3
#define OP_SHUTDOWN 4
#define OP_RW 5
#define OP_CREDIT_UPDATE 6
#define OP_CREDIT_REQUEST 7
#define TYPE_STREAM 1
#define HOST_CID 2
#define BUF_ALLOC 65536
#define RX_BUFS 16
#define RX_BUF_SIZE 4096

struct __attribute__((packed)) hdr {
  uint64_t src_cid, dst_cid;
  uint32_t src_port, dst_port, len;
  uint16_t type, op;
  uint32_t flags, buf_alloc, fwd_cnt;
};

struct conn {
  uint32_t local, peer;
  uint32_t fwd_cnt; /* payload bytes we consumed: tells the peer how much credit we returned */
};

static struct vdev g_dev;
static uint64_t g_cid;
static uint8_t g_rx[RX_BUFS][RX_BUF_SIZE] __attribute__((aligned(4096)));
static uint8_t g_tx[RX_BUF_SIZE] __attribute__((aligned(4096)));
static uint8_t g_event[8][8];

static bool setup(void) {
  if (!virtio_find(VIRTIO_ID_VSOCK, 0, &g_dev)) {
    check(false, "vsock.found", "no virtio-vsock device");
    return false;
  }
  if (!virtio_init(&g_dev, 0, 3)) return false;
  g_cid = virtio_read(&g_dev, 0x100) | (uint64_t)virtio_read(&g_dev, 0x104) << 32;
  struct vq* rx = &g_dev.q[0];
  for (uint16_t i = 0; i < RX_BUFS; i++) {
    struct vbuf b = {(uint64_t)(uintptr_t)g_rx[i], RX_BUF_SIZE, true};
    vq_fill(rx, i, &b, 1);
    vq_publish(rx, i);
  }
  struct vq* ev = &g_dev.q[2];
  for (uint16_t i = 0; i < 8; i++) {
    struct vbuf b = {(uint64_t)(uintptr_t)g_event[i], 8, true};
    vq_fill(ev, i, &b, 1);
    vq_publish(ev, i);
  }
  vq_kick(rx);
  vq_kick(ev);
  return true;
}

static bool send(const struct conn* c, uint16_t op, uint32_t flags, const void* data, uint32_t len) {
  struct hdr* h = (struct hdr*)g_tx;
  memset(h, 0, sizeof *h);
  h->src_cid = g_cid;
  h->dst_cid = HOST_CID;
  h->src_port = c->local;
  h->dst_port = c->peer;
  h->len = len;
  h->type = TYPE_STREAM;
  h->op = op;
  h->flags = flags;
  h->buf_alloc = BUF_ALLOC;
  h->fwd_cnt = c->fwd_cnt;
  memcpy(g_tx + sizeof *h, data, len);
  struct vq* tx = &g_dev.q[1];
  struct vbuf b = {(uint64_t)(uintptr_t)g_tx, (uint32_t)sizeof *h + len, false};
  vq_add(tx, &b, 1);
  vq_kick(tx);
  struct vring_used_elem e;
  return vq_wait(tx, &e, 2000000); /* g_tx is reused: wait until the device has read it */
}

/* The next packet for us, header into *h and payload into data (up to cap bytes). */
static bool recv(struct hdr* h, uint8_t* data, uint32_t cap, uint64_t us) {
  struct vq* rx = &g_dev.q[0];
  struct vring_used_elem e;
  if (!vq_wait(rx, &e, us)) return false;
  const uint16_t i = (uint16_t)e.id;
  if (i >= RX_BUFS || e.len < sizeof *h) {
    check(false, "vsock.rx_used", "used id %u len %u", e.id, e.len);
    return false;
  }
  memcpy(h, g_rx[i], sizeof *h);
  uint32_t n = h->len < cap ? h->len : cap;
  if (n > e.len - sizeof *h) n = e.len - (uint32_t)sizeof *h;
  memcpy(data, g_rx[i] + sizeof *h, n);
  h->len = n;
  vq_publish(rx, i); /* hand the buffer back at once */
  vq_kick(rx);
  return true;
}

/* Receives on connection c until at least `want` payload bytes arrived or `cap` is full (answering
 * credit requests); returns the bytes received. A packet's payload is never split: it all lands
 * in `out` when it fits, so the caller may ask for "at least 1 byte". */
static uint32_t recv_bytes(struct conn* c, uint8_t* out, uint32_t want, uint32_t cap, uint64_t us) {
  uint32_t got = 0;
  struct hdr h;
  static uint8_t payload[RX_BUF_SIZE];
  while (got < want && recv(&h, payload, sizeof payload, us)) {
    if (h.src_port != c->peer || h.dst_port != c->local) continue;
    if (h.op == OP_CREDIT_REQUEST) send(c, OP_CREDIT_UPDATE, 0, 0, 0);
    if (h.op == OP_RST || h.op == OP_SHUTDOWN) break;
    if (h.op != OP_RW) continue;
    uint32_t n = h.len < cap - got ? h.len : cap - got;
    memcpy(out + got, payload, n);
    got += n;
    c->fwd_cnt += h.len;
  }
  return got;
}

static void close_conn(struct conn* c) {
  send(c, OP_SHUTDOWN, 3, 0, 0);
  struct hdr h;
  uint8_t scratch[64];
  /* The peer answers a full shutdown with RST (or its own SHUTDOWN, which we answer with RST). */
  for (int i = 0; i < 8 && recv(&h, scratch, sizeof scratch, 2000000); i++) {
    if (h.src_port != c->peer || h.dst_port != c->local) continue;
    if (h.op == OP_SHUTDOWN) send(c, OP_RST, 0, 0, 0);
    if (h.op == OP_RST || h.op == OP_SHUTDOWN) return;
  }
}

static void guest_to_host(void) {
  struct conn c = {40000, (uint32_t)cmdline_u64("vsock_port", 5001), 0};
  struct hdr h;
  uint8_t scratch[64];
  send(&c, OP_REQUEST, 0, 0, 0);
  bool answered = false, accepted = false;
  while (recv(&h, scratch, sizeof scratch, 3000000)) {
    if (h.src_port != c.peer || h.dst_port != c.local) continue;
    answered = true;
    accepted = h.op == OP_RESPONSE;
    break;
  }
  check(accepted, "vsock.connect", answered ? "host answered op %u" : "no answer from host port %u",
        answered ? h.op : c.peer);
  if (!accepted) return;
  /* 3000 bytes in packets of 1000: more than one rx buffer's worth on the way back. */
  static uint8_t out[3000], back[3000];
  for (unsigned i = 0; i < sizeof out; i++) out[i] = (uint8_t)('a' + i % 26);
  for (unsigned off = 0; off < sizeof out; off += 1000) send(&c, OP_RW, 0, out + off, 1000);
  uint32_t got = recv_bytes(&c, back, sizeof back, sizeof back, 3000000);
  check(got == sizeof out && memcmp(out, back, sizeof out) == 0, "vsock.guest_to_host_echo",
        "%u of %u bytes echoed intact", got, (unsigned)sizeof out);
  close_conn(&c);
}

static void host_to_guest(void) {
  const uint32_t port = (uint32_t)cmdline_u64("vsock_listen", 5000);
  gprintf("LISTEN %u\n", port);
  struct hdr h;
  uint8_t scratch[64];
  struct conn c = {port, 0, 0};
  bool requested = false;
  while (recv(&h, scratch, sizeof scratch, 10000000)) {
    if (h.op == OP_REQUEST && h.dst_port == port && h.src_cid == HOST_CID) {
      requested = true;
      c.peer = h.src_port;
      break;
    }
  }
  check(requested, "vsock.accept", "no connection request for port %u", port);
  if (!requested) return;
  send(&c, OP_RESPONSE, 0, 0, 0);
  /* The host sends one line; we send it back reversed in case (so an echo of the host's own
   * bytes by some loop elsewhere would not pass). */
  static uint8_t line[256];
  uint32_t got = 0;
  while (got < sizeof line) {
    uint32_t n = recv_bytes(&c, line + got, 1, sizeof line - got, 5000000);
    if (n == 0) break;
    got += n;
    if (line[got - 1] == '\n') break;
  }
  for (uint32_t i = 0; i < got; i++) {
    uint8_t ch = line[i];
    if (ch >= 'a' && ch <= 'z') line[i] = (uint8_t)(ch - 32);
    else if (ch >= 'A' && ch <= 'Z') line[i] = (uint8_t)(ch + 32);
  }
  check(got > 0 && line[got - 1] == '\n', "vsock.host_line", "%u bytes, no newline", got);
  send(&c, OP_RW, 0, line, got);
  close_conn(&c);
  gprintf("PASS vsock.host_to_guest\n");
}

void test_vsock(void) {
  if (!setup()) return;
  gprintf("vsock: guest cid %lu\n", g_cid);
  guest_to_host();
  host_to_guest();
}
