// The virtio-mmio transport, version 2 ("modern", virtio 1.2 §4.2.2): one BusDevice of kMmioSize
// bytes per device. The core maps it at the slot's address, wires its interrupt to an irqfd, and
// either lets QueueNotify writes arrive through the bus or registers the per-queue eventfds from
// create_notify_eventfds() with KVM_IOEVENTFD (address base + kQueueNotifyOffset, 4 bytes,
// datamatch = queue index), which spares the vCPU an exit to userspace per notification.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "devices/bus_device.h"
#include "devices/event_loop.h"
#include "devices/interrupt.h"
#include "devices/virtio/device.h"
#include "devices/virtio/queue.h"
#include "guest_memory.h"

namespace vmm::virtio {

constexpr uint64_t kMmioSize = 0x1000;
constexpr uint64_t kQueueNotifyOffset = 0x50;

// InterruptStatus bits.
constexpr uint32_t kInterruptUsedBuffer = 1;
constexpr uint32_t kInterruptConfigChange = 2;

class MmioTransport final : public BusDevice, public DeviceHost {
 public:
  // `device` and `irq` must outlive the transport.
  MmioTransport(const GuestMemory& mem, Device* device, Interrupt* irq);
  ~MmioTransport() override;

  // BusDevice: guest register accesses. Registers take 32-bit accesses only; the config space
  // (offset 0x100 on) takes any width.
  void read(uint64_t offset, uint8_t* data, uint32_t len) override;
  void write(uint64_t offset, const uint8_t* data, uint32_t len) override;

  // A QueueNotify that arrived another way (an ioeventfd fired). Out-of-range indices are ignored.
  void notify(uint32_t queue_index);

  // Creates one eventfd per queue and watches them on `loop`; each one, when signalled, calls
  // notify(index) on the loop's thread. False (with errno) if an eventfd could not be made.
  bool create_notify_eventfds(EventLoop* loop);
  // The eventfd for queue `index` (to register with KVM_IOEVENTFD), or -1 before the call above.
  int queue_notify_eventfd(size_t index) const;

  Device* device() const { return device_; }
  uint32_t status();            // the Status register (takes the device mutex)
  uint32_t interrupt_status();  // InterruptStatus (takes the device mutex)
  const std::string& last_error() const { return last_error_; }

  // The virtio-mmio section of a snapshot (snapshot/device_state.h): the registers and each
  // queue's configuration and indices. Both take the device's mutex (do not hold it).
  //
  // SaveState first has the device give back the buffers it holds (Device::release_held_buffers),
  // so the saved indices account for every buffer; that writes guest memory, which is why it is
  // not const (a snapshot's source VM does not run on).
  //
  // LoadState checks the payload (ring addresses against `ram_bytes`, as Queue::activate does),
  // then that it fits this transport (RAM size, device kind, queue count, features the device
  // offers and accepts, queue sizes), and applies nothing unless all of it does. It then activates
  // the queues again, activates the device if the driver had it running (net re-applies the
  // negotiated offloads to its tap), has the device look at each queue once (a notification may
  // have died with the old VMM), and pulses the interrupt if InterruptStatus is not clear (its
  // edge may not have reached the irqchip before the irqchip was captured; the driver reads
  // InterruptStatus, so a spurious one is harmless). `slot` names the section in errors. Load the
  // device's own section (Device::LoadState) first.
  std::vector<uint8_t> SaveState();
  vc::Status LoadState(const uint8_t* data, size_t size, uint64_t ram_bytes, uint32_t slot);

  // DeviceHost (called by the device with its mutex held).
  Queue& queue(size_t index) override;
  const GuestMemory& memory() const override { return mem_; }
  uint64_t driver_features() const override { return driver_features_; }
  bool driver_ok() const override;
  bool signal_used(size_t index) override;
  void signal_config_change() override;
  void set_needs_reset(const char* why) override;

 private:
  uint32_t read_register(uint64_t offset);
  void write_register(uint64_t offset, uint32_t value);
  void write_status(uint32_t value);
  void notify_locked(uint32_t queue_index);
  void reset_locked();
  Queue* selected_queue();
  bool queue_config_writable();
  void raise(uint32_t bits);

  GuestMemory mem_;
  Device* device_;
  Interrupt* irq_;
  std::vector<Queue> queues_;
  uint32_t status_ = 0;
  uint32_t device_features_sel_ = 0;
  uint32_t driver_features_sel_ = 0;
  uint64_t driver_features_ = 0;
  uint32_t queue_sel_ = 0;
  uint32_t interrupt_status_ = 0;
  uint32_t config_generation_ = 0;
  std::string last_error_;
  EventLoop* loop_ = nullptr;
  std::vector<int> notify_fds_;
};

}  // namespace vmm::virtio
