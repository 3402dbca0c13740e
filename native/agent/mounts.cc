#include "mounts.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "log.h"

static bool mkdir_p(const std::string& path, mode_t mode) {
  for (size_t i = 1; i <= path.size(); i++) {
    if (i < path.size() && path[i] != '/') continue;
    std::string part = path.substr(0, i);
    if (mkdir(part.c_str(), mode) != 0 && errno != EEXIST) return false;
  }
  return true;
}

static bool failed(std::string* error, const std::string& step) {
  *error = step + ": " + strerror(errno);
  return false;
}

// --- the agent's own namespace -----------------------------------------------------------------

bool mounts_root_off_rootfs() {
  static const char kNewRoot[] = "/.vc-root";
  const char* step = nullptr;
  if (mkdir(kNewRoot, 0700) != 0 && errno != EEXIST) {
    step = "mkdir /.vc-root";
  } else if (mount("/", kNewRoot, nullptr, MS_BIND, nullptr) != 0) {
    step = "bind / on /.vc-root";
  } else if (chdir(kNewRoot) != 0) {
    step = "chdir /.vc-root";
  } else if (mount(".", "/", nullptr, MS_MOVE, nullptr) != 0) {
    step = "move the bind to /";
  } else if (chroot(".") != 0) {
    step = "chroot";
  }
  if (step) {
    logf("root switch: %s: %s (containers cannot pivot_root)", step, strerror(errno));
    umount2(kNewRoot, MNT_DETACH);
  }
  if (chdir("/") != 0) logf("chdir /: %s", strerror(errno));
  rmdir(kNewRoot);  // on success the same directory seen through the bind, no mount point now
  return step == nullptr;
}

bool mounts_private_namespace() {
  if (unshare(CLONE_NEWNS) != 0) {
    logf("unshare(CLONE_NEWNS): %s (containers need root)", strerror(errno));
    return false;
  }
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    logf("making mounts private: %s", strerror(errno));
    return false;
  }
  return true;
}

// --- images ------------------------------------------------------------------------------------

bool image_acquire(ImageTable& images, const std::string& run_dir, const std::string& serial,
                   const std::string& dev, const std::string& fstype, std::string* mountpoint,
                   std::string* error) {
  auto it = images.find(serial);
  if (it != images.end()) {
    it->second.refs++;
    *mountpoint = it->second.mountpoint;
    return true;
  }
  std::string dir = run_dir + "/images/" + serial;
  if (!mkdir_p(dir, 0755)) return failed(error, "mkdir " + dir);
  if (mount(dev.c_str(), dir.c_str(), fstype.c_str(), MS_RDONLY, nullptr) != 0) {
    failed(error, "mount " + dev + " (" + fstype + ") on " + dir);
    rmdir(dir.c_str());
    return false;
  }
  images[serial] = ImageMount{dir, 1};
  *mountpoint = dir;
  return true;
}

void image_release(ImageTable& images, const std::string& serial) {
  auto it = images.find(serial);
  if (it == images.end() || --it->second.refs > 0) return;
  const std::string& dir = it->second.mountpoint;
  // Detached: an overlay in a container namespace that is still dying may hold it a moment.
  if (umount2(dir.c_str(), MNT_DETACH) != 0) logf("umount %s: %s", dir.c_str(), strerror(errno));
  rmdir(dir.c_str());
  images.erase(it);
}

// --- writable layers ---------------------------------------------------------------------------

bool layer_create(const std::string& dir, const std::string& lower, std::string* error) {
  if (!mkdir_p(dir, 0700)) return failed(error, "mkdir " + dir);
  if (mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700") != 0) {
    failed(error, "mount tmpfs on " + dir);
    rmdir(dir.c_str());
    return false;
  }
  std::string rootfs = dir + "/rootfs";
  std::string opts = "lowerdir=" + lower + ",upperdir=" + dir + "/upper,workdir=" + dir + "/work";
  const char* step = nullptr;
  if (mkdir((dir + "/upper").c_str(), 0755) != 0) step = "mkdir upper";
  if (!step && mkdir((dir + "/work").c_str(), 0700) != 0) step = "mkdir work";
  if (!step && mkdir(rootfs.c_str(), 0755) != 0) step = "mkdir rootfs";
  if (!step && mount("overlay", rootfs.c_str(), "overlay", 0, opts.c_str()) != 0) {
    step = "mount overlay";
  }
  if (step) {
    failed(error, std::string(step) + " (" + opts + ")");
    umount2(dir.c_str(), MNT_DETACH);
    rmdir(dir.c_str());
    return false;
  }
  return true;
}

bool layer_remove(const std::string& dir, std::string* error) {
  bool ok = true;
  std::string rootfs = dir + "/rootfs";
  // EINVAL: not mounted (any more); detached so that a dying container namespace cannot block it.
  if (umount2(rootfs.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
    ok = failed(error, "umount " + rootfs);
  }
  if (umount2(dir.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
    ok = failed(error, "umount " + dir);
  }
  if (rmdir(dir.c_str()) != 0 && errno != ENOENT) ok = failed(error, "rmdir " + dir);
  return ok;
}

// --- inside the container ----------------------------------------------------------------------

namespace {

// Records the failing step; returns false so callers can `return fail(...)`.
bool fail(char* step, size_t len, const char* what, const char* path) {
  int err = errno;
  std::snprintf(step, len, "%s %s", what, path);
  errno = err;
  return false;
}

// A directory at path (relative to the rootfs), created if missing. A symlink or file there is
// refused: mounting on it would follow it out of the container's root.
bool ensure_dir(const char* path, mode_t mode) {
  struct stat st;
  if (lstat(path, &st) == 0) {
    if (S_ISDIR(st.st_mode)) return true;
    errno = ENOTDIR;
    return false;
  }
  return errno == ENOENT && mkdir(path, mode) == 0;
}

struct Node {
  const char* name;
  unsigned maj, min;
};
const Node kNodes[] = {{"dev/null", 1, 3},    {"dev/zero", 1, 5}, {"dev/full", 1, 7},
                       {"dev/random", 1, 8},  {"dev/urandom", 1, 9}, {"dev/tty", 5, 0}};
const char* const kLinks[][2] = {{"pts/ptmx", "dev/ptmx"},
                                 {"/proc/self/fd", "dev/fd"},
                                 {"/proc/self/fd/0", "dev/stdin"},
                                 {"/proc/self/fd/1", "dev/stdout"},
                                 {"/proc/self/fd/2", "dev/stderr"}};

// A regular file at path (relative to the current root or directory) to bind over, with its parent
// directory: a missing one is created empty, a symlink is replaced by an empty file (binding over
// it would follow it, possibly out of the container's root). Directories are refused.
bool ensure_file_target(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash != std::string::npos && slash > 0 && !ensure_dir(path.substr(0, slash).c_str(), 0755)) {
    return false;
  }
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) {
    if (S_ISREG(st.st_mode)) return true;
    if (S_ISDIR(st.st_mode)) {
      errno = EISDIR;
      return false;
    }
    if (unlink(path.c_str()) != 0) return false;
  } else if (errno != ENOENT) {
    return false;
  }
  int fd = open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  close(fd);
  return true;
}

// Makes the bind on top of path read-only (a bind takes no flags of its own when it is made).
bool remount_readonly(const char* path) {
  return mount(nullptr, path, nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr) == 0;
}

}  // namespace

bool mounts_inject_files(pid_t init_pid, const std::vector<FileBind>& binds, std::string* error) {
  int rep[2];
  if (pipe2(rep, O_CLOEXEC) != 0) return failed(error, "pipe");
  std::string ns_path = "/proc/" + std::to_string(init_pid) + "/ns/mnt";
  pid_t pid = fork();
  if (pid < 0) {
    close(rep[0]);
    close(rep[1]);
    return failed(error, "fork");
  }
  if (pid == 0) {  // single-threaded, so it may setns into another mount namespace
    close(rep[0]);
    char msg[200] = "";
    auto die = [&](const char* what, const std::string& path) {
      int err = errno;
      std::snprintf(msg, sizeof msg, "%s %s: %s", what, path.c_str(), strerror(err));
      ssize_t n = write(rep[1], msg, strlen(msg));
      (void)n;
      _exit(1);
    };
    std::vector<int> trees;
    for (const FileBind& b : binds) {
      int fd = static_cast<int>(syscall(SYS_open_tree, AT_FDCWD, b.source.c_str(),
                                        OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
      if (fd < 0) die("open_tree", b.source);
      trees.push_back(fd);
    }
    int ns = open(ns_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (ns < 0) die("open", ns_path);
    if (setns(ns, CLONE_NEWNS) != 0) die("setns", ns_path);  // root and cwd: the container's
    for (size_t i = 0; i < binds.size(); i++) {
      std::string target = "/" + binds[i].target;
      if (!ensure_file_target(target)) die("create", target);
      if (syscall(SYS_move_mount, trees[i], "", AT_FDCWD, target.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0) {
        die("move_mount onto", target);
      }
      if (!remount_readonly(target.c_str())) die("remount read-only", target);
    }
    _exit(0);
  }
  close(rep[1]);
  char msg[200];
  ssize_t n;
  while ((n = read(rep[0], msg, sizeof msg - 1)) < 0 && errno == EINTR) {
  }
  close(rep[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (n > 0) {
    msg[n] = 0;
    *error = msg;
    return false;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    *error = "binding files into the container: the helper died";
    return false;
  }
  return true;
}

bool container_setup_root(const char* rootfs, const std::vector<FileBind>& files, int shm_tree,
                          char* step, size_t step_len) {
  auto bad = [&](const char* what, const char* path) { return fail(step, step_len, what, path); };
  // Nothing done here may reach the agent's namespace, and nothing of the agent's may arrive.
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    return bad("make mounts private", "/");
  }
  if (chdir(rootfs) != 0) return bad("chdir", rootfs);

  if (!ensure_dir("proc", 0555)) return bad("mkdir", "/proc");
  if (mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
    return bad("mount proc on", "/proc");
  }
  if (!ensure_dir("sys", 0555)) return bad("mkdir", "/sys");
  if (mount("sysfs", "sys", "sysfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
    return bad("mount sysfs on", "/sys");
  }
  if (!ensure_dir("dev", 0755)) return bad("mkdir", "/dev");
  if (mount("tmpfs", "dev", "tmpfs", MS_NOSUID | MS_STRICTATIME, "mode=755,size=65536k") != 0) {
    return bad("mount tmpfs on", "/dev");
  }
  for (const Node& n : kNodes) {
    if (mknod(n.name, S_IFCHR | 0666, makedev(n.maj, n.min)) != 0) return bad("mknod", n.name);
    if (chmod(n.name, 0666) != 0) return bad("chmod", n.name);  // past the umask
  }
  if (mkdir("dev/pts", 0755) != 0) return bad("mkdir", "/dev/pts");
  if (mount("devpts", "dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
            "newinstance,ptmxmode=0666,mode=0620") != 0) {
    return bad("mount devpts on", "/dev/pts");
  }
  for (const auto& l : kLinks) {
    if (symlink(l[0], l[1]) != 0) return bad("symlink", l[1]);
  }
  if (mkdir("dev/shm", 01777) != 0 || chmod("dev/shm", 01777) != 0) return bad("mkdir", "/dev/shm");
  if (shm_tree >= 0) {
    if (syscall(SYS_move_mount, shm_tree, "", AT_FDCWD, "dev/shm", MOVE_MOUNT_F_EMPTY_PATH) != 0) {
      return bad("attach the joined container's /dev/shm on", "/dev/shm");
    }
  } else if (mount("shm", "dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=65536k") != 0) {
    return bad("mount tmpfs on", "/dev/shm");
  }

  for (const FileBind& f : files) {
    if (!ensure_file_target(f.target)) return bad("create", f.target.c_str());
    if (mount(f.source.c_str(), f.target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
      return bad("bind", f.target.c_str());
    }
    if (!remount_readonly(f.target.c_str())) return bad("remount read-only", f.target.c_str());
  }

  // pivot_root(".", ".") stacks the old root on top of the new one; detaching it leaves only the
  // container's mounts, without needing a directory for the old root inside the image.
  if (syscall(SYS_pivot_root, ".", ".") != 0) return bad("pivot_root", rootfs);
  if (umount2(".", MNT_DETACH) != 0) return bad("unmount the old root", "");
  if (chdir("/") != 0) return bad("chdir", "/");
  return true;
}

bool container_bind_console(const char* slave_path, char* step, size_t step_len) {
  if (!ensure_file_target("/dev/console")) return fail(step, step_len, "create", "/dev/console");
  if (mount(slave_path, "/dev/console", nullptr, MS_BIND, nullptr) != 0) {
    return fail(step, step_len, "bind the terminal on", "/dev/console");
  }
  return true;
}
