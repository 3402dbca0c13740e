// One address space of guest accesses that leave KVM: port I/O or MMIO. The core keeps one Bus
// for each and every vCPU exit of that kind is dispatched through it, so a device is mapped in
// exactly one place and unit tests drive devices through the same path the guest does.
//
// Thread safety: lookups (any vCPU thread) take a shared lock; insert/remove (setup, hotplug from
// the control thread) an exclusive one. The bus does not serialize calls into a device: devices
// lock themselves (a device is also reached from the event loop thread, not only through here).
#pragma once

#include <atomic>
#include <cstdint>
#include <shared_mutex>
#include <string>
#include <vector>

#include "devices/bus_device.h"

namespace vmm {

class Bus {
 public:
  explicit Bus(const char* name) : name_(name) {}

  // Maps `device` (borrowed; must outlive its mapping) at [base, base + len). Fails, with a
  // message naming both ranges, on an empty or wrapping range or an overlap.
  bool insert(BusDevice* device, uint64_t base, uint64_t len, std::string* error);
  // Unmaps the device mapped at exactly `base`; false when there is none.
  bool remove(uint64_t base);

  // Dispatches one access of `len` bytes (1..8) at `addr` to the device whose range holds all of
  // it, at the offset from that range's start. An access nobody claims reads as all ones (an
  // undriven ISA/PCI bus) and its writes vanish; both return false and are counted.
  bool read(uint64_t addr, uint8_t* data, uint32_t len);
  bool write(uint64_t addr, const uint8_t* data, uint32_t len);

  BusDevice* find(uint64_t addr, uint64_t* offset = nullptr) const;
  uint64_t unclaimed() const { return unclaimed_.load(std::memory_order_relaxed); }
  size_t size() const;
  const char* name() const { return name_; }

 private:
  struct Range {
    uint64_t base;
    uint64_t len;
    BusDevice* device;
  };
  // Index of the range that holds [addr, addr + len), or -1. Call with mutex_ held.
  long lookup(uint64_t addr, uint64_t len) const;

  const char* name_;
  mutable std::shared_mutex mutex_;
  std::vector<Range> ranges_;  // sorted by base, non-overlapping
  std::atomic<uint64_t> unclaimed_{0};
};

}  // namespace vmm
