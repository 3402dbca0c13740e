#include "binds.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>

#include "args.h"

namespace {

constexpr size_t kMaxBinds = 128;
constexpr size_t kMaxPath = 4096;

// struct mount_attr and its flags, declared here because <linux/mount.h> clashes with
// <sys/mount.h> on older C libraries.
struct MountAttr {
  uint64_t attr_set, attr_clr, propagation, userns_fd;
};
constexpr uint64_t kMountAttrRdonly = 0x00000001;

bool fail(char* step, size_t len, const char* what, const std::string& path) {
  int err = errno;
  std::snprintf(step, len, "%s %s", what, path.c_str());
  errno = err;
  return false;
}

// mkdir -p inside the current root; a component that exists must be (or lead to) a directory.
bool mkdir_parents(const std::string& path) {
  for (size_t i = 1; i < path.size(); i++) {
    if (path[i] != '/') continue;
    std::string part = path.substr(0, i);
    if (mkdir(part.c_str(), 0755) != 0 && errno != EEXIST) return false;
  }
  return true;
}

// The destination of a bind, made if missing: a directory, or an empty regular file. Symlinks on
// the way are followed: after pivot_root they resolve inside the container's root.
bool ensure_destination(const BindSpec& b) {
  if (!mkdir_parents(b.destination)) return false;
  struct stat st;
  if (b.kind == BindKind::kDir) {
    if (mkdir(b.destination.c_str(), 0755) == 0) return true;
    if (errno != EEXIST) return false;
    if (stat(b.destination.c_str(), &st) != 0) return false;
    if (S_ISDIR(st.st_mode)) return true;
    errno = ENOTDIR;
    return false;
  }
  int fd = open(b.destination.c_str(), O_CREAT | O_RDONLY | O_NONBLOCK | O_CLOEXEC, 0644);
  if (fd < 0) return false;  // EISDIR for a directory there
  bool ok = fstat(fd, &st) == 0;
  close(fd);
  if (ok && S_ISDIR(st.st_mode)) errno = EISDIR;
  return ok && !S_ISDIR(st.st_mode);
}

}  // namespace

bool binds_args(Args& args, std::vector<BindSpec>* out) {
  const json::Value* list = args.get("binds");
  if (!list) return true;
  if (!list->is_array()) return args.fail("binds", "expected an array, got " + Args::got(*list));
  if (list->items().size() > kMaxBinds) {
    return args.fail("binds", "at most " + std::to_string(kMaxBinds) + " binds");
  }
  for (size_t i = 0; i < list->items().size(); i++) {
    const json::Value& item = list->items()[i];
    std::string at = "binds[" + std::to_string(i) + "]";
    if (!item.is_object()) return args.fail(at.c_str(), "expected an object, got " + Args::got(item));
    Args b(item, at + ".");
    BindSpec spec;
    std::string kind;
    if (!b.string("destination", &spec.destination, true) || !b.string("kind", &kind, true) ||
        !b.boolean("readOnly", &spec.read_only)) {
      return args.take(b);
    }
    const std::string& d = spec.destination;
    if (d.size() < 2 || d[0] != '/' || d.size() > kMaxPath) {
      b.fail("destination", "\"" + d + "\" is not an absolute path below / (at most 4096 bytes)");
      return args.take(b);
    }
    if (kind == "file") {
      spec.kind = BindKind::kFile;
    } else if (kind == "dir") {
      spec.kind = BindKind::kDir;
    } else {
      b.fail("kind", "expected \"file\" or \"dir\", got " + Args::got(*item.find("kind")));
      return args.take(b);
    }
    out->push_back(std::move(spec));
  }
  return true;
}

std::string bind_staging_path(const std::string& container_dir, size_t n) {
  return container_dir + "/binds/" + std::to_string(n);
}

bool binds_stage(const std::string& container_dir, const std::vector<BindSpec>& binds,
                 std::string* error) {
  if (binds.empty()) return true;
  auto failed = [&](const std::string& step) {
    *error = "binds: " + step + ": " + strerror(errno);
    return false;
  };
  std::string dir = container_dir + "/binds";
  if (mkdir(dir.c_str(), 0700) != 0) return failed("mkdir " + dir);
  for (size_t n = 0; n < binds.size(); n++) {
    std::string path = bind_staging_path(container_dir, n);
    if (binds[n].kind == BindKind::kDir) {
      if (mkdir(path.c_str(), 0755) != 0) return failed("mkdir " + path);
      continue;
    }
    int fd = open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) return failed("create " + path);
    close(fd);
  }
  return true;
}

bool binds_open_trees(const std::string& container_dir, const std::vector<BindSpec>& binds,
                      std::vector<int>* trees, char* step, size_t step_len) {
  for (size_t n = 0; n < binds.size(); n++) {
    std::string path = bind_staging_path(container_dir, n);
    int fd = static_cast<int>(
        syscall(SYS_open_tree, AT_FDCWD, path.c_str(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
    if (fd < 0) return fail(step, step_len, "open_tree", path);
    trees->push_back(fd);
    // Private: the copy would otherwise share propagation with the agent's tmpfs. Read-only here,
    // on the detached copy, so the container never sees it writable.
    MountAttr attr{};
    attr.propagation = MS_PRIVATE;
    if (binds[n].read_only) attr.attr_set = kMountAttrRdonly;
    if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH, &attr, sizeof attr) != 0) {
      return fail(step, step_len, "mount_setattr", path);
    }
  }
  return true;
}

bool binds_attach(const std::vector<BindSpec>& binds, std::vector<int>* trees, char* step,
                  size_t step_len) {
  bool ok = true;
  for (size_t n = 0; ok && n < binds.size() && n < trees->size(); n++) {
    const std::string& dest = binds[n].destination;
    if (!ensure_destination(binds[n])) {
      ok = fail(step, step_len, "create the bind destination", dest);
    } else if (syscall(SYS_move_mount, (*trees)[n], "", AT_FDCWD, dest.c_str(),
                       MOVE_MOUNT_F_EMPTY_PATH) != 0) {
      ok = fail(step, step_len, "bind onto", dest);
    }
  }
  int err = errno;
  for (int fd : *trees) close(fd);
  trees->clear();
  errno = err;
  return ok;
}
