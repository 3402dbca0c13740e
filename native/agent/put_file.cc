#include "put_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace {

bool failed(std::string* error, const std::string& step) {
  *error = step + ": " + strerror(errno);
  return false;
}

}  // namespace

int open_in_root(int root, const std::vector<std::string>& parts, size_t count) {
  if (count == 0) return openat(root, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  std::string rel;
  for (size_t i = 0; i < count; i++) rel += (i ? "/" : "") + parts[i];
  open_how how{};
  how.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
  int fd = static_cast<int>(syscall(SYS_openat2, root, rel.c_str(), &how, sizeof how));
  if (fd >= 0 || errno != ENOSYS) return fd;
  // Before Linux 5.6: one component at a time, following no symlink at all.
  int cur = openat(root, ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
  for (size_t i = 0; cur >= 0 && i < count; i++) {
    int next = openat(cur, parts[i].c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int err = errno;
    close(cur);
    errno = err;
    cur = next;
  }
  return cur;
}

namespace {

bool set_owner_mode(int fd, const PutRequest& req, std::string* error) {
  // chown first: it clears set-user-ID and set-group-ID bits that chmod then sets.
  if (fchown(fd, req.uid, req.gid) != 0) return failed(error, "chown");
  if (fchmod(fd, req.mode) != 0) return failed(error, "chmod");
  return true;
}

bool write_file(int fd, const PutRequest& req, int64_t* size, std::string* error) {
  struct stat st;
  if (fstat(fd, &st) != 0) return failed(error, "stat");
  if (!S_ISREG(st.st_mode)) {
    errno = EINVAL;
    return failed(error, "not a regular file");
  }
  if (req.truncate && ftruncate(fd, req.offset) != 0) return failed(error, "truncate");
  size_t done = 0;
  while (done < req.data.size()) {
    ssize_t n = pwrite(fd, req.data.data() + done, req.data.size() - done,
                       static_cast<off_t>(req.offset + static_cast<int64_t>(done)));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return failed(error, "write");
    done += static_cast<size_t>(n);
  }
  if (!set_owner_mode(fd, req, error)) return false;
  if (fstat(fd, &st) != 0) return failed(error, "stat");
  *size = st.st_size;
  return true;
}

// Whatever is at parent/name that a file or symlink cannot replace in place goes; a directory
// is an error (its content would go with it).
bool clear_for(int parent, const std::string& name, bool keep_regular, std::string* error) {
  struct stat st;
  if (fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return errno == ENOENT || failed(error, "stat");
  }
  if (S_ISDIR(st.st_mode)) {
    errno = EISDIR;
    return failed(error, "replace");
  }
  if (keep_regular && S_ISREG(st.st_mode)) return true;
  return unlinkat(parent, name.c_str(), 0) == 0 || failed(error, "remove the old entry");
}

bool put_entry(int parent, const std::string& name, const PutRequest& req, int64_t* size,
               std::string* error) {
  switch (req.kind) {
    case PutKind::kDir: {
      if (mkdirat(parent, name.c_str(), 0700) != 0 && errno != EEXIST) return failed(error, "mkdir");
      int fd = openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (fd < 0) return failed(error, errno == ENOTDIR || errno == ELOOP ? "exists and is not a directory" : "open");
      bool ok = set_owner_mode(fd, req, error);
      close(fd);
      return ok;
    }
    case PutKind::kFile: {
      if (!clear_for(parent, name, true, error)) return false;
      // O_NONBLOCK: should a FIFO appear here meanwhile, the open fails instead of waiting.
      int fd = openat(parent, name.c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
      if (fd < 0) return failed(error, "open");
      bool ok = write_file(fd, req, size, error);
      close(fd);
      return ok;
    }
    case PutKind::kSymlink:
      if (!clear_for(parent, name, false, error)) return false;
      if (symlinkat(req.target.c_str(), parent, name.c_str()) != 0) return failed(error, "symlink");
      if (fchownat(parent, name.c_str(), req.uid, req.gid, AT_SYMLINK_NOFOLLOW) != 0) {
        return failed(error, "chown");
      }
      return true;
  }
  return false;
}

}  // namespace

bool put_path_components(const std::string& path, std::vector<std::string>* parts,
                         std::string* why) {
  if (!path.empty() && path[0] == '/') {
    *why = "must be relative to the bind";
    return false;
  }
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string part = path.substr(start, end - start);
    if (part == "..") {
      *why = "must not contain \"..\"";
      return false;
    }
    if (!part.empty() && part != ".") parts->push_back(part);
    start = end + 1;
  }
  return true;
}

bool put_file(const std::string& staging, BindKind kind, const PutRequest& req, int64_t* size,
              std::string* error) {
  *size = 0;
  std::vector<std::string> parts;
  std::string why;
  if (!put_path_components(req.path, &parts, &why)) {
    errno = EINVAL;
    return failed(error, "path " + why);
  }
  if (kind == BindKind::kFile) {  // the bind is the staging file itself
    int fd = open(staging.c_str(), O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return failed(error, "open " + staging);
    bool ok = write_file(fd, req, size, error);
    close(fd);
    return ok;
  }
  int root = open(staging.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (root < 0) return failed(error, "open " + staging);
  bool ok;
  if (parts.empty()) {  // the bind's own directory: owner and mode
    int fd = openat(root, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ok = fd >= 0 ? set_owner_mode(fd, req, error) : failed(error, "open " + staging);
    if (fd >= 0) close(fd);
  } else {
    int parent = open_in_root(root, parts, parts.size() - 1);
    if (parent < 0) {
      ok = failed(error, "open the parent directory");
    } else {
      ok = put_entry(parent, parts.back(), req, size, error);
      close(parent);
    }
  }
  close(root);
  return ok;
}

namespace {

// A container can nest directories deeper than any host source; past this the removal stops
// with an error rather than recursing on.
constexpr int kMaxRemoveDepth = 256;

// Removes the directory parent/name and everything in it, following no symlink.
bool remove_tree(int parent, const std::string& name, int depth, std::string* error) {
  if (depth > kMaxRemoveDepth) {
    errno = ELOOP;
    return failed(error, "remove: more than 256 levels of directories");
  }
  int fd = openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT || failed(error, "open " + name);
  DIR* dir = fdopendir(fd);
  if (!dir) {
    close(fd);
    return failed(error, "opendir " + name);
  }
  std::vector<std::pair<std::string, bool>> entries;  // name, is a directory
  while (dirent* d = readdir(dir)) {
    std::string n = d->d_name;
    if (n == "." || n == "..") continue;
    struct stat st;
    bool is_dir = fstatat(fd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
    entries.emplace_back(std::move(n), is_dir);
  }
  bool ok = true;
  for (const auto& [n, is_dir] : entries) {
    if (is_dir) {
      ok = remove_tree(fd, n, depth + 1, error);
    } else if (unlinkat(fd, n.c_str(), 0) != 0 && errno != ENOENT) {
      ok = failed(error, "remove " + n);
    }
    if (!ok) break;
  }
  closedir(dir);
  if (!ok) return false;
  return unlinkat(parent, name.c_str(), AT_REMOVEDIR) == 0 || errno == ENOENT ||
         failed(error, "remove " + name);
}

}  // namespace

bool bind_remove(const std::string& staging, const std::string& path, bool* removed,
                 std::string* error) {
  *removed = false;
  std::vector<std::string> parts;
  std::string why;
  if (!put_path_components(path, &parts, &why) || parts.empty()) {
    errno = EINVAL;
    return failed(error, "path " + (parts.empty() && why.empty() ? "must name an entry in the bind" : why));
  }
  int root = open(staging.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (root < 0) return failed(error, "open " + staging);
  int parent = open_in_root(root, parts, parts.size() - 1);
  int err = errno;
  close(root);
  if (parent < 0) {
    errno = err;
    return errno == ENOENT || errno == ENOTDIR || failed(error, "open the parent directory");
  }
  const std::string& name = parts.back();
  struct stat st;
  bool ok = true;
  if (fstatat(parent, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    ok = errno == ENOENT || failed(error, "stat");
  } else if (S_ISDIR(st.st_mode)) {
    ok = remove_tree(parent, name, 0, error);
    *removed = ok;
  } else {
    ok = unlinkat(parent, name.c_str(), 0) == 0 || errno == ENOENT || failed(error, "remove");
    *removed = ok;
  }
  close(parent);
  return ok;
}
