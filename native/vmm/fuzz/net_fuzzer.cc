// libFuzzer entry point: virtio-net's rx and tx paths over fuzzer-controlled guest memory and a
// fuzzer-controlled backend. The input is a setup byte (negotiated features, rate limits, backend
// offloads) and then a script of steps: the guest posts a tx chain of arbitrary descriptors
// (addresses past the end of memory, lengths that overflow, loops, indirect tables, writable
// parts) or rx buffers of arbitrary shape, the backend delivers a frame of any length (up to well
// past the maximum), fills up or drains, the clock advances and the rate-limit timer fires,
// arbitrary bytes land anywhere in guest memory (rings included), the driver resets the device.
#include "fuzz_input.h"
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <vector>

#include "devices/interrupt.h"
#include "devices/virtio/mmio.h"
#include "devices/virtio/net.h"
#include "guest_memory.h"
#include "tests/virtio_driver.h"

using namespace vmm::virtio;

namespace {

constexpr size_t kRam = 0x40000;
constexpr uint64_t kRxRing = 0x0000, kTxRing = 0x4000;
constexpr uint64_t kIndirect = 0x8000;
constexpr uint16_t kRing = 16;
constexpr size_t kMaxFrames = 8;

using vmm_fuzz::Input;
using vmm_fuzz::require;

class FuzzBackend final : public NetBackend {
 public:
  void attach(NetDevice*) override {}
  bool supports_offloads() const override { return offloads; }
  bool set_offloads(uint64_t) override { return true; }
  NetSend send(const iovec* iov, size_t iovcnt) override {
    if (full) return NetSend::kAgain;
    size_t total = 0;
    for (size_t i = 0; i < iovcnt; i++) {
      require(iov[i].iov_len > 0);
      total += iov[i].iov_len;
      // Touch every byte (ASan checks the iovecs really point into guest memory).
      volatile uint8_t sink = 0;
      const auto* b = static_cast<const uint8_t*>(iov[i].iov_base);
      sink = sink ^ b[0] ^ b[iov[i].iov_len - 1];
      (void)sink;
    }
    require(total >= kNetHdrSize && total <= kNetHdrSize + kNetMaxFrame);
    sent++;
    return NetSend::kSent;
  }
  int64_t recv(uint8_t* buf, size_t len) override {
    if (frames.empty()) return 0;
    uint32_t n = frames.front();
    frames.pop_front();
    if (n == 1) return -1;  // a read error
    std::memset(buf, static_cast<int>(n & 0xff), std::min<size_t>(n, len));
    return n;
  }
  bool can_scatter() const override { return scatter; }
  int64_t recv_iov(const iovec* iov, size_t iovcnt) override {
    if (frames.empty()) return 0;
    uint32_t n = frames.front();
    frames.pop_front();
    if (n == 1) return -1;
    size_t left = n;
    for (size_t i = 0; i < iovcnt && left; i++) {
      require(iov[i].iov_len > 0);
      size_t take = std::min(left, iov[i].iov_len);
      std::memset(iov[i].iov_base, static_cast<int>(n & 0xff), take);  // ASan checks the iovecs
      left -= take;
    }
    return n;
  }
  void want(bool r, bool w) override {
    want_read = r;
    want_write = w;
  }

  bool offloads = true;
  bool scatter = false;
  bool full = false;
  bool want_read = false, want_write = false;
  uint64_t sent = 0;
  std::deque<uint32_t> frames;
};

struct Harness {
  Harness(uint8_t setup)
      : ram(kRam), mem(ram.data(), ram.size()) {
    auto b = std::make_unique<FuzzBackend>();
    backend = b.get();
    backend->offloads = setup & 0x10;
    backend->scatter = setup & 0x80;
    NetDeviceConfig cfg;
    cfg.mac = {2, 0, 0, 0, 0, 1};
    cfg.queue_size = kRing;
    if (setup & 0x20) cfg.tx = {100000, 70000, 10, 2};
    if (setup & 0x40) cfg.rx = {200000, 0, 0, 0};
    dev = std::make_unique<NetDevice>(cfg, std::move(b), [this] { return clock; });
    dev->set_timer([this](uint64_t) { timer_armed = true; });
    t = std::make_unique<MmioTransport>(mem, dev.get(), &irq);
    start(setup);
  }

  void start(uint8_t setup) {
    vmm::test::MmioDriver d(t.get());
    uint64_t features = kFVersion1 | kNetFMac | kNetFMtu | kNetFStatus;
    if (setup & 1) features |= kNetFMrgRxbuf;
    if (setup & 2) features |= kFRingEventIdx;
    if (setup & 4) features |= kFRingIndirectDesc;
    if (setup & 8) features |= kNetFCsum | kNetFGuestCsum | kNetFHostTso4 | kNetFGuestTso6;
    d.negotiate(features & d.device_features());
    for (uint32_t q = 0; q < 2; q++) {
      uint64_t base = q ? kTxRing : kRxRing;
      d.w(0x30, q);
      d.w(0x38, kRing);
      d.w(0x80, static_cast<uint32_t>(base));
      d.w(0x90, static_cast<uint32_t>(base + 0x1000));
      d.w(0xa0, static_cast<uint32_t>(base + 0x2000));
      d.w(0x44, 1);
    }
    d.driver_ok();
  }

  void put_desc(uint64_t table, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
    uint64_t at = table + 16ull * i;
    mem.store<uint64_t>(at, addr);
    mem.store<uint32_t>(at + 8, len);
    mem.store<uint16_t>(at + 12, flags);
    mem.store<uint16_t>(at + 14, next);
  }
  void publish(int q, uint16_t head) {
    uint64_t base = q ? kTxRing : kRxRing;
    uint16_t idx = 0;
    mem.load<uint16_t>(base + 0x1000 + 2, &idx);  // the fuzzer may have moved it
    mem.store<uint16_t>(base + 0x1000 + 4 + 2ull * (idx % kRing), head);
    mem.store<uint16_t>(base + 0x1000 + 2, static_cast<uint16_t>(idx + 1));
  }
  // An address: mostly inside memory, sometimes at its very end or far outside it.
  uint64_t addr(Input* in) {
    uint8_t kind = in->u8();
    uint32_t v = in->u32();
    if (kind < 200) return 0x10000 + v % (kRam - 0x10000);
    if (kind < 230) return kRam - (v % 64);
    if (kind < 250) return v;
    return ~0ull - (v % 4096);
  }
  uint32_t length(Input* in) {
    uint8_t kind = in->u8();
    if (kind < 200) return in->u16();
    if (kind < 240) return kNetHdrSize + kNetMaxFrame - 8 + (in->u8() % 16);
    return in->u32();
  }

  void step(Input* in) {
    vmm::test::MmioDriver d(t.get());
    switch (in->u8() % 9) {
      case 0:
      case 1: {  // a tx chain of 1..6 descriptors (or an indirect table) at a fuzzed head
        uint16_t head = in->u8() % kRing;
        int n = 1 + in->u8() % 6;
        bool indirect = in->u8() & 1;
        uint64_t table = indirect ? kIndirect : kTxRing;
        for (int i = 0; i < n; i++) {
          uint16_t idx = indirect ? static_cast<uint16_t>(i) : static_cast<uint16_t>((head + i) % kRing);
          uint16_t flags = in->u8() & 7;
          if (i + 1 < n) flags |= kDescFNext;
          uint16_t next = (in->u8() & 0x80) ? in->u8() : static_cast<uint16_t>(indirect ? i + 1 : (head + i + 1) % kRing);
          uint64_t a = addr(in);
          uint32_t len = length(in);
          put_desc(table, idx, a, len, flags, next);
        }
        if (indirect) put_desc(kTxRing, head, kIndirect, 16u * n, kDescFIndirect, 0);
        publish(1, head);
        d.kick(1);
        break;
      }
      case 2: {  // rx buffers
        int n = 1 + in->u8() % 4;
        for (int i = 0; i < n; i++) {
          uint16_t head = in->u8() % kRing;
          uint8_t shape = in->u8();
          uint16_t flags = (shape & 0xf0) ? kDescFWrite : (shape & 7);
          uint64_t a = addr(in);
          uint32_t len = length(in) % 9000;
          uint16_t next = in->u8();
          put_desc(kRxRing, head, a, len, flags, next);
          publish(0, head);
        }
        d.kick(0);
        break;
      }
      case 3: {  // the backend has frames
        int n = 1 + in->u8() % 3;
        for (int i = 0; i < n && backend->frames.size() < kMaxFrames; i++) {
          uint8_t kind = in->u8();
          uint32_t len = kind < 200 ? in->u16() % 4000 : kind < 230 ? kNetHdrSize + kNetMaxFrame - 4 + in->u8() % 8 : in->u32() % 200000;
          backend->frames.push_back(len);
        }
        std::lock_guard<std::mutex> lock(dev->mutex());
        if (backend->want_read) dev->backend_ready(true, false);
        break;
      }
      case 4: {  // the backend fills up or drains
        backend->full = !backend->full;
        std::lock_guard<std::mutex> lock(dev->mutex());
        if (!backend->full && backend->want_write) dev->backend_ready(false, true);
        break;
      }
      case 5: {  // time passes
        clock += uint64_t{in->u16()} * 100000;
        if (timer_armed) {
          timer_armed = false;
          std::lock_guard<std::mutex> lock(dev->mutex());
          dev->on_timer();
        }
        break;
      }
      case 6: {  // arbitrary bytes anywhere in the first 64 KiB (the rings live there)
        uint16_t at = in->u16();
        int n = 1 + in->u8() % 8;
        for (int i = 0; i < n; i++) mem.store<uint8_t>(static_cast<uint64_t>(at) + i, in->u8());
        break;
      }
      case 7:  // the driver resets the device and starts again
        d.w(0x70, 0);
        start(in->u8());
        break;
      case 8:  // a spurious notification on any queue index
        d.kick(in->u8() % 3);
        break;
    }
  }

  std::vector<uint8_t> ram;
  vmm::GuestMemory mem;
  vmm::CountingInterrupt irq;
  FuzzBackend* backend;
  std::unique_ptr<NetDevice> dev;
  std::unique_ptr<MmioTransport> t;
  uint64_t clock = 1;
  bool timer_armed = false;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  Input in{data + 1, size - 1};
  Harness h(data[0]);
  for (int steps = 0; steps < 64 && !in.empty(); steps++) h.step(&in);
  const NetStats& s = h.dev->stats();
  require(s.tx_frames == h.backend->sent);
#ifdef NET_FUZZER_PRINT_STATS  // for checking what a seed reaches: build without -fsanitize=fuzzer
  std::fprintf(stderr, "rx %llu tx %llu rx_held %d tx_blocked %d dropped %llu\n",
               (unsigned long long)s.rx_frames, (unsigned long long)s.tx_frames, h.dev->rx_held(),
               h.dev->tx_blocked(),
               (unsigned long long)(s.rx_oversize + s.rx_too_big + s.tx_oversize + s.tx_malformed));
#endif
  return 0;
}
