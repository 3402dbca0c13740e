// libFuzzer entry point: virtio-vsock packet parsing and the hybrid-vsock connection state
// machine, end to end. The input is a script of steps: the guest sends a packet (header and
// payload from the input, framed across descriptors in one of several ways), a host client
// connects and writes a CONNECT line or bytes, a host socket writes or closes, the backend's
// event loop runs, the guest takes its rx packets. Real Unix sockets, one device for the whole
// run, reset between inputs.
#include "fuzz_input.h"
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "backends/vsock_unix.h"
#include "devices/event_loop.h"
#include "devices/interrupt.h"
#include "devices/virtio/mmio.h"
#include "devices/virtio/vsock.h"
#include "guest_memory.h"

using namespace vmm::virtio;

namespace {

constexpr uint64_t kGuestCid = 3;
constexpr size_t kRam = 0x40000;
constexpr uint64_t kRx = 0x0000, kTx = 0x4000, kEvent = 0x8000;
constexpr uint64_t kRxBufs = 0x10000, kTxData = 0x30000;
constexpr uint16_t kRing = 16;
constexpr size_t kMaxHostFds = 8;

using vmm_fuzz::Input;
using vmm_fuzz::require;

struct Harness {
  Harness()
      : ram(kRam), mem(ram.data(), ram.size()), dir(make_dir()), sock(dir + "/v.sock"),
        backend(&loop, sock), dev(kGuestCid, &backend), t(mem, &dev, &irq) {
    std::string error;
    if (!backend.listen(&error)) abort();
    backend.set_connect_timeout_ms(50);
    listener = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_un addr = address(sock + "_1024");
    if (bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) abort();
    if (listen(listener, 64) != 0) abort();
  }
  static std::string make_dir() {
    static char tmpl[] = "/tmp/vc-vsock-fuzz-XXXXXX";
    if (!mkdtemp(tmpl)) abort();
    // libFuzzer ends a timed run with exit(): remove the sockets and their directory then.
    atexit([] {
      std::string dir = tmpl;
      unlink((dir + "/v.sock").c_str());
      unlink((dir + "/v.sock_1024").c_str());
      rmdir(dir.c_str());
    });
    return tmpl;
  }
  static sockaddr_un address(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
    return addr;
  }

  uint32_t reg(uint64_t off) {
    uint32_t v = 0;
    t.read(off, reinterpret_cast<uint8_t*>(&v), 4);
    return v;
  }
  void reg(uint64_t off, uint32_t v) { t.write(off, reinterpret_cast<const uint8_t*>(&v), 4); }

  void put_desc(uint64_t ring, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
                uint16_t next) {
    uint64_t at = ring + 16ull * i;
    mem.store(at, addr);
    mem.store(at + 8, len);
    mem.store(at + 12, flags);
    mem.store(at + 14, next);
  }
  void publish(uint64_t ring, uint16_t* idx, uint16_t head) {
    mem.store<uint16_t>(ring + 0x1000 + 4 + 2ull * (*idx % kRing), head);
    ++*idx;
    mem.store<uint16_t>(ring + 0x1000 + 2, *idx);
  }

  void start(uint8_t mode) {
    reg(0x70, 0);
    std::memset(ram.data(), 0, ram.size());
    rx_avail = tx_avail = ev_avail = rx_seen = 0;
    tx_count = 0;
    split_rx = mode & 1;
    uint64_t features = kFVersion1 | ((mode & 2) ? kFRingEventIdx : 0) |
                        ((mode & 4) ? kFRingIndirectDesc : 0);
    reg(0x70, 1);
    reg(0x70, 3);
    reg(0x24, 0);
    reg(0x20, static_cast<uint32_t>(features));
    reg(0x24, 1);
    reg(0x20, static_cast<uint32_t>(features >> 32));
    reg(0x70, 11);
    const uint64_t rings[] = {kRx, kTx, kEvent};
    for (uint32_t q = 0; q < 3; q++) {
      reg(0x30, q);
      reg(0x38, kRing);
      reg(0x80, static_cast<uint32_t>(rings[q]));
      reg(0x90, static_cast<uint32_t>(rings[q] + 0x1000));
      reg(0xa0, static_cast<uint32_t>(rings[q] + 0x2000));
      reg(0x44, 1);
    }
    reg(0x70, 15);
    // Rx buffers: one descriptor each (Linux >= 6.2), or header + payload (older kernels).
    for (uint16_t i = 0; i < (split_rx ? kRing / 2 : kRing); i++) {
      uint64_t at = kRxBufs + 0x1100ull * i;
      if (split_rx) {
        uint16_t h = static_cast<uint16_t>(2 * i);
        put_desc(kRx, h, at, sizeof(VsockHeader), 3, static_cast<uint16_t>(h + 1));
        put_desc(kRx, static_cast<uint16_t>(h + 1), at + 0x100, 4096, 2, 0);
        publish(kRx, &rx_avail, h);
      } else {
        put_desc(kRx, i, at, 4096, 2, 0);
        publish(kRx, &rx_avail, i);
      }
    }
    reg(0x50, 0);
  }

  void guest_send(Input* in) {
    uint8_t flags = in->u8();
    VsockHeader h;
    in->bytes(&h, sizeof(h));
    uint32_t len = in->u16() % 4097;
    if (flags & 1) {  // well-addressed, so the packet reaches the state machine
      h.src_cid = kGuestCid;
      h.dst_cid = kVsockHostCid;
      h.type = kVsockTypeStream;
    }
    if (flags & 2) h.op = static_cast<uint16_t>(1 + h.op % 7);
    if (flags & 4) h.dst_port = 1024 + (h.dst_port & 1);  // 1024 has a host listener
    if (flags & 8) h.len = h.op == kVsockOpRw ? len : 0;
    if (h.op != kVsockOpRw && (flags & 8)) len = 0;
    uint64_t at = kTxData;
    mem.write(at, &h, sizeof(h));
    for (uint32_t i = 0; i < len; i++) mem.store<uint8_t>(at + sizeof(h) + i, in->u8());
    uint32_t total = static_cast<uint32_t>(sizeof(h) + len);
    uint16_t base = static_cast<uint16_t>((tx_count++ % 4) * 4);
    switch ((flags >> 4) & 3) {
      case 0:  // header and payload in one descriptor
        put_desc(kTx, base, at, total, 0, 0);
        break;
      case 1:  // header, then payload
        put_desc(kTx, base, at, sizeof(h), len ? 1 : 0, static_cast<uint16_t>(base + 1));
        if (len) put_desc(kTx, static_cast<uint16_t>(base + 1), at + sizeof(h), len, 0, 0);
        break;
      case 2: {  // split at a fuzzer-chosen byte, through an indirect table
        uint32_t cut = 1 + in->u8() % (total - 1);
        uint64_t table = kTxData + 0xf000;
        put_desc(table, 0, at, cut, 1, 1);
        put_desc(table, 1, at + cut, total - cut, 0, 0);
        put_desc(kTx, base, table, 32, 4, 0);
        break;
      }
      default: {  // raw descriptor straight from the input: any address, length, flags
        uint64_t addr;
        in->bytes(&addr, sizeof(addr));
        put_desc(kTx, base, addr, in->u16(), in->u8() & 7, static_cast<uint16_t>(in->u8() % kRing));
        break;
      }
    }
    publish(kTx, &tx_avail, base);
    reg(0x50, 1);
  }

  // The guest driver takes what the device delivered, checks it, and gives the buffers back.
  void guest_receive() {
    uint16_t used = 0;
    mem.load<uint16_t>(kRx + 0x2000 + 2, &used);
    while (rx_seen != used) {
      uint64_t elem = kRx + 0x2000 + 4 + 8ull * (rx_seen % kRing);
      rx_seen++;
      uint32_t id = 0, len = 0;
      mem.load(elem, &id);
      mem.load(elem + 4, &len);
      require(id < kRing);
      uint64_t at = kRxBufs + 0x1100ull * (split_rx ? id / 2 : id);
      VsockHeader h{};
      mem.read(at, &h, sizeof(h));
      require(len == sizeof(VsockHeader) + h.len && h.len <= 4096 - (split_rx ? 0 : sizeof(h)));
      require(h.src_cid == kVsockHostCid && h.dst_cid == kGuestCid && h.type == kVsockTypeStream);
      publish(kRx, &rx_avail, static_cast<uint16_t>(id));
    }
    reg(0x50, 0);
  }

  void host_connect(Input* in) {
    if (host_fds.size() >= kMaxHostFds) return;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    sockaddr_un addr = address(sock);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      close(fd);
      return;
    }
    std::string line;
    uint8_t kind = in->u8();
    if (kind & 1) {
      line = "CONNECT " + std::to_string(kind & 2 ? in->u16() : 1024 + (kind >> 7)) + "\n";
    } else {
      for (int i = in->u8() % 40; i > 0; i--) line.push_back(static_cast<char>(in->u8()));
    }
    (void)send(fd, line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);  // may fail: fine
    host_fds.push_back(fd);
  }

  void accept_all() {
    int fd;
    while ((fd = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
      if (host_fds.size() < kMaxHostFds) host_fds.push_back(fd);
      else close(fd);
    }
  }

  void host_io(Input* in, bool close_it) {
    if (host_fds.empty()) return;
    size_t i = in->u8() % host_fds.size();
    int fd = host_fds[i];
    if (close_it) {
      if (in->u8() & 1) {
        shutdown(fd, SHUT_WR);
      } else {
        close(fd);
        host_fds.erase(host_fds.begin() + static_cast<long>(i));
      }
      return;
    }
    char buf[4096];
    (void)recv(fd, buf, sizeof(buf), MSG_DONTWAIT);  // keep the host side reading too
    size_t len = in->u16() % 2048;
    std::vector<uint8_t> data(len);
    in->bytes(data.data(), len);
    (void)send(fd, data.data(), len, MSG_NOSIGNAL | MSG_DONTWAIT);
  }

  void finish() {
    accept_all();
    for (int fd : host_fds) close(fd);
    host_fds.clear();
    for (int i = 0; i < 4; i++) loop.run_once(0);
    reg(0x70, 0);  // device reset: every connection closes
    for (int i = 0; i < 4; i++) loop.run_once(0);
    accept_all();
    for (int fd : host_fds) close(fd);
    host_fds.clear();
  }

  std::vector<uint8_t> ram;
  vmm::GuestMemory mem;
  std::string dir, sock;
  vmm::EventLoop loop;
  vmm::VsockUnixBackend backend;
  VsockDevice dev;
  vmm::CountingInterrupt irq;
  MmioTransport t;
  int listener = -1;
  std::vector<int> host_fds;
  uint16_t rx_avail = 0, tx_avail = 0, ev_avail = 0, rx_seen = 0;
  uint32_t tx_count = 0;
  bool split_rx = false;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Harness* h = new Harness();  // one device and socket directory for the whole run
  Input in{data, size};
  h->start(in.u8());
  for (int step = 0; step < 64 && !in.empty(); step++) {
    switch (in.u8() % 7) {
      case 0: case 1: h->guest_send(&in); break;
      case 2: h->host_connect(&in); break;
      case 3: h->host_io(&in, false); break;
      case 4: h->host_io(&in, true); break;
      case 5: h->accept_all(); break;
      case 6: h->guest_receive(); break;
    }
    h->loop.run_once(0);
  }
  h->guest_receive();
  h->finish();
  return 0;
}
