// virtio-net over plain memory with an in-memory backend: features and config space, tx of single
// and chained frames, rx into mergeable and single buffers, rx without buffers (the frame is
// held), malformed chains, a full backend (EAGAIN) and the rate limiter with an injected clock;
// then the tap backend, on a real tap in a network namespace of the test's own (forked child).
#include <arpa/inet.h>
#include <linux/if.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <deque>
#include <string>
#include <vector>

#include "backends/tap.h"
#include "devices/event_loop.h"

#include "devices/interrupt.h"
#include "devices/virtio/mmio.h"
#include "devices/virtio/net.h"
#include "tests/check.h"
#include "tests/virtio_driver.h"

using namespace vmm::virtio;
using vmm::CountingInterrupt;
using vmm::test::kModernRing;
using vmm::test::MmioDriver;
using vmm::test::TestRam;
using vmm::test::TestRing;

namespace {

using Bytes = std::vector<uint8_t>;

class FakeBackend final : public NetBackend {
 public:
  explicit FakeBackend(bool offloads = true) : offloads_(offloads) {}
  void attach(NetDevice* device) override { device_ = device; }
  bool supports_offloads() const override { return offloads_; }
  bool set_offloads(uint64_t features) override {
    offloads_set = features;
    return true;
  }
  NetSend send(const iovec* iov, size_t iovcnt) override {
    if (full) return NetSend::kAgain;
    Bytes frame;
    for (size_t i = 0; i < iovcnt; i++) {
      auto* p = static_cast<const uint8_t*>(iov[i].iov_base);
      frame.insert(frame.end(), p, p + iov[i].iov_len);
    }
    sent.push_back(frame);
    return NetSend::kSent;
  }
  int64_t recv(uint8_t* buf, size_t len) override {
    if (rx.empty()) return 0;
    Bytes f = rx.front();
    rx.pop_front();
    std::memcpy(buf, f.data(), std::min(len, f.size()));
    return static_cast<int64_t>(f.size());
  }
  bool can_scatter() const override { return scatter; }
  int64_t recv_iov(const iovec* iov, size_t iovcnt) override {
    if (rx.empty()) return 0;
    Bytes f = rx.front();
    rx.pop_front();
    size_t off = 0;
    for (size_t i = 0; i < iovcnt && off < f.size(); i++) {
      size_t take = std::min(iov[i].iov_len, f.size() - off);
      std::memcpy(iov[i].iov_base, f.data() + off, take);
      off += take;
    }
    scattered++;
    return static_cast<int64_t>(f.size());  // like a tap: the full length, even when cut short
  }
  void want(bool r, bool w) override {
    want_read = r;
    want_write = w;
  }

  NetDevice* device_ = nullptr;
  bool scatter = true;
  int scattered = 0;
  bool offloads_;
  uint64_t offloads_set = ~0ull;
  bool full = false;
  bool want_read = false, want_write = false;
  std::vector<Bytes> sent;
  std::deque<Bytes> rx;
};

// A frame as the backend hands it over: a header with `flags`, then `len` bytes of `fill`.
Bytes frame(uint32_t len, uint8_t fill, uint8_t flags = 0) {
  Bytes f(kNetHdrSize + len, fill);
  std::memset(f.data(), 0, kNetHdrSize);
  f[0] = flags;
  return f;
}

constexpr uint64_t kRx = 0x10000, kTx = 0x20000, kBuf = 0x40000;
constexpr uint64_t kAll = kModernRing | kNetFMac | kNetFMtu | kNetFStatus | kNetFMrgRxbuf |
                          kNetFCsum | kNetFGuestCsum | kNetFHostTso4 | kNetFGuestTso4;

struct Fixture {
  explicit Fixture(uint64_t features = kAll, NetDeviceConfig cfg = default_config(),
                   bool offloads = true)
      : backend(new FakeBackend(offloads)),
        dev(cfg, std::unique_ptr<NetBackend>(backend), [this] { return clock_ns; }),
        t(ram.mem, &dev, &irq),
        d(&t),
        rx(&ram, kRx, 16),
        tx(&ram, kTx, 16) {
    dev.set_timer([this](uint64_t ns) { timer_ns = ns; });
    negotiated = d.negotiate(features);
    if (!negotiated) return;
    d.setup_queue(0, rx);
    d.setup_queue(1, tx);
    d.driver_ok();
  }
  static NetDeviceConfig default_config() {
    NetDeviceConfig c;
    c.mac = {0x02, 0x00, 0x00, 0x11, 0x22, 0x33};
    c.mtu = 1400;
    return c;
  }
  // Posts rx buffer `i` (descriptor i, 1 segment of `len` bytes at kBuf + i * 0x10000).
  void post_rx(uint16_t i, uint32_t len) {
    rx.set_desc(i, kBuf + 0x10000ull * i, len, kDescFWrite);
    rx.publish(i);
  }
  uint64_t rx_addr(uint16_t i) const { return kBuf + 0x10000ull * i; }
  void deliver(Bytes f) {
    backend->rx.push_back(std::move(f));
    std::lock_guard<std::mutex> lock(dev.mutex());
    dev.backend_ready(true, false);
  }
  NetHeader header_at(uint64_t gpa) {
    NetHeader h{};
    ram.mem.read(gpa, &h, sizeof(h));
    return h;
  }
  TestRam ram{8 << 20};
  FakeBackend* backend;  // owned by dev
  uint64_t clock_ns = 1000;
  uint64_t timer_ns = 0;
  NetDevice dev;
  CountingInterrupt irq;
  MmioTransport t;
  MmioDriver d;
  TestRing rx, tx;
  bool negotiated = false;
};

}  // namespace

VMM_TEST(dev_net_features_and_config_space) {
  Fixture f;
  CHECK(f.negotiated);
  CHECK_EQ(f.d.r(0x008), 1u);  // device id
  uint64_t feat = f.d.device_features();
  for (uint64_t bit : {kFVersion1, kFRingEventIdx, kNetFMac, kNetFMtu, kNetFStatus, kNetFMrgRxbuf,
                       kNetFCsum, kNetFGuestCsum, kNetFHostTso4, kNetFHostTso6, kNetFGuestTso4,
                       kNetFGuestTso6})
    CHECK(feat & bit);
  CHECK_EQ(f.backend->offloads_set, kAll);
  CHECK(f.backend->want_read);
  uint8_t cfg[16];
  for (int i = 0; i < 16; i++) f.t.read(0x100 + i, &cfg[i], 1);
  CHECK_EQ(cfg[0], 0x02);
  CHECK_EQ(cfg[5], 0x33);
  CHECK_EQ(cfg[6] | (cfg[7] << 8), 1);      // status: LINK_UP
  CHECK_EQ(cfg[8] | (cfg[9] << 8), 1);      // max_virtqueue_pairs
  CHECK_EQ(cfg[10] | (cfg[11] << 8), 1400); // mtu
  CHECK_EQ(cfg[12], 0);                     // past the end reads as zero
  uint32_t mtu_word = 0;
  f.t.read(0x108, reinterpret_cast<uint8_t*>(&mtu_word), 4);
  CHECK_EQ(mtu_word, (1400u << 16) | 1u);

  // Without offload support in the backend none of the checksum/TSO bits is offered.
  Fixture plain(kModernRing | kNetFMac, Fixture::default_config(), /*offloads=*/false);
  CHECK(plain.negotiated);
  CHECK_EQ(plain.d.device_features() & kNetOffloadFeatures, 0ull);
  Fixture refused(kModernRing | kNetFCsum, Fixture::default_config(), false);
  CHECK(!refused.negotiated);
  // TSO without the matching checksum offload is refused (FEATURES_OK stays clear).
  Fixture guest_tso(kModernRing | kNetFGuestTso4);
  CHECK(!guest_tso.negotiated);
  Fixture host_tso(kModernRing | kNetFHostTso6 | kNetFGuestCsum);
  CHECK(!host_tso.negotiated);
  Fixture ok(kModernRing | kNetFHostTso6 | kNetFCsum);
  CHECK(ok.negotiated);
}

VMM_TEST(dev_net_tx_single_and_chained_frames) {
  Fixture f;
  // One descriptor: header + 60 bytes.
  Bytes fr = frame(60, 0xab, 1);
  f.ram.mem.write(kBuf, fr.data(), fr.size());
  f.tx.set_desc(0, kBuf, static_cast<uint32_t>(fr.size()));
  f.tx.publish(0);
  f.d.kick(1);
  CHECK_EQ(f.backend->sent.size(), size_t{1});
  CHECK(f.backend->sent[0] == fr);
  CHECK_EQ(f.tx.used_idx(), 1);
  CHECK_EQ(f.tx.used_len(0), 0u);
  CHECK_EQ(f.irq.count(), 1u);
  // A chain: the header split 7 + 5, the payload in two pieces elsewhere.
  Bytes fr2 = frame(3000, 0x5c);
  fr2[kNetHdrSize] = 0x01;
  fr2.back() = 0x02;
  f.ram.mem.write(0x60000, fr2.data(), 7);
  f.ram.mem.write(0x61000, fr2.data() + 7, 5);
  f.ram.mem.write(0x70000, fr2.data() + 12, 1000);
  f.ram.mem.write(0x78000, fr2.data() + 1012, 2000);
  f.tx.set_desc(1, 0x60000, 7, kDescFNext, 2);
  f.tx.set_desc(2, 0x61000, 5, kDescFNext, 3);
  f.tx.set_desc(3, 0x70000, 1000, kDescFNext, 4);
  f.tx.set_desc(4, 0x78000, 2000);
  f.tx.publish(1);
  f.d.kick(1);
  CHECK_EQ(f.backend->sent.size(), size_t{2});
  CHECK(f.backend->sent[1] == fr2);
  CHECK_EQ(f.tx.used_id(1), 1u);
  CHECK_EQ(f.dev.stats().tx_frames, uint64_t{2});
  CHECK_EQ(f.dev.stats().tx_bytes, uint64_t{3060});
}

VMM_TEST(dev_net_rx_mergeable_buffers_set_num_buffers) {
  Fixture f;
  for (uint16_t i = 0; i < 4; i++) f.post_rx(i, 1500);
  f.d.kick(0);
  Bytes fr = frame(3000, 0x77, 2);
  fr[kNetHdrSize + 2999] = 0x99;
  f.deliver(fr);
  // 3012 bytes: 1500 + 1500 + 12, in order, num_buffers 3 in the first buffer's header.
  CHECK_EQ(f.rx.used_idx(), 3);
  CHECK_EQ(f.rx.used_id(0), 0u);
  CHECK_EQ(f.rx.used_len(0), 1500u);
  CHECK_EQ(f.rx.used_len(1), 1500u);
  CHECK_EQ(f.rx.used_id(2), 2u);
  CHECK_EQ(f.rx.used_len(2), 12u);
  NetHeader h = f.header_at(f.rx_addr(0));
  CHECK_EQ(h.num_buffers, 3);
  CHECK_EQ(h.flags, 2);
  CHECK_EQ(f.ram.bytes[f.rx_addr(0) + kNetHdrSize], 0x77);
  CHECK_EQ(f.ram.bytes[f.rx_addr(2) + 11], 0x99);
  CHECK(f.irq.count() >= 1u);
  // A small frame takes one buffer, num_buffers 1.
  f.deliver(frame(100, 0x11));
  CHECK_EQ(f.rx.used_idx(), 4);
  CHECK_EQ(f.rx.used_len(3), 112u);
  CHECK_EQ(f.header_at(f.rx_addr(3)).num_buffers, 1);
  CHECK_EQ(f.dev.stats().rx_frames, uint64_t{2});
  CHECK_EQ(f.dev.stats().rx_bytes, uint64_t{3100});
}

VMM_TEST(dev_net_rx_direct_into_guest_buffers_when_any_frame_fits) {
  Fixture f;
  // 10 x 8 KiB buffers hold the largest frame: frames are read straight into them.
  for (uint16_t i = 0; i < 10; i++) f.post_rx(i, 8192);
  f.d.kick(0);
  Bytes big = frame(20000, 0x61, 1);
  big.back() = 0x62;
  f.deliver(big);
  CHECK_EQ(f.backend->scattered, 1);
  CHECK_EQ(f.rx.used_idx(), 3);  // 20012 = 8192 + 8192 + 3628
  CHECK_EQ(f.rx.used_len(0), 8192u);
  CHECK_EQ(f.rx.used_len(2), 3628u);
  CHECK_EQ(f.header_at(f.rx_addr(0)).num_buffers, 3);
  CHECK_EQ(f.header_at(f.rx_addr(0)).flags, 1);
  CHECK_EQ(f.ram.bytes[f.rx_addr(2) + 3627], 0x62);
  // The next frame needs room for the largest again: 7 reserved buffers (57 KiB) are too few and
  // the ring is empty, so it goes the copying way, into the reserved buffers.
  f.deliver(frame(100, 0x63));
  CHECK_EQ(f.backend->scattered, 1);
  CHECK_EQ(f.rx.used_idx(), 4);
  CHECK_EQ(f.rx.used_id(3), 3u);
  CHECK_EQ(f.rx.used_len(3), 112u);
  CHECK_EQ(f.header_at(f.rx_addr(3)).num_buffers, 1);
  // With more buffers posted, direct again; an oversize frame publishes nothing and keeps them.
  for (uint16_t i = 10; i < 14; i++) f.post_rx(i, 8192);
  f.d.kick(0);
  f.deliver(frame(kNetMaxFrame + 1, 0));
  CHECK_EQ(f.backend->scattered, 2);
  CHECK_EQ(f.dev.stats().rx_oversize, uint64_t{1});
  CHECK_EQ(f.rx.used_idx(), 4);
  f.deliver(frame(kNetMaxFrame, 0x64));  // the largest frame: exactly 8 + 1 buffers of the 10 reserved
  CHECK_EQ(f.backend->scattered, 3);
  CHECK_EQ(f.rx.used_idx(), 13);
  CHECK_EQ(f.header_at(f.rx_addr(4)).num_buffers, 9);
  CHECK_EQ(f.dev.stats().rx_frames, uint64_t{3});
  CHECK(!f.dev.rx_held());

  // Without MRG_RXBUF a single buffer must hold the largest frame for the direct way.
  Fixture one(kModernRing | kNetFMac);
  one.post_rx(0, 70000);
  one.post_rx(1, 1500);
  one.d.kick(0);
  one.deliver(frame(3000, 0x65));
  CHECK_EQ(one.backend->scattered, 1);
  CHECK_EQ(one.rx.used_len(0), 3012u);
  CHECK_EQ(one.header_at(one.rx_addr(0)).num_buffers, 1);
  one.deliver(frame(1000, 0x66));  // buffer 1 is small: copied
  CHECK_EQ(one.backend->scattered, 1);
  CHECK_EQ(one.rx.used_len(1), 1012u);

  // A backend that cannot scatter always gets the copying way.
  Fixture copy;
  copy.backend->scatter = false;
  for (uint16_t i = 0; i < 10; i++) copy.post_rx(i, 8192);
  copy.d.kick(0);
  copy.deliver(big);
  CHECK_EQ(copy.backend->scattered, 0);
  CHECK_EQ(copy.rx.used_idx(), 3);
  CHECK_EQ(copy.header_at(copy.rx_addr(0)).num_buffers, 3);
}

VMM_TEST(dev_net_rx_without_mrg_uses_one_buffer_and_drops_what_does_not_fit) {
  Fixture f(kModernRing | kNetFMac);
  CHECK(f.negotiated);
  CHECK_EQ(f.backend->offloads_set, kModernRing | kNetFMac);
  f.post_rx(0, 1500);
  f.post_rx(1, 1500);
  f.d.kick(0);
  f.deliver(frame(2000, 1));  // does not fit 1500: dropped, the buffer is kept
  CHECK_EQ(f.dev.stats().rx_too_big, uint64_t{1});
  CHECK_EQ(f.rx.used_idx(), 0);
  f.deliver(frame(1000, 2));
  CHECK_EQ(f.rx.used_idx(), 1);
  CHECK_EQ(f.rx.used_id(0), 0u);
  CHECK_EQ(f.rx.used_len(0), 1012u);
  CHECK_EQ(f.header_at(f.rx_addr(0)).num_buffers, 1);
  CHECK_EQ(f.ram.bytes[f.rx_addr(0) + kNetHdrSize], 2);
}

VMM_TEST(dev_net_rx_without_buffers_holds_the_frame) {
  Fixture f;
  f.deliver(frame(500, 3));
  CHECK(f.dev.rx_held());
  CHECK(!f.backend->want_read);  // no more reads until the guest adds buffers
  CHECK_EQ(f.backend->rx.size(), size_t{0});
  f.backend->rx.push_back(frame(40, 4));
  // A frame needing two buffers with one posted: still held, the buffer stays reserved.
  f.post_rx(0, 300);
  f.d.kick(0);
  CHECK(f.dev.rx_held());
  CHECK_EQ(f.rx.used_idx(), 0);
  f.post_rx(1, 300);
  f.d.kick(0);
  CHECK_EQ(f.rx.used_idx(), 2);
  CHECK_EQ(f.rx.used_len(0) + f.rx.used_len(1), 512u);
  CHECK_EQ(f.header_at(f.rx_addr(0)).num_buffers, 2);
  // The next frame was read and is held in turn, not dropped; it arrives with the next buffer.
  CHECK(f.dev.rx_held());
  CHECK_EQ(f.backend->rx.size(), size_t{0});
  f.post_rx(2, 300);
  f.d.kick(0);
  CHECK(!f.dev.rx_held());
  CHECK(f.backend->want_read);
  CHECK_EQ(f.rx.used_idx(), 3);
  CHECK_EQ(f.rx.used_len(2), 52u);
  CHECK_EQ(f.dev.stats().rx_frames, uint64_t{2});
  // A reset forgets a held frame.
  f.deliver(frame(10, 5));
  CHECK(f.dev.rx_held());
  f.d.w(0x70, 0);
  CHECK(!f.dev.rx_held());
  CHECK(!f.backend->want_read);
}

VMM_TEST(dev_net_malformed_chains_are_rejected) {
  Fixture f;
  Bytes good = frame(60, 0x42);
  f.ram.mem.write(kBuf, good.data(), good.size());
  uint16_t used = 0;
  auto tx_one = [&](uint16_t head) {
    f.tx.publish(head);
    f.d.kick(1);
    CHECK_EQ(f.tx.used_idx(), ++used);
    CHECK_EQ(f.tx.used_len(static_cast<uint16_t>(used - 1)), 0u);
  };
  // next index out of range
  f.tx.set_desc(0, kBuf, 10, kDescFNext, 99);
  tx_one(0);
  // address outside guest memory, and an address + length that wraps
  f.tx.set_desc(1, f.ram.mem.size() - 4, 72);
  tx_one(1);
  f.tx.set_desc(2, ~0ull - 8, 72);
  tx_one(2);
  // a device-writable descriptor where the device must read
  f.tx.set_desc(3, kBuf, 72, kDescFWrite);
  tx_one(3);
  f.tx.set_desc(4, kBuf, 12, kDescFNext, 5);
  f.tx.set_desc(5, kBuf + 12, 60, kDescFWrite);
  tx_one(4);
  // shorter than the header
  f.tx.set_desc(6, kBuf, 11);
  tx_one(6);
  // oversize: header + 65551 bytes
  f.tx.set_desc(7, kBuf, kNetHdrSize + kNetMaxFrame + 1);
  tx_one(7);
  // a descriptor loop, and an indirect table whose entry runs past the end of memory
  f.tx.set_desc(8, kBuf, 10, kDescFNext, 9);
  f.tx.set_desc(9, kBuf, 10, kDescFNext, 8);
  tx_one(8);
  f.tx.set_desc(10, 0x30000, 32, kDescFIndirect);
  f.tx.write_desc(0x30000, kBuf, 0xfffffff0u, kDescFNext, 1);
  f.tx.write_desc(0x30010, kBuf, 0x100, 0, 0);
  tx_one(10);
  CHECK_EQ(f.backend->sent.size(), size_t{0});
  CHECK_EQ(f.dev.stats().tx_malformed, uint64_t{3});
  CHECK_EQ(f.dev.stats().tx_oversize, uint64_t{1});
  // The device keeps going: a good frame still goes out.
  f.tx.set_desc(11, kBuf, 72);
  tx_one(11);
  CHECK_EQ(f.backend->sent.size(), size_t{1});
  CHECK(f.backend->sent[0] == good);

  // rx: a device-readable buffer, one shorter than a header, one outside memory: all returned
  // unused; the frame lands in the good one after them.
  f.rx.set_desc(0, kBuf, 1500);
  f.rx.publish(0);
  f.rx.set_desc(1, kBuf, 8, kDescFWrite);
  f.rx.publish(1);
  f.rx.set_desc(2, f.ram.mem.size(), 1500, kDescFWrite);
  f.rx.publish(2);
  f.post_rx(3, 1500);
  f.deliver(frame(64, 0x21));
  CHECK_EQ(f.rx.used_idx(), 4);
  CHECK_EQ(f.rx.used_len(0), 0u);
  CHECK_EQ(f.rx.used_len(1), 0u);
  CHECK_EQ(f.rx.used_len(2), 0u);
  CHECK_EQ(f.rx.used_id(3), 3u);
  CHECK_EQ(f.rx.used_len(3), 76u);
  CHECK_EQ(f.dev.stats().rx_bad_buffers, uint64_t{2});
  // Backend frames longer than the maximum, or shorter than a header, are dropped and counted.
  f.post_rx(4, 1500);
  f.deliver(frame(kNetMaxFrame + 1, 0));
  Bytes runt(5, 0);
  f.deliver(runt);
  CHECK_EQ(f.dev.stats().rx_oversize, uint64_t{1});
  CHECK_EQ(f.dev.stats().rx_errors, uint64_t{1});
  CHECK_EQ(f.rx.used_idx(), 4);
  CHECK(!f.dev.rx_held());
  // A head index past the ring breaks the queue: DEVICE_NEEDS_RESET, no crash.
  f.rx.set_avail_idx(static_cast<uint16_t>(f.rx.avail_idx + 1));
  f.ram.put<uint16_t>(f.rx.avail + 4 + 2ull * ((f.rx.avail_idx - 1) % 16), 500);
  f.deliver(frame(64, 0));  // buffer 4 is reserved; looking for more meets the bad head
  CHECK(f.d.r(0x70) & kStatusDeviceNeedsReset);
  f.deliver(frame(64, 0));  // the device no longer touches the rings until a reset
  CHECK_EQ(f.rx.used_idx(), 4);
  CHECK_EQ(f.backend->rx.size(), size_t{1});
  f.d.w(0x70, 0);
  CHECK(!f.dev.rx_held());
}

VMM_TEST(dev_net_chain_lengths_that_overflow_32_bits_are_rejected) {
  // 5 GiB of guest memory, reserved but never touched except for the rings, so two 2.5 GiB
  // descriptors both lie inside it and only their sum is wrong.
  const uint64_t size = 5ull << 30;
  void* big = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  CHECK(big != MAP_FAILED);
  if (big == MAP_FAILED) return;
  {
    Fixture f;
    f.d.w(0x70, 0);  // reset through the fixture's transport, then rebind the device
    f.ram.mem = vmm::GuestMemory(static_cast<uint8_t*>(big), size);
    MmioTransport t(f.ram.mem, &f.dev, &f.irq);  // a transport over the big memory
    MmioDriver d(&t);
    CHECK(d.negotiate(kAll));
    d.setup_queue(0, f.rx);
    d.setup_queue(1, f.tx);
    d.driver_ok();
    f.tx.set_desc(0, 1ull << 30, 0xa0000000u, kDescFNext, 1);
    f.tx.set_desc(1, 2ull << 30, 0xa0000000u);
    f.tx.publish(0);
    d.kick(1);
    CHECK_EQ(f.tx.used_idx(), 1);
    CHECK_EQ(f.tx.used_len(0), 0u);
    CHECK(t.queue(1).error().find("longer than 4 GiB") != std::string::npos);
    // One descriptor of 3.5 GiB: a valid chain, but an oversize frame.
    f.tx.set_desc(2, 1ull << 30, 0xe0000000u);
    f.tx.publish(2);
    d.kick(1);
    CHECK_EQ(f.tx.used_idx(), 2);
    CHECK_EQ(f.dev.stats().tx_oversize, uint64_t{1});
    CHECK_EQ(f.backend->sent.size(), size_t{0});
    d.w(0x70, 0);
  }
  munmap(big, size);
}

VMM_TEST(dev_net_tx_stops_on_eagain_and_resumes_when_writable) {
  Fixture f;
  Bytes fr = frame(100, 7);
  f.ram.mem.write(kBuf, fr.data(), fr.size());
  f.backend->full = true;
  for (uint16_t i = 0; i < 3; i++) {
    f.tx.set_desc(i, kBuf, static_cast<uint32_t>(fr.size()));
    f.tx.publish(i);
  }
  f.d.kick(1);
  CHECK(f.dev.tx_blocked());
  CHECK(f.backend->want_write);
  CHECK_EQ(f.tx.used_idx(), 0);
  f.d.kick(1);  // a kick while blocked changes nothing
  CHECK_EQ(f.tx.used_idx(), 0);
  f.backend->full = false;
  {
    std::lock_guard<std::mutex> lock(f.dev.mutex());
    f.dev.backend_ready(false, true);
  }
  CHECK(!f.dev.tx_blocked());
  CHECK(!f.backend->want_write);
  CHECK_EQ(f.tx.used_idx(), 3);
  CHECK_EQ(f.backend->sent.size(), size_t{3});
}

VMM_TEST(dev_net_token_bucket) {
  TokenBucket b;
  b.rate = 1000;
  b.burst = 500;
  b.refill(0);
  CHECK(b.ready(500));
  b.take(500);
  CHECK(!b.ready(1));
  CHECK_EQ(b.wait_ns(100), uint64_t{100000000});  // 100 tokens at 1000/s
  b.refill(100000000);
  CHECK(b.ready(100));
  b.refill(10000000000ull);  // capped at the burst
  CHECK(b.ready(500));
  b.take(2000);  // larger than the burst: allowed when full, leaves debt
  CHECK_EQ(b.wait_ns(500), uint64_t{2000000000});
  TokenBucket none;
  CHECK(none.ready(1u << 30));
  CHECK_EQ(none.wait_ns(1u << 30), uint64_t{0});
}

VMM_TEST(dev_net_rate_limits_tx_and_rx_with_a_timer) {
  NetDeviceConfig cfg = Fixture::default_config();
  cfg.tx.packets_per_sec = 2;
  cfg.tx.packets_burst = 2;
  cfg.rx.bytes_per_sec = 1000;
  cfg.rx.bytes_burst = 1000;
  Fixture f(kAll, cfg);
  Bytes fr = frame(100, 7);
  f.ram.mem.write(kBuf, fr.data(), fr.size());
  for (uint16_t i = 0; i < 3; i++) {
    f.tx.set_desc(i, kBuf, static_cast<uint32_t>(fr.size()));
    f.tx.publish(i);
  }
  f.d.kick(1);
  CHECK_EQ(f.backend->sent.size(), size_t{2});
  CHECK_EQ(f.timer_ns, uint64_t{500000000});  // one token at 2/s
  f.clock_ns += 499000000;
  {
    std::lock_guard<std::mutex> lock(f.dev.mutex());
    f.dev.on_timer();  // early: still limited, re-armed for the rest
  }
  CHECK_EQ(f.backend->sent.size(), size_t{2});
  CHECK_EQ(f.timer_ns, uint64_t{1000000});
  f.clock_ns += 1000000;
  {
    std::lock_guard<std::mutex> lock(f.dev.mutex());
    f.dev.on_timer();
  }
  CHECK_EQ(f.backend->sent.size(), size_t{3});
  CHECK_EQ(f.tx.used_idx(), 3);

  // rx: 1000 bytes/s with a 1000-byte burst: a 900-byte frame passes, the next is read and held.
  for (uint16_t i = 0; i < 4; i++) f.post_rx(i, 2000);
  f.backend->rx.push_back(frame(900, 1));
  f.backend->rx.push_back(frame(900, 2));
  f.deliver(frame(900, 3));
  CHECK_EQ(f.rx.used_idx(), 1);
  CHECK(f.dev.rx_held());
  CHECK(!f.backend->want_read);
  CHECK_EQ(f.backend->rx.size(), size_t{1});
  CHECK_EQ(f.timer_ns, uint64_t{800000000});  // from 100 tokens to 900 at 1000/s
  f.clock_ns += 800000000;
  {
    std::lock_guard<std::mutex> lock(f.dev.mutex());
    f.dev.on_timer();
  }
  CHECK_EQ(f.rx.used_idx(), 2);
  CHECK_EQ(f.ram.bytes[f.rx_addr(1) + kNetHdrSize], 2);
  CHECK_EQ(f.backend->rx.size(), size_t{0});  // the third frame is read and held in turn
  CHECK(f.dev.rx_held());
}

// --- the tap backend -----------------------------------------------------------------------------

VMM_TEST(dev_net_tap_offload_flags_follow_guest_features) {
  CHECK_EQ(vmm::TapBackend::offload_flags(0), 0u);
  CHECK_EQ(vmm::TapBackend::offload_flags(kNetFGuestTso4), 0u);  // TSO without CSUM: nothing
  CHECK_EQ(vmm::TapBackend::offload_flags(kNetFGuestCsum), unsigned{TUN_F_CSUM});
  CHECK_EQ(vmm::TapBackend::offload_flags(kNetFGuestCsum | kNetFGuestTso4 | kNetFGuestTso6 |
                                          kNetFHostTso4 | kNetFCsum),
           unsigned{TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6});
  std::string error;
  CHECK(vmm::TapBackend::open(std::string(IFNAMSIZ, 'x'), &error) == nullptr);
  CHECK(error.find("tap name") != std::string::npos);
  int fds[2];
  CHECK_EQ(pipe(fds), 0);
  close(fds[1]);
  CHECK(vmm::TapBackend::adopt(fds[0], &error) == nullptr);  // not a tap; closed by adopt
  CHECK(error.find("not a tap") != std::string::npos);
}

namespace {

// Runs in a child with a network namespace of its own: a real tap, driven through the device by a
// fake guest. Returns 0 or the number of the step that failed.
int tap_child() {
  if (unshare(CLONE_NEWNET) != 0) return 77;
  std::string error;
  auto tap = vmm::TapBackend::open("vctap0", &error);
  if (!tap) return std::fprintf(stderr, "tap: %s\n", error.c_str()), 1;
  if (!tap->supports_offloads()) return 2;
  vmm::EventLoop loop;
  if (!tap->start(&loop, &error)) return 2;
  vmm::TapBackend* backend = tap.get();
  TestRam ram(8 << 20);
  NetDeviceConfig cfg = Fixture::default_config();
  NetDevice dev(cfg, std::move(tap));
  CountingInterrupt irq;
  MmioTransport t(ram.mem, &dev, &irq);
  MmioDriver d(&t);
  TestRing rx(&ram, kRx, 16), tx(&ram, kTx, 16);
  if (!d.negotiate(kAll)) return 3;
  d.setup_queue(0, rx);
  d.setup_queue(1, tx);
  d.driver_ok();
  {
    // What DRIVER_OK did (CSUM + TSO4 for this guest), and the other combinations, are accepted.
    std::lock_guard<std::mutex> lock(dev.mutex());
    if (!backend->set_offloads(kAll) || !backend->set_offloads(kAll | kNetFGuestTso6) ||
        !backend->set_offloads(0))
      return 17;
    backend->set_offloads(kAll);
  }

  // Bring the tap up with 10.77.0.1/24 and watch what the kernel receives on it.
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq ifr{};
  std::strcpy(ifr.ifr_name, "vctap0");
  auto* sin = reinterpret_cast<sockaddr_in*>(&ifr.ifr_addr);
  sin->sin_family = AF_INET;
  inet_pton(AF_INET, "10.77.0.1", &sin->sin_addr);
  if (ioctl(s, SIOCSIFADDR, &ifr) != 0) return 4;
  inet_pton(AF_INET, "255.255.255.0", &sin->sin_addr);
  if (ioctl(s, SIOCSIFNETMASK, &ifr) != 0) return 5;
  if (ioctl(s, SIOCGIFFLAGS, &ifr) != 0) return 6;
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) return 7;
  if (ioctl(s, SIOCGIFINDEX, &ifr) != 0) return 8;
  int pkt = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
  sockaddr_ll ll{};
  ll.sll_family = AF_PACKET;
  ll.sll_protocol = htons(ETH_P_ALL);
  ll.sll_ifindex = ifr.ifr_ifindex;
  if (pkt < 0 || bind(pkt, reinterpret_cast<sockaddr*>(&ll), sizeof(ll)) != 0) return 9;

  // tx: a broadcast frame of a local experimental ethertype, header and body in two descriptors.
  Bytes fr = frame(60, 0x3c);
  std::memset(fr.data() + kNetHdrSize, 0xff, 6);
  std::memcpy(fr.data() + kNetHdrSize + 6, cfg.mac.data(), 6);
  fr[kNetHdrSize + 12] = 0x88;
  fr[kNetHdrSize + 13] = 0xb5;
  ram.mem.write(kBuf, fr.data(), fr.size());
  tx.set_desc(0, kBuf, kNetHdrSize, kDescFNext, 1);
  tx.set_desc(1, kBuf + kNetHdrSize, 60);
  tx.publish(0);
  d.kick(1);
  if (tx.used_idx() != 1 || dev.stats().tx_frames != 1) return 10;
  bool seen = false;
  for (int i = 0; i < 20 && !seen; i++) {
    pollfd p{pkt, POLLIN, 0};
    if (poll(&p, 1, 1000) != 1) return 11;
    uint8_t got[2048];
    ssize_t n = recv(pkt, got, sizeof(got), 0);
    seen = n == 60 && std::memcmp(got, fr.data() + kNetHdrSize, 60) == 0;
  }
  if (!seen) return 12;

  // rx: a datagram to a neighbour makes the kernel ARP for it out of the tap. 8 x 9000 bytes of
  // buffers hold any frame, so the tap is read straight into them (readv).
  for (uint16_t i = 0; i < 8; i++) {
    rx.set_desc(i, kBuf + 0x10000ull * (i + 1), 9000, kDescFWrite);
    rx.publish(i);
  }
  d.kick(0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(9);
  inet_pton(AF_INET, "10.77.0.2", &to.sin_addr);
  sendto(s, "x", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
  seen = false;
  for (uint16_t used = 0; used < 8 && !seen;) {
    // The backend's own watch on the loop (EPOLLIN, because the device wants to read).
    if (loop.run_once(2000) < 1) return 13;
    for (; used < rx.used_idx(); used++) {
      uint64_t at = kBuf + 0x10000ull * (rx.used_id(used) + 1);
      NetHeader h{};
      ram.mem.read(at, &h, sizeof(h));
      if (h.num_buffers != 1) return 14;
      // ethertype 0x0806 at bytes 12..13 of the frame
      if (ram.get<uint8_t>(at + kNetHdrSize + 12) == 0x08 && ram.get<uint8_t>(at + kNetHdrSize + 13) == 0x06)
        seen = true;
    }
  }
  if (!seen) return 15;
  if (dev.stats().rx_errors || dev.stats().rx_oversize) return 16;
  // The copying way too: with the buffers left (fewer than a largest frame needs), another ARP.
  uint16_t before = rx.used_idx();
  inet_pton(AF_INET, "10.77.0.3", &to.sin_addr);
  sendto(s, "x", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof(to));
  for (int i = 0; i < 20 && rx.used_idx() == before; i++)
    if (loop.run_once(2000) < 1) return 18;
  if (rx.used_idx() == before) return 19;
  return 0;
}

}  // namespace

VMM_TEST(dev_net_tap_in_its_own_netns_moves_frames_both_ways) {
  pid_t pid = fork();
  if (pid == 0) _exit(tap_child());
  int status = 0;
  CHECK_EQ(waitpid(pid, &status, 0), pid);
  CHECK(WIFEXITED(status));
  int code = WEXITSTATUS(status);
  if (code == 77) {
    std::printf("SKIP dev_net_tap_in_its_own_netns_moves_frames_both_ways: no CAP_NET_ADMIN for unshare(CLONE_NEWNET)\n");
    return;
  }
  CHECK_EQ(code, 0);
}
