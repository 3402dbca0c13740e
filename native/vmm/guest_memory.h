// Guest physical memory as the VMM sees it: one host mapping, and accessors that never read or
// write outside it. Everything that reads guest memory (boot writers, virtqueues, devices) goes
// through these checks, because the guest is untrusted: a bad address or length is an error on
// that request, never a host crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace vmm {

class GuestMemory {
 public:
  GuestMemory() = default;
  GuestMemory(uint8_t* host, uint64_t size) : host_(host), size_(size) {}

  uint64_t size() const { return size_; }

  // True when [gpa, gpa + len) lies inside guest RAM (and does not wrap around).
  bool contains(uint64_t gpa, uint64_t len) const {
    return gpa <= size_ && len <= size_ - gpa;
  }

  // A host pointer to [gpa, gpa + len), or nullptr when any byte of it is outside guest RAM.
  uint8_t* ptr(uint64_t gpa, uint64_t len) const {
    return contains(gpa, len) ? host_ + gpa : nullptr;
  }

  bool read(uint64_t gpa, void* out, uint64_t len) const {
    const uint8_t* p = ptr(gpa, len);
    if (!p) return false;
    std::memcpy(out, p, len);
    return true;
  }

  bool write(uint64_t gpa, const void* in, uint64_t len) const {
    uint8_t* p = ptr(gpa, len);
    if (!p) return false;
    std::memcpy(p, in, len);
    return true;
  }

  // Little-endian scalar accessors (x86 guests; virtio 1.x is little-endian too).
  template <typename T>
  bool load(uint64_t gpa, T* out) const { return read(gpa, out, sizeof(T)); }
  template <typename T>
  bool store(uint64_t gpa, T value) const { return write(gpa, &value, sizeof(T)); }

 private:
  uint8_t* host_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace vmm
