// Device models saved and loaded (SaveState/LoadState): a device saved, loaded into a fresh one,
// behaves as the first would have — the serial FIFO and registers, the i8042's buffer and pending
// command, a virtqueue that goes on from its indices after a restore — and a load that does not
// fit the device (another kind, another disk, features the device cannot give) is refused with
// nothing changed. The vsock transport reset is in dev_vsock_test.
#include <fcntl.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "backends/blk_file.h"
#include "devices/i8042.h"
#include "devices/interrupt.h"
#include "devices/serial.h"
#include "devices/virtio/blk.h"
#include "devices/virtio/mmio.h"
#include "devices/virtio/net.h"
#include "devices/virtio/rng.h"
#include "snapshot/device_state.h"
#include "tests/check.h"
#include "tests/virtio_driver.h"

using namespace vmm::virtio;
using vmm::CountingInterrupt;
using vmm::FileBlockBackend;
using vmm::I8042;
using vmm::Serial;
using vmm::test::kModernRing;
using vmm::test::MmioDriver;
using vmm::test::TestRam;
using vmm::test::TestRing;

namespace {



uint8_t In(vmm::BusDevice* d, uint64_t port) {
  uint8_t v = 0;
  d->read(port, &v, 1);
  return v;
}
void Out(vmm::BusDevice* d, uint64_t port, uint8_t v) { d->write(port, &v, 1); }

// A guest at run time: a transport with its driver up, and rings in its RAM.
template <typename Dev>
struct Guest {
  template <typename... Args>
  explicit Guest(Args&&... args) : dev(std::forward<Args>(args)...), t(ram.mem, &dev, &irq), d(&t) {}
  TestRam ram;
  Dev dev;
  CountingInterrupt irq;
  MmioTransport t;
  MmioDriver d;
};

// Saves `from` (transport and device) and loads it into `to`, which runs on a copy of from's RAM
// (what a restore maps).
template <typename A, typename B>
vc::Status Restore(Guest<A>* from, Guest<B>* to) {
  std::vector<uint8_t> dev = from->dev.SaveState();
  std::vector<uint8_t> mmio = from->t.SaveState();
  to->ram.bytes = from->ram.bytes;
  vc::Status s = to->dev.LoadState(dev.data(), dev.size(), 4);
  if (!s.ok()) return s;
  return to->t.LoadState(mmio.data(), mmio.size(), to->ram.mem.size(), 4);
}

// A 64 KiB raw image for blk slots.
struct Image {
  Image() {
    char tmpl[] = "/tmp/vc-snap-blk-XXXXXX";
    int fd = mkstemp(tmpl);
    path = tmpl;
    if (fd >= 0) {
      if (ftruncate(fd, size) != 0) std::printf("# ftruncate %s failed\n", path.c_str());
      close(fd);
    }
  }
  ~Image() { unlink(path.c_str()); }
  std::unique_ptr<FileBlockBackend> open() {
    std::string error;
    auto b = FileBlockBackend::open(path, false, &error);
    if (!b) std::printf("# %s\n", error.c_str());
    return b;
  }
  std::string path;
  off_t size = 64 * 1024;
};

// A net backend that takes nothing (every send is EAGAIN) and has nothing to give.
class StuckBackend final : public NetBackend {
 public:
  explicit StuckBackend(bool offloads) : offloads_(offloads) {}
  void attach(NetDevice*) override {}
  bool supports_offloads() const override { return offloads_; }
  bool set_offloads(uint64_t f) override {
    applied = f;
    return true;
  }
  NetSend send(const iovec*, size_t) override { return NetSend::kAgain; }
  int64_t recv(uint8_t*, size_t) override { return 0; }
  void want(bool, bool) override {}
  uint64_t applied = 0;

 private:
  bool offloads_;
};

NetDeviceConfig NetConfig(uint16_t mtu = 1500) {
  NetDeviceConfig c;
  c.mac = {0x02, 0, 0, 0, 0, 7};
  c.mtu = mtu;
  return c;
}

}  // namespace

VMM_TEST(snap_serial_device_continues_after_load) {
  CountingInterrupt irq1, irq2;
  Serial a(-1, &irq1), b(-1, &irq2);
  Out(&a, 3, 0x80);  // DLAB: the divisor latch
  Out(&a, 0, 0x01);
  Out(&a, 1, 0x00);
  Out(&a, 3, 0x03);  // 8N1
  Out(&a, 2, 0x07);  // FIFOs on
  Out(&a, 4, 0x0b);
  Out(&a, 7, 0x5a);
  Out(&a, 1, 0x01);  // rx interrupt
  a.queue_input(reinterpret_cast<const uint8_t*>("hello"), 5);
  CHECK_EQ(In(&a, 0), 'h');
  std::vector<uint8_t> saved = a.SaveState();
  CHECK(b.LoadState(saved.data(), saved.size()).ok());
  CHECK(b.SaveState() == saved);
  CHECK_EQ(irq2.count(), 1u);  // data waits with its interrupt enabled: the line is pulsed
  CHECK_EQ(In(&b, 2), 0xc4);   // IIR: rx data, FIFOs enabled
  CHECK_EQ(In(&b, 3), 0x03);
  CHECK_EQ(In(&b, 4), 0x0b);
  CHECK_EQ(In(&b, 7), 0x5a);
  Out(&b, 3, 0x83);
  CHECK_EQ(In(&b, 0), 0x01);  // the divisor latch
  Out(&b, 3, 0x03);
  std::string rest;
  while (In(&b, 5) & 1) rest += static_cast<char>(In(&b, 0));
  CHECK(rest == "ello");
  CHECK_EQ(In(&b, 2), 0xc1);  // nothing pending
  // A UART with nothing pending is not pulsed.
  CountingInterrupt irq3;
  Serial c(-1, &irq3);
  saved = b.SaveState();
  CHECK(c.LoadState(saved.data(), saved.size()).ok());
  CHECK_EQ(irq3.count(), 0u);
}

VMM_TEST(snap_serial_device_load_refuses_and_changes_nothing) {
  Serial a(-1, nullptr);
  a.queue_input(reinterpret_cast<const uint8_t*>("x"), 1);
  std::vector<uint8_t> before = a.SaveState();
  std::vector<uint8_t> bad = before;
  bad[0] = 0x10;
  CHECK_ERROR(a.LoadState(bad.data(), bad.size()), "snapshot section serial: ier 0x10 has bits outside 0x0f");
  CHECK(a.SaveState() == before);
}

VMM_TEST(snap_i8042_device_continues_after_load) {
  CountingInterrupt irq1, irq2;
  I8042 a(nullptr, &irq1), b(nullptr, &irq2);
  Out(&a, I8042::kCommandOffset, 0xaa);  // self test: 0x55 waits in the output buffer
  Out(&a, I8042::kCommandOffset, 0x60);  // write the command byte: waits for its data byte
  std::vector<uint8_t> saved = a.SaveState();
  CHECK(b.LoadState(saved.data(), saved.size()).ok());
  CHECK_EQ(irq2.count(), 1u);
  CHECK_EQ(In(&b, I8042::kCommandOffset) & 0x09, 0x09);  // output full, command pending
  Out(&b, I8042::kDataOffset, 0x47);  // the data byte the restored controller was waiting for
  CHECK_EQ(In(&b, I8042::kDataOffset), 0x55);
  Out(&b, I8042::kCommandOffset, 0x20);
  CHECK_EQ(In(&b, I8042::kDataOffset), 0x47);
  std::vector<uint8_t> bad = {0x01, 0x99, 0, 0, 0, 0};
  std::vector<uint8_t> before = b.SaveState();
  CHECK_ERROR(b.LoadState(bad.data(), bad.size()), "snapshot section i8042: pendingCommand 0x99");
  CHECK(b.SaveState() == before);
}

// The ring round trip: buffers before the snapshot are used, one published without a notification
// is served by the restored device, and the driver goes on from the same indices.
VMM_TEST(snap_mmio_virtqueue_continues_after_restore) {
  Guest<RngDevice> a;
  TestRing ring(&a.ram, 0x10000, 8);
  CHECK(a.d.negotiate(kModernRing));
  a.d.setup_queue(0, ring);
  a.d.driver_ok();
  for (uint16_t i = 0; i < 6; i++) {
    ring.set_desc(i, 0x40000 + 0x100 * i, 16, kDescFWrite);
    ring.publish(i);
  }
  a.d.kick(0);
  CHECK_EQ(ring.used_idx(), 6);
  a.d.ack_interrupts();
  ring.set_used_event(6);  // EVENT_IDX: interrupt me for the next one
  a.d.w(0x30, 0);  // QueueSel stays 0; features selector at 1 to see it survive
  a.d.w(0x14, 1);
  ring.set_desc(6, 0x40600, 32, kDescFWrite);
  ring.publish(6);  // published, never notified: the old VMM died before it looked

  Guest<RngDevice> b;
  vc::Status s = Restore(&a, &b);
  CHECK(s.ok());
  if (!s.ok()) return (void)std::printf("# %s\n", s.error().c_str());
  TestRing rb = ring;
  rb.ram = &b.ram;
  // Registers as the driver left them.
  CHECK_EQ(b.d.r(0x70), a.d.r(0x70));
  CHECK_EQ(b.d.r(0x10), a.d.r(0x10));  // DeviceFeaturesSel 1: the high word
  CHECK_EQ(b.d.r(0x44), 1u);
  CHECK_EQ(b.d.r(0xfc), a.d.r(0xfc));
  // The restored device looked at the ring once: buffer 6 is used.
  CHECK_EQ(rb.used_idx(), 7);
  CHECK_EQ(rb.used_id(6), 6u);
  CHECK_EQ(rb.used_len(6), 32u);
  CHECK(b.irq.count() >= 1);
  CHECK_EQ(b.d.ack_interrupts(), 1u);
  // And goes on: two more, across the ring's wrap (index 8 is slot 0).
  for (uint16_t i = 0; i < 2; i++) {
    rb.set_desc(static_cast<uint16_t>(i), 0x40000 + 0x100 * i, 8, kDescFWrite);
    rb.publish(i);
  }
  rb.set_used_event(8);
  b.d.kick(0);
  CHECK_EQ(rb.used_idx(), 9);
  CHECK_EQ(rb.used_id(8), 1u);
  CHECK_EQ(rb.used_len(8), 8u);
  CHECK_EQ(rb.avail_event(), 9);  // EVENT_IDX: the device asks for the next notification
  // The restored transport saves the same state the first one would have.
  std::vector<uint8_t> again = b.t.SaveState();
  auto decoded = vmm::snapshot::DecodeMmioState(again.data(), again.size(), 4, b.ram.mem.size());
  CHECK(decoded.ok() && decoded->queues[0].next_avail == 9 && decoded->queues[0].next_used == 9);
  // The interrupt the driver had not acknowledged is pulsed again after a load.
  Guest<RngDevice> c;
  b.d.kick(0);
  CHECK(Restore(&b, &c).ok());
  CHECK_EQ(c.irq.count(), 1u);
}

VMM_TEST(snap_mmio_fresh_transport_round_trip) {
  Guest<RngDevice> a, b;
  vc::Status s = Restore(&a, &b);
  CHECK(s.ok());
  CHECK_EQ(b.d.r(0x70), 0u);
  CHECK_EQ(b.irq.count(), 0u);
  CHECK(b.t.SaveState() == a.t.SaveState());
}

VMM_TEST(snap_mmio_load_refuses_what_does_not_fit_and_changes_nothing) {
  Image image;
  Guest<BlkDevice> ro(true);  // a read-only slot: the driver negotiated VIRTIO_BLK_F_RO
  std::string error;
  CHECK(ro.dev.attach(image.open(), "disk", &error));
  TestRing ring(&ro.ram, 0x10000, 128);
  CHECK(ro.d.negotiate(kModernRing | kBlkFRo));
  ro.d.setup_queue(0, ring);
  ro.d.driver_ok();
  std::vector<uint8_t> mmio = ro.t.SaveState();

  Guest<BlkDevice> rw(false);
  std::vector<uint8_t> before = rw.t.SaveState();
  CHECK_ERROR(rw.t.LoadState(mmio.data(), mmio.size(), rw.ram.mem.size(), 4),
              "snapshot section virtio-mmio[4]: driverFeatures 0x130000020 include 0x20, which this device does not offer");
  Guest<BlkDevice> small(true, static_cast<uint16_t>(64));
  CHECK_ERROR(small.t.LoadState(mmio.data(), mmio.size(), small.ram.mem.size(), 4),
              "snapshot section virtio-mmio[4]: queue 0 size 128 is over this device's maximum of 64");
  Guest<RngDevice> rng;
  CHECK_ERROR(rng.t.LoadState(mmio.data(), mmio.size(), rng.ram.mem.size(), 4),
              "snapshot section virtio-mmio[4]: deviceId 2 (blk), but this slot's device is 4 (rng)");
  CHECK_ERROR(rw.t.LoadState(mmio.data(), mmio.size(), 2 * rw.ram.mem.size(), 4),
              "snapshot section virtio-mmio[4]: the snapshot's RAM is 2097152 bytes, this VM's 1048576");
  CHECK_ERROR(rw.t.LoadState(mmio.data(), mmio.size(), 0x10000, 4),
              "snapshot section virtio-mmio[4]: queue 0 descAddr 0x10000 + 2048 bytes lies outside guest RAM (0x10000 bytes)");
  CHECK(rw.t.SaveState() == before);
  CHECK_EQ(rw.irq.count(), 0u);
}

VMM_TEST(snap_blk_device_state_checks_the_disk) {
  Image image, other;
  other.size = 128 * 1024;
  if (truncate(other.path.c_str(), other.size) != 0) std::printf("# truncate failed\n");
  Guest<BlkDevice> a(true);
  std::string error;
  CHECK(a.dev.attach(image.open(), "vc-root", &error));
  std::vector<uint8_t> saved = a.dev.SaveState();
  auto decoded = vmm::snapshot::DecodeVirtioDeviceState(saved.data(), saved.size(), 1);
  CHECK(decoded.ok() && decoded->blk_capacity == 128 && decoded->blk_read_only && decoded->blk_serial == "vc-root");

  Guest<BlkDevice> same(true);
  CHECK(same.dev.attach(image.open(), "vc-root", &error));
  CHECK(same.dev.LoadState(saved.data(), saved.size(), 1).ok());
  Guest<BlkDevice> writable(false);
  CHECK(writable.dev.attach(image.open(), "vc-root", &error));
  CHECK_ERROR(writable.dev.LoadState(saved.data(), saved.size(), 1),
              "snapshot section virtio-device[1]: the guest knows the slot as read-only, the restore's config makes it writable");
  Guest<BlkDevice> bigger(true);
  CHECK(bigger.dev.attach(other.open(), "vc-root", &error));
  CHECK_ERROR(bigger.dev.LoadState(saved.data(), saved.size(), 1),
              "snapshot section virtio-device[1]: blk capacity 128 sectors, but the disk the restore attached has 256");
  Guest<BlkDevice> renamed(true);
  CHECK(renamed.dev.attach(image.open(), "vc-other", &error));
  CHECK_ERROR(renamed.dev.LoadState(saved.data(), saved.size(), 1),
              "blk serial \"vc-root\", but the disk the restore attached has \"vc-other\"");
  Guest<BlkDevice> empty(true);
  CHECK_ERROR(empty.dev.LoadState(saved.data(), saved.size(), 1), "blk capacity 128 sectors, but the disk the restore attached has 0");
}

VMM_TEST(snap_virtio_device_refuses_another_kind) {
  Guest<BlkDevice> blk(false);
  std::vector<uint8_t> saved = blk.dev.SaveState();
  Guest<NetDevice> net(NetConfig(), std::make_unique<StuckBackend>(false));
  CHECK_ERROR(net.dev.LoadState(saved.data(), saved.size(), 2),
              "snapshot section virtio-device[2]: a blk device's state cannot be loaded into this net device");
  Guest<RngDevice> rng;
  CHECK_ERROR(rng.dev.LoadState(saved.data(), saved.size(), 2), "a blk device's state cannot be loaded into this rng device");
  saved = rng.dev.SaveState();
  CHECK(saved == (std::vector<uint8_t>{4, 0, 0, 0}));
  CHECK_ERROR(blk.dev.LoadState(saved.data(), saved.size(), 2), "a rng device's state cannot be loaded into this blk device");
  CHECK(rng.dev.LoadState(saved.data(), saved.size(), 2).ok());
}

// net: a tx frame the backend never took and the rx buffers the device holds go back to the
// driver at save, so the saved indices account for every buffer; the offloads are re-applied to
// the restored backend; an MTU or offloads the new backend cannot match are refused.
VMM_TEST(snap_net_device_save_returns_held_buffers_and_restores_offloads) {
  constexpr uint64_t kCsum = kNetFCsum | kNetFGuestCsum;
  Guest<NetDevice> a(NetConfig(), std::make_unique<StuckBackend>(true));
  auto* backend_a = static_cast<StuckBackend*>(a.dev.backend());
  TestRing rx(&a.ram, 0x10000, 16), tx(&a.ram, 0x20000, 16);
  CHECK(a.d.negotiate(kModernRing | kCsum | kNetFMac | kNetFMrgRxbuf));
  a.d.setup_queue(0, rx);
  a.d.setup_queue(1, tx);
  a.d.driver_ok();
  CHECK_EQ(backend_a->applied & kCsum, kCsum);
  tx.set_desc(0, 0x40000, 12 + 60);
  tx.publish(0);
  a.d.kick(1);
  CHECK(a.dev.tx_blocked());  // the backend is full: the device holds the chain
  CHECK_EQ(tx.used_idx(), 0);

  std::vector<uint8_t> dev = a.dev.SaveState();
  std::vector<uint8_t> mmio = a.t.SaveState();
  CHECK_EQ(tx.used_idx(), 1);  // given back, unsent
  CHECK_EQ(tx.used_len(0), 0u);
  auto m = vmm::snapshot::DecodeMmioState(mmio.data(), mmio.size(), 0, a.ram.mem.size());
  CHECK(m.ok() && m->queues[1].next_avail == 1 && m->queues[1].next_used == 1);
  auto d = vmm::snapshot::DecodeVirtioDeviceState(dev.data(), dev.size(), 0);
  CHECK(d.ok() && d->net_offloads == kCsum && d->net_mtu == 1500 && d->net_mac[5] == 7);
  CHECK(vmm::snapshot::CheckVirtioPair(m.value(), d.value(), 0).ok());

  Guest<NetDevice> b(NetConfig(), std::make_unique<StuckBackend>(true));
  auto* backend_b = static_cast<StuckBackend*>(b.dev.backend());
  b.ram.bytes = a.ram.bytes;
  CHECK(b.dev.LoadState(dev.data(), dev.size(), 0).ok());
  CHECK(b.t.LoadState(mmio.data(), mmio.size(), b.ram.mem.size(), 0).ok());
  CHECK_EQ(backend_b->applied & kCsum, kCsum);  // activation applied them to the new backend
  CHECK(b.dev.SaveState() == dev);

  Guest<NetDevice> plain(NetConfig(), std::make_unique<StuckBackend>(false));
  CHECK_ERROR(plain.dev.LoadState(dev.data(), dev.size(), 0),
              "snapshot section virtio-device[0]: the guest negotiated net offloads 0x3, which this backend cannot take");
  CHECK_ERROR(plain.t.LoadState(mmio.data(), mmio.size(), plain.ram.mem.size(), 0), "which this device does not offer");
  Guest<NetDevice> jumbo(NetConfig(9000), std::make_unique<StuckBackend>(true));
  CHECK_ERROR(jumbo.dev.LoadState(dev.data(), dev.size(), 0),
              "snapshot section virtio-device[0]: net mtu 1500, but the restore's config says 9000");
}
