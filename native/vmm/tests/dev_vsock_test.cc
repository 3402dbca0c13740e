// virtio-vsock with the hybrid Unix-socket backend, end to end: a fake guest driver on one side,
// real Unix sockets (a host listener, a host client) on the other.
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <map>
#include <string>
#include <vector>

#include "backends/vsock_unix.h"
#include "devices/event_loop.h"
#include "devices/interrupt.h"
#include "devices/virtio/mmio.h"
#include "devices/virtio/vsock.h"
#include "tests/check.h"
#include "tests/virtio_driver.h"

using namespace vmm::virtio;
using vmm::CountingInterrupt;
using vmm::EventLoop;
using vmm::VsockUnixBackend;
using vmm::test::kModernRing;
using vmm::test::MmioDriver;
using vmm::test::TestRam;
using vmm::test::TestRing;

namespace {

constexpr uint64_t kGuestCid = 3;
constexpr uint64_t kRxBufs = 0x100000, kTxBufs = 0x200000;

struct Packet {
  VsockHeader hdr{};
  std::string data;
};

// How the fake guest lays out packets: Linux >= 6.2 puts a whole rx buffer in one descriptor;
// older kernels (Debian's 6.1) use a 44-byte header descriptor plus a payload descriptor.
enum class Framing { kOneDescriptor, kHeaderThenPayload, kOddSplit };

int unix_listen(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  unlink(path.c_str());
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, 8) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

int unix_connect(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// Reads whatever arrives on a host socket within timeout_ms; "<EOF>" is appended at end of stream
// and "<RESET>" when the other end closed with bytes it had not read.
std::string host_read(int fd, int timeout_ms = 200, size_t want = 0) {
  std::string out;
  pollfd p{fd, POLLIN, 0};
  while (poll(&p, 1, timeout_ms) == 1) {
    char buf[65536];
    ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n == 0) return out + "<EOF>";
    if (n < 0 && errno == ECONNRESET) return out + "<RESET>";
    if (n < 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (want && out.size() >= want) break;
  }
  return out;
}

struct Fixture {
  explicit Fixture(Framing rx_framing = Framing::kOneDescriptor)
      : ram(4 << 20), backend(&loop, make_dir() + "/vsock.sock"), dev(kGuestCid, &backend),
        t(ram.mem, &dev, &irq), d(&t), rx(&ram, 0x10000, 16), tx(&ram, 0x20000, 16), ev(&ram, 0x30000, 4),
        framing(rx_framing) {
    path = dir + "/vsock.sock";
    std::string error;
    CHECK(backend.listen(&error));
    CHECK(d.negotiate(kModernRing));
    d.setup_queue(0, rx);
    d.setup_queue(1, tx);
    d.setup_queue(2, ev);
    d.driver_ok();
    post_rx_buffers();
  }
  ~Fixture() {
    std::string cmd = "rm -rf " + dir;
    if (system(cmd.c_str()) != 0) std::printf("# could not remove %s\n", dir.c_str());
  }
  std::string make_dir() {
    char tmpl[] = "/tmp/vc-vsock-XXXXXX";
    dir = mkdtemp(tmpl);
    return dir;
  }

  void post_rx_buffers() {
    uint16_t count = framing == Framing::kOneDescriptor ? 16 : 8;
    for (uint16_t i = 0; i < count; i++) {
      uint64_t addr = kRxBufs + i * 0x2000ull;
      if (framing == Framing::kOneDescriptor) {
        rx.set_desc(i, addr, 4096, kDescFWrite);
        rx_bufs[i] = {addr, addr + sizeof(VsockHeader)};
        rx.publish(i);
      } else {
        uint16_t h = static_cast<uint16_t>(2 * i);
        rx.set_desc(h, addr, sizeof(VsockHeader), kDescFWrite | kDescFNext, static_cast<uint16_t>(h + 1));
        rx.set_desc(static_cast<uint16_t>(h + 1), addr + 0x100, 4096, kDescFWrite);
        rx_bufs[h] = {addr, addr + 0x100};
        rx.publish(h);
      }
    }
    d.kick(0);
  }

  void send(VsockHeader hdr, const std::string& data = "", Framing how = Framing::kHeaderThenPayload) {
    hdr.len = static_cast<uint32_t>(data.size());
    send_raw(hdr, data, how);
  }
  // Puts a packet on the tx queue as the guest would (header.len as given) and kicks.
  void send_raw(const VsockHeader& hdr, const std::string& data, Framing how) {
    uint16_t base = static_cast<uint16_t>((tx_count % 4) * 4);
    uint64_t at = kTxBufs + (tx_count % 4) * 0x20000ull;
    tx_count++;
    ram.mem.write(at, &hdr, sizeof(hdr));
    ram.mem.write(at + sizeof(hdr), data.data(), data.size());
    uint32_t total = static_cast<uint32_t>(sizeof(hdr) + data.size());
    if (how == Framing::kOneDescriptor || data.empty()) {
      tx.set_desc(base, at, how == Framing::kOddSplit && data.empty() ? 10 : total,
                  how == Framing::kOddSplit && data.empty() ? kDescFNext : 0, static_cast<uint16_t>(base + 1));
      if (how == Framing::kOddSplit && data.empty()) tx.set_desc(static_cast<uint16_t>(base + 1), at + 10, total - 10);
    } else if (how == Framing::kHeaderThenPayload) {
      tx.set_desc(base, at, sizeof(hdr), kDescFNext, static_cast<uint16_t>(base + 1));
      tx.set_desc(static_cast<uint16_t>(base + 1), at + sizeof(hdr), static_cast<uint32_t>(data.size()));
    } else {  // 10 bytes, then the rest of the header with the first payload byte, then the rest
      tx.set_desc(base, at, 10, kDescFNext, static_cast<uint16_t>(base + 1));
      tx.set_desc(static_cast<uint16_t>(base + 1), at + 10, sizeof(hdr) - 10 + 1, kDescFNext, static_cast<uint16_t>(base + 2));
      if (data.size() > 1)
        tx.set_desc(static_cast<uint16_t>(base + 2), at + sizeof(hdr) + 1, static_cast<uint32_t>(data.size() - 1));
      else
        tx.set_desc(static_cast<uint16_t>(base + 1), at + 10, sizeof(hdr) - 10 + 1);
    }
    tx.publish(base);
    d.kick(1);
  }

  // The next packet the device put on the rx ring (the buffer goes straight back to the ring).
  bool recv(Packet* p) {
    if (rx.used_seen == rx.used_idx()) return false;
    uint16_t i = rx.used_seen++;
    uint16_t head = static_cast<uint16_t>(rx.used_id(i));
    uint32_t len = rx.used_len(i);
    auto [hdr_at, data_at] = rx_bufs[head];
    ram.mem.read(hdr_at, &p->hdr, sizeof(p->hdr));
    p->data.assign(reinterpret_cast<char*>(&ram.bytes[data_at]), p->hdr.len);
    CHECK_EQ(len, sizeof(VsockHeader) + p->hdr.len);
    CHECK_EQ(p->hdr.dst_cid, kGuestCid);
    CHECK_EQ(p->hdr.src_cid, kVsockHostCid);
    rx.publish(head);
    d.kick(0);
    return true;
  }
  // Runs the backend's event loop until a packet arrives for the guest (or the time is up).
  bool pump_recv(Packet* p, int timeout_ms = 1000) {
    for (int waited = 0; waited <= timeout_ms; waited += 10) {
      if (recv(p)) return true;
      loop.run_once(10);
    }
    return recv(p);
  }
  void pump(int ms = 50) {
    for (int i = 0; i < ms / 10; i++) loop.run_once(10);
  }

  VsockHeader guest_hdr(uint16_t op, uint32_t guest_port, uint32_t host_port) const {
    VsockHeader h{};
    h.src_cid = kGuestCid;
    h.dst_cid = kVsockHostCid;
    h.src_port = guest_port;
    h.dst_port = host_port;
    h.type = kVsockTypeStream;
    h.op = op;
    h.buf_alloc = guest_buf_alloc;
    h.fwd_cnt = guest_fwd_cnt;
    return h;
  }

  std::string dir, path;
  TestRam ram;
  EventLoop loop;
  VsockUnixBackend backend;
  VsockDevice dev;
  CountingInterrupt irq;
  MmioTransport t;
  MmioDriver d;
  TestRing rx, tx, ev;
  Framing framing;
  std::map<uint16_t, std::pair<uint64_t, uint64_t>> rx_bufs;  // head -> (header, payload)
  uint32_t tx_count = 0;
  uint32_t guest_buf_alloc = 64 * 1024;
  uint32_t guest_fwd_cnt = 0;
};

// Guest port 5000 connects to host port 1234, where a host program listens; returns the host
// side of the connection.
int guest_connects(Fixture& f, int listener, uint32_t guest_port = 5000) {
  f.send(f.guest_hdr(kVsockOpRequest, guest_port, 1234));
  Packet p;
  CHECK(f.recv(&p));
  CHECK_EQ(p.hdr.op, kVsockOpResponse);
  CHECK_EQ(p.hdr.src_port, 1234u);
  CHECK_EQ(p.hdr.dst_port, guest_port);
  CHECK_EQ(p.hdr.buf_alloc, VsockUnixBackend::kBufAlloc);
  return accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
}

}  // namespace

VMM_TEST(dev_vsock_config_holds_the_guest_cid) {
  Fixture f;
  uint64_t cid = 0;
  f.t.read(0x100, reinterpret_cast<uint8_t*>(&cid), 8);
  CHECK_EQ(cid, kGuestCid);
  CHECK_EQ(f.d.r(0x008), 19u);
}

VMM_TEST(dev_vsock_guest_connects_to_socket_underscore_port) {
  Fixture f;
  int listener = unix_listen(f.path + "_1234");
  CHECK(listener >= 0);
  int host = guest_connects(f, listener);
  CHECK(host >= 0);
  CHECK_EQ(f.backend.connection_count(), size_t{1});
  f.send(f.guest_hdr(kVsockOpRw, 5000, 1234), "hello from the guest");
  CHECK(host_read(host) == "hello from the guest");
  CHECK(write(host, "hi guest", 8) == 8);
  Packet p;
  CHECK(f.pump_recv(&p));
  CHECK_EQ(p.hdr.op, kVsockOpRw);
  CHECK(p.data == "hi guest");
  CHECK_EQ(p.hdr.dst_port, 5000u);
  CHECK_EQ(p.hdr.fwd_cnt, 20u);  // the 20 bytes the guest sent have reached the host
  // The guest closes: the host sees EOF and the guest gets the RST that completes its close.
  VsockHeader shut = f.guest_hdr(kVsockOpShutdown, 5000, 1234);
  shut.flags = kVsockShutdownRcv | kVsockShutdownSend;
  f.send(shut);
  CHECK(f.recv(&p));
  CHECK_EQ(p.hdr.op, kVsockOpRst);
  CHECK(host_read(host) == "<EOF>");
  CHECK_EQ(f.backend.connection_count(), size_t{0});
  close(host);
  close(listener);
}

VMM_TEST(dev_vsock_guest_connect_without_listener_is_reset) {
  Fixture f;
  f.send(f.guest_hdr(kVsockOpRequest, 6000, 4321));
  Packet p;
  CHECK(f.recv(&p));
  CHECK_EQ(p.hdr.op, kVsockOpRst);
  CHECK_EQ(p.hdr.src_port, 4321u);
  CHECK_EQ(p.hdr.dst_port, 6000u);
  CHECK_EQ(f.backend.connection_count(), size_t{0});
}

VMM_TEST(dev_vsock_host_connect_gets_ok_with_its_host_port) {
  Fixture f;
  int client = unix_connect(f.path);
  CHECK(client >= 0);
  CHECK(write(client, "CONNECT 1024\n", 13) == 13);
  Packet p;
  CHECK(f.pump_recv(&p));
  CHECK_EQ(p.hdr.op, kVsockOpRequest);
  CHECK_EQ(p.hdr.dst_port, 1024u);
  CHECK(p.hdr.src_port >= VsockUnixBackend::kFirstHostPort);
  uint32_t host_port = p.hdr.src_port;
  CHECK(host_read(client, 50).empty());  // no OK before the guest accepts
  f.send(f.guest_hdr(kVsockOpResponse, 1024, host_port));
  CHECK(host_read(client) == "OK " + std::to_string(host_port) + "\n");
  // Data both ways.
  CHECK(write(client, "request", 7) == 7);
  CHECK(f.pump_recv(&p));
  CHECK_EQ(p.hdr.op, kVsockOpRw);
  CHECK(p.data == "request");
  f.send(f.guest_hdr(kVsockOpRw, 1024, host_port), "reply");
  CHECK(host_read(client) == "reply");
  // The host client goes away: the guest hears SHUTDOWN (both directions), answers RST.
  close(client);
  CHECK(f.pump_recv(&p));
  CHECK_EQ(p.hdr.op, kVsockOpShutdown);
  CHECK_EQ(p.hdr.flags, kVsockShutdownRcv | kVsockShutdownSend);
  f.send(f.guest_hdr(kVsockOpRst, 1024, host_port));
  CHECK_EQ(f.backend.connection_count(), size_t{0});
}

// The CONNECT line may arrive in pieces, and bytes the client sends right behind it (before the
// OK) are the connection's first data: they stay in the socket until the guest accepts.
VMM_TEST(dev_vsock_host_connect_line_in_pieces_with_data_behind_it) {
  Fixture f;
  int client = unix_connect(f.path);
  CHECK(write(client, "CONN", 4) == 4);
  f.pump(30);
  CHECK(write(client, "ECT 10", 6) == 6);
  f.pump(30);
  Packet p;
  CHECK(!f.recv(&p));  // no newline yet: no request
  CHECK(write(client, "24\nearly bytes", 14) == 14);
  CHECK(f.pump_recv(&p));
  CHECK_EQ(p.hdr.op, kVsockOpRequest);
  CHECK_EQ(p.hdr.dst_port, 1024u);
  uint32_t host_port = p.hdr.src_port;
  CHECK(!f.pump_recv(&p, 50));  // the early bytes wait for the guest's answer
  f.send(f.guest_hdr(kVsockOpResponse, 1024, host_port));
  CHECK(host_read(client) == "OK " + std::to_string(host_port) + "\n");
  CHECK(f.pump_recv(&p));
  CHECK_EQ(p.hdr.op, kVsockOpRw);
  CHECK(p.data == "early bytes");
  close(client);
}

VMM_TEST(dev_vsock_host_connect_refused_or_unanswered_closes_the_client) {
  Fixture f;
  f.backend.set_connect_timeout_ms(100);
  int client = unix_connect(f.path);
  CHECK(write(client, "CONNECT 77\n", 11) == 11);
  Packet p;
  CHECK(f.pump_recv(&p));
  CHECK_EQ(p.hdr.op, kVsockOpRequest);
  f.send(f.guest_hdr(kVsockOpRst, 77, p.hdr.src_port));  // nothing listens on guest port 77
  CHECK(host_read(client) == "<EOF>");
  close(client);
  // A guest that never answers: the client is closed after the timeout, the guest told RST.
  client = unix_connect(f.path);
  CHECK(write(client, "CONNECT 78\n", 11) == 11);
  CHECK(f.pump_recv(&p));
  CHECK_EQ(p.hdr.op, kVsockOpRequest);
  CHECK(f.pump_recv(&p, 1000));
  CHECK_EQ(p.hdr.op, kVsockOpRst);
  CHECK(host_read(client) == "<EOF>");
  CHECK_EQ(f.backend.connection_count(), size_t{0});
  close(client);
}

VMM_TEST(dev_vsock_rejects_bad_connect_lines) {
  Fixture f;
  const char* lines[] = {"HELLO\n", "CONNECT\n", "CONNECT x1\n", "CONNECT 99999999999\n",
                         "CONNECT 1234567890123456789012345678901234567890\n"};
  for (const char* line : lines) {
    int client = unix_connect(f.path);
    CHECK(write(client, line, strlen(line)) == static_cast<ssize_t>(strlen(line)));
    f.pump(50);
    std::string got = host_read(client, 100);
    CHECK(got == "<EOF>" || got == "<RESET>");
    close(client);
  }
  Packet p;
  CHECK(!f.recv(&p));
  CHECK_EQ(f.backend.connection_count(), size_t{0});
}

VMM_TEST(dev_vsock_accepts_every_descriptor_framing) {
  for (Framing rx_framing : {Framing::kOneDescriptor, Framing::kHeaderThenPayload}) {
    Fixture f(rx_framing);
    int listener = unix_listen(f.path + "_1234");
    int host = guest_connects(f, listener);
    std::string expect;
    const Framing tx_framings[] = {Framing::kOneDescriptor, Framing::kHeaderThenPayload, Framing::kOddSplit};
    for (Framing how : tx_framings) {
      std::string chunk = "framing-" + std::to_string(static_cast<int>(how)) + ";";
      f.send(f.guest_hdr(kVsockOpRw, 5000, 1234), chunk, how);
      expect += chunk;
    }
    CHECK(host_read(host) == expect);
    std::string big(3000, 'z');
    CHECK(write(host, big.data(), big.size()) == 3000);
    Packet p;
    std::string got;
    while (got.size() < big.size() && f.pump_recv(&p)) got += p.data;
    CHECK(got == big);
    close(host);
    close(listener);
  }
}

VMM_TEST(dev_vsock_malformed_packets_are_dropped_or_reset) {
  Fixture f;
  Packet p;
  // Shorter than a header: dropped without an answer.
  f.tx.set_desc(0, kTxBufs, 20);
  f.tx.publish(0);
  f.d.kick(1);
  CHECK(!f.recv(&p));
  // A length beyond the bytes that follow: reset.
  VsockHeader h = f.guest_hdr(kVsockOpRw, 5000, 1234);
  h.len = 100;
  f.send_raw(h, "only ten..", Framing::kHeaderThenPayload);
  CHECK(f.recv(&p));
  CHECK_EQ(p.hdr.op, kVsockOpRst);
  // Over the 64 KiB payload limit: reset.
  h.len = kVsockMaxPayload + 1;
  f.send_raw(h, std::string(kVsockMaxPayload + 1, 'x'), Framing::kOneDescriptor);
  CHECK(f.recv(&p));
  CHECK_EQ(p.hdr.op, kVsockOpRst);
  // Not addressed to the host, a datagram type, an unknown op: reset.
  h = f.guest_hdr(kVsockOpRequest, 5000, 1234);
  h.dst_cid = 7;
  f.send(h);
  CHECK(f.recv(&p) && p.hdr.op == kVsockOpRst);
  h = f.guest_hdr(kVsockOpRequest, 5000, 1234);
  h.type = 2;
  f.send(h);
  CHECK(f.recv(&p) && p.hdr.op == kVsockOpRst);
  f.send(f.guest_hdr(99, 5000, 1234));
  CHECK(f.recv(&p) && p.hdr.op == kVsockOpRst);
  // A control packet with a payload: reset.
  h = f.guest_hdr(kVsockOpCreditUpdate, 5000, 1234);
  f.send_raw([&] { h.len = 4; return h; }(), "abcd", Framing::kOneDescriptor);
  CHECK(f.recv(&p) && p.hdr.op == kVsockOpRst);
  // Data for a connection that does not exist: reset.
  f.send(f.guest_hdr(kVsockOpRw, 5000, 1234), "stray");
  CHECK(f.recv(&p) && p.hdr.op == kVsockOpRst);
  // A spoofed source CID, or an RST to nobody: silence.
  h = f.guest_hdr(kVsockOpRequest, 5000, 1234);
  h.src_cid = 9;
  f.send(h);
  f.send(f.guest_hdr(kVsockOpRst, 5000, 1234));
  CHECK(!f.recv(&p));
  CHECK_EQ(f.dev.dropped_packets(), uint64_t{2});  // the short one and the spoofed one
  CHECK(f.t.driver_ok());  // none of this needs a device reset
}

VMM_TEST(dev_vsock_host_to_guest_data_respects_guest_credit) {
  Fixture f;
  f.guest_buf_alloc = 100;
  int listener = unix_listen(f.path + "_1234");
  int host = guest_connects(f, listener);
  std::string data(300, 'c');
  CHECK(write(host, data.data(), data.size()) == 300);
  Packet p;
  std::string got;
  bool credit_request = false;
  while (f.pump_recv(&p, 200)) {
    if (p.hdr.op == kVsockOpRw) got += p.data;
    if (p.hdr.op == kVsockOpCreditRequest) credit_request = true;
  }
  CHECK_EQ(got.size(), size_t{100});  // exactly the guest's buffer
  CHECK(credit_request);
  // The guest application read 100 bytes: the guest driver announces it.
  f.guest_fwd_cnt = 100;
  f.send(f.guest_hdr(kVsockOpCreditUpdate, 5000, 1234));
  while (f.pump_recv(&p, 200))
    if (p.hdr.op == kVsockOpRw) got += p.data;
  CHECK_EQ(got.size(), size_t{200});
  close(host);
  close(listener);
}

VMM_TEST(dev_vsock_guest_to_host_credit_is_announced_and_enforced) {
  Fixture f;
  int listener = unix_listen(f.path + "_1234");
  int host = guest_connects(f, listener);
  // The guest sends a CREDIT_REQUEST: the device answers with its buffer and forward count.
  f.send(f.guest_hdr(kVsockOpCreditRequest, 5000, 1234));
  Packet p;
  CHECK(f.recv(&p));
  CHECK_EQ(p.hdr.op, kVsockOpCreditUpdate);
  CHECK_EQ(p.hdr.fwd_cnt, 0u);
  // The host reads as fast as the guest sends: once half of the buffer has gone through, the
  // device announces the freed space without being asked — and not before (each announcement
  // costs the guest a packet and an interrupt).
  std::string chunk(60000, 'g');
  // The send that takes the forwarded total to half of the buffer or past it.
  const uint32_t sends = (VsockUnixBackend::kBufAlloc / 2 + 59999) / 60000;
  CHECK(sends >= 2);
  size_t received = 0;
  uint32_t announced = 0;
  for (uint32_t i = 0; i < sends; i++) {
    f.send(f.guest_hdr(kVsockOpRw, 5000, 1234), chunk);
    received += host_read(host, 200, chunk.size()).size();
    while (f.recv(&p)) {
      CHECK_EQ(p.hdr.op, kVsockOpCreditUpdate);
      CHECK_EQ(i, sends - 1);  // under half of the buffer forwarded: nothing announced yet
      announced = p.hdr.fwd_cnt;
    }
  }
  CHECK_EQ(received, size_t{60000} * sends);
  CHECK_EQ(announced, 60000u * sends);
  // A host that stops reading, and a guest that ignores the credit: the connection is reset
  // rather than buffered without bound.
  bool reset = false;
  for (int i = 0; i < 20 && !reset; i++) {
    f.send(f.guest_hdr(kVsockOpRw, 5000, 1234), chunk);
    while (f.recv(&p))
      if (p.hdr.op == kVsockOpRst) reset = true;
  }
  CHECK(reset);
  CHECK_EQ(f.backend.connection_count(), size_t{0});
  close(host);
  close(listener);
}

VMM_TEST(dev_vsock_tx_completions_wait_for_an_rx_interrupt_or_a_batch) {
  Fixture f;
  int listener = unix_listen(f.path + "_1234");
  int host = guest_connects(f, listener);
  f.d.ack_interrupts();
  uint64_t irqs = f.irq.count();
  // Like Linux, the guest asks for an interrupt at the next used buffer of either queue.
  auto want_next = [&] {
    f.tx.set_used_event(f.tx.used_idx());
    f.rx.set_used_event(f.rx.used_idx());
  };
  uint16_t used = f.tx.used_idx();
  // Data packets alone (no reply): completed at once, interrupted for only once a batch is owed
  // (a quarter of this 16-entry ring).
  const uint32_t batch = 4;
  for (uint32_t i = 1; i < batch; i++) {
    want_next();
    f.send(f.guest_hdr(kVsockOpRw, 5000, 1234), "data");
    CHECK_EQ(f.tx.used_idx(), static_cast<uint16_t>(used + i));
    CHECK_EQ(f.irq.count(), irqs);
  }
  want_next();
  f.send(f.guest_hdr(kVsockOpRw, 5000, 1234), "data");
  CHECK_EQ(f.irq.count(), irqs + 1);
  CHECK_EQ(f.d.ack_interrupts(), kInterruptUsedBuffer);
  CHECK(host_read(host, 200, 16) == "datadatadatadata");
  // One data packet, then a packet that gets a reply: the reply's interrupt carries both.
  want_next();
  f.send(f.guest_hdr(kVsockOpRw, 5000, 1234), "data");
  CHECK_EQ(f.irq.count(), irqs + 1);
  want_next();
  f.send(f.guest_hdr(kVsockOpCreditRequest, 5000, 1234));
  CHECK_EQ(f.irq.count(), irqs + 2);
  Packet p;
  CHECK(f.recv(&p));
  CHECK_EQ(p.hdr.op, kVsockOpCreditUpdate);
  CHECK_EQ(f.d.ack_interrupts(), kInterruptUsedBuffer);
  // Nothing is owed after that: the next lone packet starts a new batch.
  want_next();
  f.send(f.guest_hdr(kVsockOpRw, 5000, 1234), "data");
  CHECK_EQ(f.irq.count(), irqs + 2);
  close(host);
  close(listener);
}

VMM_TEST(dev_vsock_guest_half_close_shuts_the_host_write_side) {
  Fixture f;
  int listener = unix_listen(f.path + "_1234");
  int host = guest_connects(f, listener);
  VsockHeader shut = f.guest_hdr(kVsockOpShutdown, 5000, 1234);
  shut.flags = kVsockShutdownSend;
  f.send(f.guest_hdr(kVsockOpRw, 5000, 1234), "last words");
  f.send(shut);
  CHECK(host_read(host) == "last words<EOF>");
  // The host can still answer.
  CHECK(write(host, "ack", 3) == 3);
  Packet p;
  CHECK(f.pump_recv(&p));
  CHECK(p.data == "ack");
  // And its own half-close reaches the guest as SHUTDOWN(SEND).
  shutdown(host, SHUT_WR);
  CHECK(f.pump_recv(&p));
  CHECK_EQ(p.hdr.op, kVsockOpShutdown);
  close(host);
  close(listener);
}

VMM_TEST(dev_vsock_device_reset_closes_every_connection) {
  Fixture f;
  int listener = unix_listen(f.path + "_1234");
  int host = guest_connects(f, listener);
  CHECK_EQ(f.backend.connection_count(), size_t{1});
  f.d.w(0x70, 0);
  CHECK_EQ(f.backend.connection_count(), size_t{0});
  CHECK(host_read(host) == "<EOF>");
  close(host);
  close(listener);
}

// --- after a snapshot restore ---------------------------------------------------------------------

namespace {

// Posts event buffers of `len` bytes on the event queue at 0x38000 + 0x100 * i, and kicks it.
void post_event_buffers(Fixture& f, uint16_t count, uint32_t len = 8) {
  for (uint16_t i = 0; i < count; i++) {
    uint16_t head = static_cast<uint16_t>(f.ev.avail_idx % f.ev.size);
    f.ram.fill(0x38000 + 0x100ull * head, 0xee, 16);
    f.ev.set_desc(head, 0x38000 + 0x100ull * head, len, kDescFWrite);
    f.ev.publish(head);
  }
  f.d.kick(2);
}

}  // namespace

VMM_TEST(dev_vsock_transport_reset_event_reaches_the_driver) {
  Fixture f;
  int listener = unix_listen(f.path + "_1234");
  int host = guest_connects(f, listener);
  CHECK_EQ(f.backend.connection_count(), size_t{1});
  post_event_buffers(f, 2);
  CHECK_EQ(f.ev.used_idx(), 0);  // nothing to say yet
  f.d.ack_interrupts();
  uint64_t irqs = f.irq.count();
  f.dev.QueueTransportReset();
  // One event, VIRTIO_VSOCK_EVENT_TRANSPORT_RESET (id 0): 4 bytes written, the rest untouched.
  CHECK_EQ(f.ev.used_idx(), 1);
  CHECK_EQ(f.ev.used_len(0), 4u);
  uint16_t head = static_cast<uint16_t>(f.ev.used_id(0));
  CHECK_EQ(f.ram.get<uint32_t>(0x38000 + 0x100ull * head), 0u);
  CHECK_EQ(f.ram.get<uint32_t>(0x38000 + 0x100ull * head + 4), 0xeeeeeeeeu);
  CHECK(!f.dev.transport_reset_pending());
  CHECK_EQ(f.irq.count(), irqs + 1);
  CHECK_EQ(f.d.ack_interrupts(), 1u);  // a used buffer
  // The connections the guest will reset are gone on the host side too.
  CHECK_EQ(f.backend.connection_count(), size_t{0});
  CHECK(host_read(host) == "<EOF>");
  // The second buffer stays posted for the next reset.
  f.dev.QueueTransportReset();
  CHECK_EQ(f.ev.used_idx(), 2);
  close(host);
  close(listener);
}

VMM_TEST(dev_vsock_transport_reset_waits_for_an_event_buffer) {
  Fixture f;
  f.dev.QueueTransportReset();
  CHECK(f.dev.transport_reset_pending());
  CHECK_EQ(f.ev.used_idx(), 0);
  // A buffer too small for the event goes back empty; the next one gets it.
  post_event_buffers(f, 1, 2);
  CHECK_EQ(f.ev.used_idx(), 1);
  CHECK_EQ(f.ev.used_len(0), 0u);
  CHECK(f.dev.transport_reset_pending());
  post_event_buffers(f, 1);
  CHECK_EQ(f.ev.used_idx(), 2);
  CHECK_EQ(f.ev.used_len(1), 4u);
  CHECK(!f.dev.transport_reset_pending());
  // A driver reset forgets one that is still waiting: the new driver has no sockets to reset.
  f.dev.QueueTransportReset();
  CHECK(f.dev.transport_reset_pending());
  f.d.w(0x70, 0);
  CHECK(!f.dev.transport_reset_pending());
}

// After a transport reset the device holds a host's connection request until the driver has
// handled the reset (it puts the event buffer back and notifies), so the guest's reset of its old
// sockets cannot catch the new connection; the device asks for that notification although the
// driver still has another event buffer posted.
VMM_TEST(dev_vsock_host_connect_waits_until_the_driver_handled_the_reset) {
  Fixture f;
  post_event_buffers(f, 2);
  f.dev.QueueTransportReset();
  CHECK_EQ(f.ev.used_idx(), 1);
  CHECK(f.dev.holding_for_reset());
  CHECK_EQ(f.ev.avail_event(), f.ev.avail_idx);  // notify on the next add, not past the spare one
  int client = unix_connect(f.path);
  CHECK(client >= 0);
  CHECK(write(client, "CONNECT 1024\n", 13) == 13);
  Packet p;
  CHECK(!f.pump_recv(&p, 200));
  CHECK_EQ(f.backend.connection_count(), size_t{1});  // waiting in the backend, not refused
  post_event_buffers(f, 1);
  CHECK(!f.dev.holding_for_reset());
  CHECK(f.pump_recv(&p));
  CHECK_EQ(p.hdr.op, kVsockOpRequest);
  CHECK_EQ(p.hdr.dst_port, 1024u);
  f.send(f.guest_hdr(kVsockOpResponse, 1024, p.hdr.src_port));
  CHECK(host_read(client) == "OK " + std::to_string(p.hdr.src_port) + "\n");
  // A device reset (a new driver) drops the hold with everything else.
  f.dev.QueueTransportReset();
  CHECK(f.dev.holding_for_reset());
  f.d.w(0x70, 0);
  CHECK(!f.dev.holding_for_reset());
  close(client);
}

// A vsock device saved with a connection open and restored into a new device on a copy of guest
// RAM: the transport reset goes out, and the guest's next connection works on the same rings.
VMM_TEST(dev_vsock_restored_device_serves_new_connections) {
  Fixture a;
  int listener_a = unix_listen(a.path + "_1234");
  int host_a = guest_connects(a, listener_a);
  post_event_buffers(a, 2);
  std::vector<uint8_t> dev = a.dev.SaveState();
  std::vector<uint8_t> mmio = a.t.SaveState();
  auto decoded = vmm::snapshot::DecodeVirtioDeviceState(dev.data(), dev.size(), 0);
  CHECK(decoded.ok() && decoded->kind == vmm::snapshot::kVirtioVsock && decoded->vsock_guest_cid == kGuestCid);

  Fixture b;  // brought up by its own driver; the load replaces all of that
  b.d.w(0x70, 0);
  b.ram.bytes = a.ram.bytes;
  CHECK(b.dev.LoadState(dev.data(), dev.size(), 0).ok());
  vc::Status s = b.t.LoadState(mmio.data(), mmio.size(), b.ram.mem.size(), 0);
  CHECK(s.ok());
  if (!s.ok()) return (void)std::printf("# %s\n", s.error().c_str());
  for (auto [from, to] : {std::pair{&a.rx, &b.rx}, std::pair{&a.tx, &b.tx}, std::pair{&a.ev, &b.ev}}) {
    to->avail_idx = from->avail_idx;
    to->used_seen = from->used_seen;
  }
  b.rx_bufs = a.rx_bufs;
  b.tx_count = a.tx_count;
  b.dev.QueueTransportReset();
  CHECK_EQ(b.ev.used_idx(), 1);
  CHECK_EQ(b.ram.get<uint32_t>(0x38000 + 0x100ull * b.ev.used_id(0)), 0u);
  // The driver handles the reset and puts the event buffer back, as Linux does.
  CHECK(b.dev.holding_for_reset());
  post_event_buffers(b, 1);
  CHECK(!b.dev.holding_for_reset());
  int listener_b = unix_listen(b.path + "_1234");
  int host_b = guest_connects(b, listener_b, 5001);
  CHECK(host_b >= 0);
  b.send(b.guest_hdr(kVsockOpRw, 5001, 1234), "after restore");
  CHECK(host_read(host_b, 200, 13) == "after restore");
  // A vsock device's state is refused by a device of another kind, and bytes it does not expect.
  std::vector<uint8_t> longer = dev;
  longer.push_back(0);
  CHECK(!b.dev.LoadState(longer.data(), longer.size(), 0).ok());
  for (int fd : {host_a, listener_a, host_b, listener_b}) close(fd);
}

// Host bytes for the guest are read into several rx buffers at once: each buffer is one packet,
// in order, and together they take exactly the guest's credit; the buffers left over are given
// back and used for the next bytes.
VMM_TEST(dev_vsock_host_to_guest_fills_several_buffers_within_credit) {
  Fixture f(Framing::kHeaderThenPayload);  // 4 KiB payload buffers, as Linux 6.1 posts them
  f.guest_buf_alloc = 10000;
  int listener = unix_listen(f.path + "_1234");
  int host = guest_connects(f, listener);
  std::string data;
  for (int i = 0; i < 12000; i++) data.push_back(static_cast<char>('a' + i % 26));
  CHECK(write(host, data.data(), data.size()) == 12000);
  f.pump(30);
  // Three packets (4096 + 4096 + 1808 bytes: the credit), then a credit request.
  Packet p;
  std::string got;
  std::vector<uint32_t> sizes;
  while (f.recv(&p)) {
    if (p.hdr.op == kVsockOpRw) {
      got += p.data;
      sizes.push_back(p.hdr.len);
    } else {
      CHECK_EQ(p.hdr.op, kVsockOpCreditRequest);
    }
  }
  CHECK_EQ(sizes.size(), size_t{3});
  CHECK_EQ(sizes[0], 4096u);
  CHECK_EQ(sizes[2], 10000u - 8192u);
  CHECK(got == data.substr(0, 10000));
  // The guest read it all: the rest follows, in the buffers that were given back.
  f.guest_fwd_cnt = 10000;
  f.send(f.guest_hdr(kVsockOpCreditUpdate, 5000, 1234));
  while (f.pump_recv(&p, 100))
    if (p.hdr.op == kVsockOpRw) got += p.data;
  CHECK(got == data);
  close(host);
  close(listener);
}

// Malformed rx buffers among good ones (one too small for a header, one outside guest memory)
// are returned unused, and no buffer is filled twice: a batch stops before such a buffer, so
// only buffers that follow each other in the ring are ever given back.
VMM_TEST(dev_vsock_host_to_guest_batch_stops_at_malformed_buffers) {
  Fixture f(Framing::kHeaderThenPayload);
  int listener = unix_listen(f.path + "_1234");
  int host = guest_connects(f, listener);
  constexpr size_t kTotal = 60000;
  std::string data;
  for (size_t i = 0; i < kTotal; i++) data.push_back(static_cast<char>('A' + i % 23));
  CHECK(write(host, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
  std::string got;
  size_t returned_empty = 0;
  bool spoiled4 = false, spoiled8 = false;
  for (int round = 0; round < 100 && got.size() < kTotal; round++) {
    f.pump(10);
    while (f.rx.used_seen != f.rx.used_idx()) {
      uint16_t i = f.rx.used_seen++;
      uint16_t head = static_cast<uint16_t>(f.rx.used_id(i));
      uint32_t len = f.rx.used_len(i);
      auto [hdr_at, data_at] = f.rx_bufs[head];
      if (len == 0) {  // a spoiled buffer came back unused: mend it for the rest of the test
        returned_empty++;
        f.rx.set_desc(head, hdr_at, sizeof(VsockHeader), kDescFWrite | kDescFNext, static_cast<uint16_t>(head + 1));
        f.rx.publish(head);
        continue;
      }
      VsockHeader hdr{};
      f.ram.mem.read(hdr_at, &hdr, sizeof(hdr));
      CHECK_EQ(len, sizeof(VsockHeader) + hdr.len);
      if (hdr.op == kVsockOpRw) got.append(reinterpret_cast<char*>(&f.ram.bytes[data_at]), hdr.len);
      // Two of the buffers the guest hands back are spoiled, once each.
      if (head == 4 && !spoiled4) {
        f.rx.set_desc(head, hdr_at, 10, kDescFWrite);
        spoiled4 = true;
      } else if (head == 8 && !spoiled8) {
        f.rx.set_desc(head, uint64_t{1} << 40, 4096, kDescFWrite);
        spoiled8 = true;
      }
      f.rx.publish(head);
    }
    f.d.kick(0);
  }
  CHECK_EQ(got.size(), kTotal);
  CHECK(got == data);
  CHECK_EQ(returned_empty, size_t{2});
  CHECK(f.t.driver_ok());
  close(host);
  close(listener);
}
