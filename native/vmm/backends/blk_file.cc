#include "backends/blk_file.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

namespace vmm {

namespace {

// preadv/pwritev until every byte is moved: they may stop short, and take at most IOV_MAX
// vectors per call.
bool transfer_all(int fd, bool write, uint64_t offset, const iovec* iov, size_t iovcnt) {
  std::vector<iovec> rest(iov, iov + iovcnt);
  size_t first = 0;
  while (first < rest.size()) {
    if (rest[first].iov_len == 0) {
      first++;
      continue;
    }
    int count = static_cast<int>(std::min<size_t>(rest.size() - first, IOV_MAX));
    ssize_t n = write ? pwritev(fd, &rest[first], count, static_cast<off_t>(offset))
                      : preadv(fd, &rest[first], count, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;  // an error, or end of file inside the request
    offset += static_cast<uint64_t>(n);
    size_t left = static_cast<size_t>(n);
    while (left > 0) {
      size_t take = std::min(left, rest[first].iov_len);
      rest[first].iov_base = static_cast<uint8_t*>(rest[first].iov_base) + take;
      rest[first].iov_len -= take;
      left -= take;
      if (rest[first].iov_len == 0) first++;
    }
  }
  return true;
}

}  // namespace

std::unique_ptr<FileBlockBackend> FileBlockBackend::open(const std::string& path, bool read_only,
                                                         std::string* error) {
  int fd = ::open(path.c_str(), (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
  if (fd < 0) {
    *error = "cannot open disk " + path + ": " + std::strerror(errno);
    return nullptr;
  }
  struct stat st;
  uint64_t size = 0;
  if (fstat(fd, &st) != 0) {
    *error = "cannot stat disk " + path + ": " + std::strerror(errno);
    close(fd);
    return nullptr;
  }
  if (S_ISBLK(st.st_mode)) {
    if (ioctl(fd, BLKGETSIZE64, &size) != 0) {
      *error = "cannot size block device " + path + ": " + std::strerror(errno);
      close(fd);
      return nullptr;
    }
  } else if (S_ISREG(st.st_mode)) {
    size = static_cast<uint64_t>(st.st_size);
  } else {
    *error = "disk " + path + " is neither a regular file nor a block device";
    close(fd);
    return nullptr;
  }
  return std::unique_ptr<FileBlockBackend>(new FileBlockBackend(fd, size, read_only));
}

FileBlockBackend::~FileBlockBackend() { close(fd_); }

bool FileBlockBackend::read(uint64_t offset, const iovec* iov, size_t iovcnt) {
  return transfer_all(fd_, false, offset, iov, iovcnt);
}

bool FileBlockBackend::write(uint64_t offset, const iovec* iov, size_t iovcnt) {
  return !read_only_ && transfer_all(fd_, true, offset, iov, iovcnt);
}

bool FileBlockBackend::flush() {
  if (read_only_) return true;
  while (fdatasync(fd_) != 0) {
    if (errno != EINTR) return false;
  }
  return true;
}

}  // namespace vmm
