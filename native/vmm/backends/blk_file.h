// The host side of a block device: FileBlockBackend implements the virtio-blk device's
// BlockBackend (devices/virtio/blk.h) over a raw image file (or a host block device), read-only or
// read-write.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <string>

#include "devices/virtio/blk.h"

namespace vmm {

class FileBlockBackend final : public virtio::BlockBackend {
 public:
  // Opens `path`; nullptr with *error naming the path and errno text on failure.
  static std::unique_ptr<FileBlockBackend> open(const std::string& path, bool read_only,
                                                std::string* error);
  ~FileBlockBackend() override;

  uint64_t size() const override { return size_; }
  bool read_only() const override { return read_only_; }
  bool read(uint64_t offset, const iovec* iov, size_t iovcnt) override;
  bool write(uint64_t offset, const iovec* iov, size_t iovcnt) override;
  bool flush() override;

 private:
  FileBlockBackend(int fd, uint64_t size, bool read_only)
      : fd_(fd), size_(size), read_only_(read_only) {}
  int fd_;
  uint64_t size_;
  bool read_only_;
};

}  // namespace vmm
