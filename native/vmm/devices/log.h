// Warnings from device models about what the guest did wrong. The guest controls how often these
// happen, so they are capped: after kMaxWarnings lines, further warnings are counted, not printed.
#pragma once

#include <cstdint>

namespace vmm {

constexpr uint64_t kMaxDeviceWarnings = 100;

void device_warn(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
uint64_t device_warnings();

}  // namespace vmm
