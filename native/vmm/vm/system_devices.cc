#include "vm/system_devices.h"

#include <cstring>

#include "kvm/vcpu.h"

namespace vmm::kvm {

void DebugPort::read(uint64_t, uint8_t* data, uint32_t len) { std::memset(data, 0, len); }

void DebugPort::write(uint64_t offset, const uint8_t* data, uint32_t len) {
  if (offset != 0 || len == 0) return;
  uint64_t expected = 0;
  first_us_.compare_exchange_strong(expected, MonotonicMicros(), std::memory_order_relaxed);
  last_.store(data[0], std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

void AcpiSleepPort::read(uint64_t, uint8_t* data, uint32_t len) { std::memset(data, 0, len); }

void AcpiSleepPort::write(uint64_t offset, const uint8_t* data, uint32_t len) {
  if (offset != 0 || len == 0) return;
  const uint8_t v = data[0];
  // Other sleep states (S1..S4) are not offered in the DSDT; ignore them rather than guess.
  if ((v & kSlpEn) && ((v >> 2) & 7) == kSlpTypS5) on_poweroff_();
}

}  // namespace vmm::kvm
