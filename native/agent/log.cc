#include "log.h"

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <unistd.h>

static int g_log_fd = 2;

void log_set_fd(int fd) { g_log_fd = fd; }

void logf(const char* fmt, ...) {
  int saved_errno = errno;  // callers often log and then look at errno again
  char buf[1024];
  int n = std::snprintf(buf, sizeof buf, "vc-agent: ");
  va_list ap;
  va_start(ap, fmt);
  int m = std::vsnprintf(buf + n, sizeof buf - n - 1, fmt, ap);
  va_end(ap);
  if (m < 0) m = 0;
  size_t len = static_cast<size_t>(n) + static_cast<size_t>(m);
  if (len > sizeof buf - 2) len = sizeof buf - 2;  // truncated message
  buf[len++] = '\n';
  // One write per line so lines from concurrent writers (children on the console) do not mix.
  ssize_t r;
  do {
    r = write(g_log_fd, buf, len);
  } while (r < 0 && errno == EINTR);
  errno = saved_errno;
}
