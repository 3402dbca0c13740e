// What the VMM's libFuzzer targets share: the input as a stream of little-endian numbers (zeros
// past its end, so every input is a whole script), and a check that stops the run as a crash.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vmm_fuzz {

inline void require(bool ok) {
  if (!ok) __builtin_trap();
}

struct Input {
  const uint8_t* p;
  size_t n;
  bool empty() const { return n == 0; }
  uint8_t u8() {
    if (!n) return 0;
    n--;
    return *p++;
  }
  uint16_t u16() { return static_cast<uint16_t>(u8() | (u8() << 8)); }
  uint32_t u32() { return u16() | (static_cast<uint32_t>(u16()) << 16); }
  void bytes(void* out, size_t len) {
    auto* o = static_cast<uint8_t*>(out);
    for (size_t i = 0; i < len; i++) o[i] = u8();
  }
};

}  // namespace vmm_fuzz
