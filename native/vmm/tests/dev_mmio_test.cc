// The virtio-mmio v2 register file: identification, feature negotiation, the status state
// machine, queue setup, notifications (register write and ioeventfd) and interrupts.
#include <sys/eventfd.h>
#include <unistd.h>

#include "devices/event_loop.h"
#include "devices/interrupt.h"
#include "devices/virtio/chain_io.h"
#include "devices/virtio/mmio.h"
#include "tests/check.h"
#include "tests/virtio_driver.h"

using namespace vmm::virtio;
using vmm::CountingInterrupt;
using vmm::test::kModernRing;
using vmm::test::MmioDriver;
using vmm::test::TestRam;
using vmm::test::TestRing;

namespace {

// A two-queue device that records what the transport asks of it and answers each request by
// writing one byte 0xAB.
class EchoDevice final : public Device {
 public:
  uint32_t device_id() const override { return 42; }
  uint64_t device_features() const override { return kModernRing | (1ull << 3); }
  size_t num_queues() const override { return 2; }
  uint16_t max_queue_size(size_t i) const override { return i == 0 ? 16 : 8; }
  void read_config(uint64_t offset, uint8_t* data, uint32_t len) override {
    read_config_bytes(config, sizeof(config), offset, data, len);
  }
  void write_config(uint64_t offset, const uint8_t* data, uint32_t len) override {
    for (uint32_t i = 0; i < len; i++)
      if (offset + i < sizeof(config)) config[offset + i] = data[i];
  }
  void activate() override { activations++; }
  void reset() override { resets++; }
  void queue_notify(size_t index) override {
    notifies[index]++;
    drain_queue(index, [this](const DescriptorChain& chain) -> uint32_t {
      uint8_t byte = 0xab;
      ChainWriter w(host_->memory(), chain);
      return w.write(&byte, 1) ? 1 : 0;
    });
  }
  void change_config() {
    std::lock_guard<std::mutex> lock(mutex());
    config[0]++;
    host_->signal_config_change();
  }

  uint8_t config[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  int activations = 0, resets = 0;
  int notifies[2] = {0, 0};
};

struct Fixture {
  Fixture() : t(ram.mem, &dev, &irq), d(&t), ring0(&ram, 0x10000, 16), ring1(&ram, 0x20000, 8) {}
  void bring_up() {
    CHECK(d.negotiate(kModernRing));
    d.setup_queue(0, ring0);
    d.setup_queue(1, ring1);
    d.driver_ok();
  }
  TestRam ram;
  EchoDevice dev;
  CountingInterrupt irq;
  MmioTransport t;
  MmioDriver d;
  TestRing ring0, ring1;
};

}  // namespace

VMM_TEST(dev_mmio_identifies_itself) {
  Fixture f;
  CHECK_EQ(f.d.r(0x000), 0x74726976u);
  CHECK_EQ(f.d.r(0x004), 2u);
  CHECK_EQ(f.d.r(0x008), 42u);
  CHECK_EQ(f.d.device_features(), kModernRing | (1ull << 3));
  f.d.w(0x14, 2);
  CHECK_EQ(f.d.r(0x010), 0u);  // feature words past the second are zero
  f.d.w(0x30, 0);
  CHECK_EQ(f.d.r(0x034), 16u);
  f.d.w(0x30, 1);
  CHECK_EQ(f.d.r(0x034), 8u);
  f.d.w(0x30, 2);
  CHECK_EQ(f.d.r(0x034), 0u);  // no such queue
  CHECK_EQ(f.d.r(0x0b0), 0xffffffffu);  // no shared memory regions
}

VMM_TEST(dev_mmio_registers_ignore_accesses_that_are_not_32_bit) {
  Fixture f;
  uint8_t b[8] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  f.t.read(0x000, b, 2);
  CHECK_EQ(b[0], 0);
  CHECK_EQ(b[1], 0);
  f.t.read(0x002, b, 4);  // misaligned
  CHECK_EQ(b[0], 0);
  uint8_t status = 1;
  f.t.write(0x070, &status, 1);
  CHECK_EQ(f.d.r(0x070), 0u);
  // The config space takes any width.
  uint8_t cfg[3];
  f.t.read(0x101, cfg, 3);
  CHECK_EQ(cfg[0], 2);
  CHECK_EQ(cfg[2], 4);
  f.t.read(0x106, cfg, 3);  // runs past the 8-byte space: the excess reads as zero
  CHECK_EQ(cfg[1], 8);
  CHECK_EQ(cfg[2], 0);
  f.t.read(UINT64_MAX - 1, cfg, 2);  // offset arithmetic must not wrap into the space
  CHECK_EQ(cfg[0], 0);
}

VMM_TEST(dev_mmio_feature_negotiation_refuses_unknown_or_legacy_drivers) {
  Fixture f;
  CHECK(!f.d.negotiate(kModernRing | (1ull << 7)));  // a bit we never offered
  CHECK(!f.d.negotiate(kFRingEventIdx));             // no VERSION_1: a legacy driver
  CHECK(f.d.negotiate(kFVersion1));
  CHECK_EQ(f.t.driver_features(), kFVersion1);
  // After FEATURES_OK the features are frozen.
  f.d.w(0x24, 0);
  f.d.w(0x20, 0xffffffffu);
  CHECK_EQ(f.t.driver_features(), kFVersion1);
}

VMM_TEST(dev_mmio_status_follows_the_initialization_sequence) {
  Fixture f;
  f.d.w(0x70, kStatusDriver);  // DRIVER without ACKNOWLEDGE
  CHECK_EQ(f.d.r(0x70), 0u);
  f.d.w(0x70, kStatusAcknowledge | kStatusDriver | kStatusDriverOk);  // DRIVER_OK too early
  CHECK_EQ(f.d.r(0x70), kStatusAcknowledge | kStatusDriver);
  CHECK_EQ(f.dev.activations, 0);
  f.bring_up();
  CHECK_EQ(f.dev.activations, 1);
  int resets = f.dev.resets;
  uint32_t up = f.d.r(0x70);
  f.d.w(0x70, kStatusAcknowledge);  // clearing bits is only possible through reset
  CHECK_EQ(f.d.r(0x70), up);
  f.d.w(0x70, 0);
  CHECK_EQ(f.d.r(0x70), 0u);
  CHECK_EQ(f.dev.resets, resets + 1);
  f.d.w(0x30, 0);
  CHECK_EQ(f.d.r(0x44), 0u);  // queues are not ready after reset
}

VMM_TEST(dev_mmio_queue_setup_is_ignored_before_features_ok_and_while_ready) {
  Fixture f;
  f.d.w(0x30, 0);
  f.d.w(0x38, 16);
  f.d.w(0x44, 1);
  CHECK_EQ(f.d.r(0x44), 0u);
  f.bring_up();
  CHECK(f.t.queue(0).active());
  f.d.w(0x30, 0);
  f.d.w(0x80, 0x50000);  // moving a ready queue is ignored
  CHECK_EQ(f.t.queue(0).desc_addr, f.ring0.desc);
}

VMM_TEST(dev_mmio_a_bad_queue_sets_device_needs_reset) {
  Fixture f;
  CHECK(f.d.negotiate(kModernRing));
  TestRing bad(&f.ram, f.ram.bytes.size() - 0x800, 16);  // the used ring lies past the end
  f.d.setup_queue(0, bad);
  CHECK(f.d.r(0x70) & kStatusDeviceNeedsReset);
  CHECK(f.t.last_error().find("outside guest memory") != std::string::npos);
  f.d.w(0x70, 0);
  CHECK_EQ(f.d.r(0x70), 0u);
}

VMM_TEST(dev_mmio_notify_serves_requests_and_interrupts) {
  Fixture f;
  f.bring_up();
  f.ring1.set_desc(0, 0x40000, 4, kDescFWrite);
  f.ring1.publish(0);
  f.d.kick(1);
  CHECK_EQ(f.dev.notifies[1], 2);  // once at DRIVER_OK (catching early kicks), once now
  CHECK_EQ(f.ring1.used_idx(), 1);
  CHECK_EQ(f.ring1.used_len(0), 1u);
  CHECK_EQ(f.ram.bytes[0x40000], 0xab);
  CHECK_EQ(f.irq.count(), 1u);
  CHECK_EQ(f.d.ack_interrupts(), kInterruptUsedBuffer);
  CHECK_EQ(f.d.r(0x60), 0u);
  f.d.kick(7);  // no such queue: ignored
  f.t.notify(99);
  CHECK_EQ(f.irq.count(), 1u);
}

VMM_TEST(dev_mmio_no_second_pulse_while_the_driver_has_not_acknowledged) {
  Fixture f;
  f.bring_up();
  f.ring1.set_desc(0, 0x40000, 4, kDescFWrite);
  f.ring1.publish(0);
  f.d.kick(1);
  CHECK_EQ(f.irq.count(), 1u);
  // The driver asks for the next used buffer too, but has not read and acknowledged the first
  // interrupt: the one still pending covers it (its handler acknowledges, then walks the rings).
  f.ring1.set_used_event(1);
  f.ring1.set_desc(1, 0x40010, 4, kDescFWrite);
  f.ring1.publish(1);
  f.d.kick(1);
  CHECK_EQ(f.ring1.used_idx(), 2);
  CHECK_EQ(f.irq.count(), 1u);
  CHECK_EQ(f.d.ack_interrupts(), kInterruptUsedBuffer);
  // Acknowledged: the next used buffer is a new interrupt.
  f.ring1.set_used_event(2);
  f.ring1.set_desc(2, 0x40020, 4, kDescFWrite);
  f.ring1.publish(2);
  f.d.kick(1);
  CHECK_EQ(f.irq.count(), 2u);
  // A configuration change is a bit the driver has not seen yet: pulsed even with the used-buffer
  // bit still pending.
  f.dev.change_config();
  CHECK_EQ(f.irq.count(), 3u);
  CHECK_EQ(f.d.ack_interrupts(), kInterruptUsedBuffer | kInterruptConfigChange);
}

VMM_TEST(dev_mmio_kicks_before_driver_ok_are_served_at_driver_ok) {
  Fixture f;
  CHECK(f.d.negotiate(kModernRing));
  f.d.setup_queue(0, f.ring0);
  f.ring0.set_desc(0, 0x40000, 4, kDescFWrite);
  f.ring0.publish(0);
  f.d.kick(0);
  CHECK_EQ(f.ring0.used_idx(), 0);
  f.d.driver_ok();
  CHECK_EQ(f.ring0.used_idx(), 1);
}

VMM_TEST(dev_mmio_a_broken_ring_sets_needs_reset_and_raises_config_change) {
  Fixture f;
  f.bring_up();
  f.ring0.publish(200);  // head index out of range
  f.d.kick(0);
  CHECK(f.d.r(0x70) & kStatusDeviceNeedsReset);
  CHECK(f.d.r(0x60) & kInterruptConfigChange);
  CHECK(!f.t.driver_ok());
  // The device stays quiet until reset, then comes back.
  f.d.w(0x70, 0);
  f.ring0 = TestRing(&f.ram, 0x10000, 16);
  f.ram.fill(0x10000, 0, 0x3000);
  f.bring_up();
  CHECK(f.t.driver_ok());
}

VMM_TEST(dev_mmio_config_change_bumps_generation_and_interrupts) {
  Fixture f;
  uint32_t gen = f.d.r(0x0fc);
  f.dev.change_config();  // before DRIVER_OK: generation only
  CHECK_EQ(f.d.r(0x0fc), gen + 1);
  CHECK_EQ(f.irq.count(), 0u);
  f.bring_up();
  f.dev.change_config();
  CHECK_EQ(f.d.r(0x0fc), gen + 2);
  CHECK_EQ(f.d.r(0x60), kInterruptConfigChange);
  CHECK_EQ(f.irq.count(), 1u);
  uint8_t b;
  f.t.read(0x100, &b, 1);
  CHECK_EQ(b, 3);
}

VMM_TEST(dev_mmio_ioeventfd_notifications_arrive_through_the_event_loop) {
  Fixture f;
  vmm::EventLoop loop;
  CHECK(loop.ok());
  CHECK(f.t.create_notify_eventfds(&loop));
  CHECK(f.t.queue_notify_eventfd(0) >= 0);
  CHECK(f.t.queue_notify_eventfd(1) >= 0);
  CHECK_EQ(f.t.queue_notify_eventfd(2), -1);
  f.bring_up();
  f.ring0.set_desc(3, 0x40000, 4, kDescFWrite);
  f.ring0.publish(3);
  uint64_t one = 1;  // what KVM does when the guest writes 0 to QueueNotify
  CHECK(write(f.t.queue_notify_eventfd(0), &one, 8) == 8);
  CHECK_EQ(loop.run_once(1000), 1);
  CHECK_EQ(f.ring0.used_idx(), 1);
  CHECK_EQ(f.ring0.used_id(0), 3u);
  CHECK_EQ(f.irq.count(), 1u);
}

VMM_TEST(dev_mmio_eventfd_interrupt_writes_the_irqfd) {
  int fd = eventfd(0, EFD_NONBLOCK);
  vmm::EventFdInterrupt irq(fd);
  irq.trigger();
  irq.trigger();
  uint64_t v = 0;
  CHECK(read(fd, &v, 8) == 8);
  CHECK_EQ(v, 2u);
  close(fd);
}
