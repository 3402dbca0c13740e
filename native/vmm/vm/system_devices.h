// Two tiny port-I/O devices that belong to the VM rather than to a device model, because their
// only effect is on the VM itself:
//  - DebugPort (port 0x80, the PC POST-code port): remembers the last code, how many were written
//    and when the first arrived. Guests (and Linux's io_delay) write here; the status reply shows it,
//    and test guests use it to mark boot milestones without a serial line's cost.
//  - AcpiSleepPort (layout::kAcpiSleepPort): the hardware-reduced ACPI sleep control register the
//    FADT points at. Writing SLP_EN with SLP_TYP 5 (the DSDT's \_S5) powers the VM off.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>

#include "devices/bus_device.h"

namespace vmm::kvm {

class DebugPort final : public BusDevice {
 public:
  static constexpr uint16_t kPort = 0x80;
  void read(uint64_t offset, uint8_t* data, uint32_t len) override;
  void write(uint64_t offset, const uint8_t* data, uint32_t len) override;

  uint8_t last() const { return last_.load(std::memory_order_relaxed); }
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  uint64_t first_write_us() const { return first_us_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint8_t> last_{0};
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> first_us_{0};
};

class AcpiSleepPort final : public BusDevice {
 public:
  static constexpr uint8_t kSlpEn = 1 << 5;
  static constexpr uint8_t kSlpTypS5 = 5;  // must match the DSDT's \_S5 package (arch/x86/acpi.cc)

  explicit AcpiSleepPort(std::function<void()> on_poweroff) : on_poweroff_(std::move(on_poweroff)) {}
  // Sleep status register: reads as 0 (no wake event pending).
  void read(uint64_t, uint8_t* data, uint32_t len) override;
  void write(uint64_t offset, const uint8_t* data, uint32_t len) override;

 private:
  std::function<void()> on_poweroff_;
};

}  // namespace vmm::kvm
