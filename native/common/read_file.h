// Reading a small file whole, with a bound: the agent reads /proc and cgroup files and a
// container's /etc/passwd and /etc/group, the host helpers read cgroup files, vc-vmm reads its
// config; none of them may allocate without limit. The one reader for all of them.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <string>

namespace vc {

// Reads `fd` to its end into *out (replacing its contents); does not close `fd`. False, with errno
// set, on a read error or as soon as more than `limit` bytes are in (errno EFBIG; *out then holds
// what was read so far).
inline bool ReadFdBounded(int fd, size_t limit, std::string* out) {
  out->clear();
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return false;
    if (n == 0) return true;
    out->append(buf, static_cast<size_t>(n));
    if (out->size() > limit) {
      errno = EFBIG;
      return false;
    }
  }
}

// Opens `path` read-only and reads it as ReadFdBounded does; closes it again, keeping errno.
inline bool ReadFileBounded(const char* path, size_t limit, std::string* out) {
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ReadFdBounded(fd, limit, out);
  int err = errno;
  ::close(fd);
  errno = err;
  return ok;
}

}  // namespace vc
