#include "write_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

bool write_file(const std::string& path, const std::string& value) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = write(fd, value.data(), value.size());
  int err = errno;
  close(fd);
  errno = err;
  if (n >= 0 && static_cast<size_t>(n) != value.size()) errno = EIO;
  return n >= 0 && static_cast<size_t>(n) == value.size();
}
