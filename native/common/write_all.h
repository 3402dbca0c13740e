// Writing a whole small message to a pipe or socket (a status line to a waiting parent), retried
// across EINTR and short writes. Best effort: a reader that has gone away ends it silently, since
// the writer has nobody left to tell.
#pragma once

#include <unistd.h>

#include <cerrno>
#include <string>

namespace vc {

inline void WriteAll(int fd, const std::string& s) {
  size_t done = 0;
  while (done < s.size()) {
    ssize_t n = ::write(fd, s.data() + done, s.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += size_t(n);
  }
}

}  // namespace vc
