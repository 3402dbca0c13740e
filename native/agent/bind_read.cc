#include "bind_read.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "put_file.h"

namespace {

bool failed(std::string* error, const std::string& step) {
  *error = step + ": " + strerror(errno);
  return false;
}

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

// An O_PATH fd of `path` in the staging area, its last component not followed.
int open_entry(const std::string& staging, BindKind kind, const std::string& path,
               std::string* error) {
  std::vector<std::string> parts;
  std::string why;
  if (!put_path_components(path, &parts, &why)) {
    errno = EINVAL;
    failed(error, "path " + why);
    return -1;
  }
  if (kind == BindKind::kFile && !parts.empty()) {
    errno = ENOTDIR;
    failed(error, "a file bind has only path \"\"");
    return -1;
  }
  int flags = O_PATH | O_NOFOLLOW | O_CLOEXEC;
  if (parts.empty()) {
    int fd = open(staging.c_str(), flags);
    if (fd < 0) failed(error, "open " + staging);
    return fd;
  }
  Fd root(open(staging.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (root.get() < 0) {
    failed(error, "open " + staging);
    return -1;
  }
  Fd parent(open_in_root(root.get(), parts, parts.size() - 1));
  if (parent.get() < 0) {
    failed(error, "open the parent directory");
    return -1;
  }
  int fd = openat(parent.get(), parts.back().c_str(), flags);
  if (fd < 0) failed(error, "open");
  return fd;
}

bool read_link(int dirfd, const char* name, std::string* target, std::string* error) {
  char buf[PATH_MAX];
  ssize_t n = readlinkat(dirfd, name, buf, sizeof buf);
  if (n < 0) return failed(error, "readlink");
  target->assign(buf, static_cast<size_t>(n));
  return true;
}

// Reads from a regular file known by its O_PATH fd, reopened through /proc so that what is read
// is the inode just checked, whatever has been renamed onto the path since.
bool read_regular(int path_fd, const struct stat& st, int64_t offset, int64_t length,
                  std::string* data, std::string* error) {
  std::string proc = "/proc/self/fd/" + std::to_string(path_fd);
  Fd fd(open(proc.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  if (fd.get() < 0) return failed(error, "open for reading");
  struct stat now;
  if (fstat(fd.get(), &now) != 0) return failed(error, "stat");
  if (now.st_dev != st.st_dev || now.st_ino != st.st_ino) {
    errno = ESTALE;
    return failed(error, "reopen");
  }
  data->assign(static_cast<size_t>(length), '\0');
  size_t done = 0;
  while (done < data->size()) {
    ssize_t n = pread(fd.get(), &(*data)[done], data->size() - done,
                      static_cast<off_t>(offset + static_cast<int64_t>(done)));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return failed(error, "read");
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  data->resize(done);
  return true;
}

size_t escaped(const std::string& s) { return s.size() * 6; }

}  // namespace

const char* bind_entry_kind(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG: return "file";
    case S_IFDIR: return "dir";
    case S_IFLNK: return "symlink";
    case S_IFIFO: return "fifo";
    case S_IFSOCK: return "socket";
    case S_IFCHR: return "char-device";
    case S_IFBLK: return "block-device";
    default: return "unknown";
  }
}

size_t bind_entry_reply_bytes(const BindEntry& e) {
  return escaped(e.name) + escaped(e.target) + 160;  // the fixed fields and their names
}

bool bind_get(const std::string& staging, BindKind kind, const std::string& path, int64_t offset,
              int64_t length, BindEntry* entry, std::string* data, std::string* error) {
  Fd fd(open_entry(staging, kind, path, error));
  if (fd.get() < 0) return false;
  if (fstat(fd.get(), &entry->st) != 0) return failed(error, "stat");
  if (S_ISLNK(entry->st.st_mode)) return read_link(fd.get(), "", &entry->target, error);
  if (!S_ISREG(entry->st.st_mode)) return true;
  return read_regular(fd.get(), entry->st, offset, length, data, error);
}

bool bind_list(const std::string& staging, const std::string& path, const std::string& after,
               size_t budget, std::vector<BindEntry>* entries, bool* more, std::string* error) {
  *more = false;
  Fd at(open_entry(staging, BindKind::kDir, path, error));
  if (at.get() < 0) return false;
  Fd dirfd(openat(at.get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dirfd.get() < 0) return failed(error, errno == ENOTDIR ? "not a directory" : "open");
  DIR* dir = fdopendir(dirfd.get());
  if (!dir) return failed(error, "opendir");
  int fd = dirfd.release();  // closedir closes it
  std::vector<std::string> names;
  errno = 0;
  while (dirent* d = readdir(dir)) {
    std::string name = d->d_name;
    if (name != "." && name != ".." && name > after) names.push_back(std::move(name));
  }
  int err = errno;
  if (err != 0) {
    closedir(dir);
    errno = err;
    return failed(error, "readdir");
  }
  std::sort(names.begin(), names.end());
  size_t used = 0;
  bool ok = true;
  for (const std::string& name : names) {
    BindEntry e;
    e.name = name;
    if (fstatat(fd, name.c_str(), &e.st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;  // removed since readdir
      ok = failed(error, "stat " + name);
      break;
    }
    if (S_ISLNK(e.st.st_mode) && !read_link(fd, name.c_str(), &e.target, error)) {
      if (errno == ENOENT) continue;
      ok = false;
      break;
    }
    size_t bytes = bind_entry_reply_bytes(e);
    if (!entries->empty() && used + bytes > budget) {
      *more = true;
      break;
    }
    used += bytes;
    entries->push_back(std::move(e));
  }
  closedir(dir);
  return ok;
}
