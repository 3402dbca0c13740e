// Sequential access to the bytes of a validated descriptor chain: a reader over its
// device-readable part and a writer over its device-writable part. Drivers may split a request
// across descriptors at any byte boundary (virtio 1.2 §2.6.4, "message framing"), so devices parse
// through these instead of assuming one structure per descriptor.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <vector>

#include "devices/virtio/queue.h"
#include "guest_memory.h"

namespace vmm::virtio {

class ChainReader {
 public:
  ChainReader(const GuestMemory& mem, const DescriptorChain& chain);

  // Copies the next n bytes; false (consuming nothing) when fewer than n remain.
  bool read(void* out, uint32_t n);
  bool skip(uint32_t n);
  uint32_t remaining() const { return remaining_; }

  // Host iovecs for the next n bytes without consuming them (for writev into a host fd); returns
  // how many bytes the iovecs cover (less than n when fewer remain).
  uint32_t iovecs(uint32_t n, std::vector<iovec>* out) const;

 private:
  GuestMemory mem_;
  const DescriptorChain& chain_;
  size_t seg_ = 0;     // current segment index
  uint32_t off_ = 0;   // offset inside it
  uint32_t remaining_ = 0;
};

class ChainWriter {
 public:
  ChainWriter(const GuestMemory& mem, const DescriptorChain& chain);

  bool write(const void* in, uint32_t n);
  bool skip(uint32_t n);  // leaves bytes untouched (they still count as written)
  uint32_t remaining() const { return remaining_; }
  uint32_t written() const { return written_; }

  // Host iovecs for the next n writable bytes without consuming them (for readv from a host fd);
  // after filling them, call skip() with the byte count actually filled.
  uint32_t iovecs(uint32_t n, std::vector<iovec>* out) const;

 private:
  GuestMemory mem_;
  const DescriptorChain& chain_;
  size_t seg_ = 0;
  uint32_t off_ = 0;
  uint32_t remaining_ = 0;
  uint32_t written_ = 0;
};

}  // namespace vmm::virtio
