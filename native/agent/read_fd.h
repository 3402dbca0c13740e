// Reading a small file whole, with a bound: the agent reads /proc files and a container's
// /etc/passwd and /etc/group, none of which may make it allocate without limit.
#pragma once

#include <unistd.h>

#include <cerrno>
#include <string>

// Reads `fd` to its end (stopping once more than `limit` bytes are in), then closes it.
inline void read_fd_bounded(int fd, size_t limit, std::string* out) {
  out->clear();
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out->append(buf, static_cast<size_t>(n));
    if (out->size() > limit) break;
  }
  close(fd);
}
