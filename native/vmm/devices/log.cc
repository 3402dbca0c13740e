#include "devices/log.h"

#include <atomic>
#include <cstdarg>
#include <cstdio>

namespace vmm {

namespace {
std::atomic<uint64_t> warnings{0};
}

void device_warn(const char* fmt, ...) {
  uint64_t n = warnings.fetch_add(1, std::memory_order_relaxed);
  if (n > kMaxDeviceWarnings) return;
  if (n == kMaxDeviceWarnings) {
    std::fprintf(stderr, "vmm: device warning limit reached; further warnings are suppressed\n");
    return;
  }
  va_list args;
  va_start(args, fmt);
  std::fprintf(stderr, "vmm: ");
  std::vfprintf(stderr, fmt, args);
  std::fprintf(stderr, "\n");
  va_end(args);
}

uint64_t device_warnings() { return warnings.load(std::memory_order_relaxed); }

}  // namespace vmm
