// EnterJail: the namespaces and the new root (jail.h). The process-level limits and the uid drop
// are in jail_process.cc.
#include "jail/jail.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "jail/jail_process.h"

namespace vmm::jail {

using vc::Status;

namespace {

Status Errno(const std::string& what) { return Status::Error("jail: " + what + ": " + std::strerror(errno)); }

// Creates each missing directory of `path` (mode 0755: the unprivileged VMM must pass through).
Status MakeDirs(const std::string& path) {
  for (size_t slash = path.find('/', 1);; slash = path.find('/', slash + 1)) {
    const std::string prefix = slash == std::string::npos ? path : path.substr(0, slash);
    if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) return Errno("mkdir " + prefix);
    if (slash == std::string::npos) return Status();
  }
}

Status CheckDirectory(const std::string& flag, const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Errno(flag + " " + path);
  if (!S_ISDIR(st.st_mode)) return Status::Error("jail: " + flag + " " + path + " is not a directory");
  return Status();
}

// The jail's root: an empty directory the VMM's tmpfs is mounted on. Created if missing; a symlink
// or anything but a directory is refused (the mount would land where the link points).
Status PrepareRootDirectory(const std::string& root) {
  if (::mkdir(root.c_str(), 0700) != 0 && errno != EEXIST) return Errno("mkdir --jail " + root);
  struct stat st;
  if (::lstat(root.c_str(), &st) != 0) return Errno("--jail " + root);
  if (!S_ISDIR(st.st_mode)) return Status::Error("jail: --jail " + root + " is not a directory");
  return Status();
}

// Bind-mounts `dir` read-only at the same path under the new root (the cwd).
Status BindReadOnly(const std::string& root, const std::string& dir) {
  const std::string target = root + dir;
  Status s = MakeDirs(target);
  if (!s.ok()) return s;
  if (::mount(dir.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) return Errno("bind " + dir);
  // A bind mount takes its flags from a remount of itself.
  if (::mount(nullptr, target.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
              nullptr) != 0)
    return Errno("remount read-only " + dir);
  return Status();
}

Status EnterNewRoot(const JailOptions& o) {
  // Private before anything is mounted: no mount of ours reaches the host (or another namespace)
  // through shared propagation, and none of theirs reaches us later.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return Errno("make / private");
  if (::mount("vc-vmm-jail", o.root.c_str(), "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC,
              "mode=0755,size=64k,nr_inodes=1024") != 0)
    return Errno("mount tmpfs on " + o.root);
  for (const std::string& dir : o.read_only_dirs) {
    Status s = BindReadOnly(o.root, dir);
    if (!s.ok()) return s;
  }
  // pivot_root(".", "."): the old root ends up stacked on the new one at "/", and is detached
  // right away, so no path leads back to the host's tree.
  if (::chdir(o.root.c_str()) != 0) return Errno("chdir " + o.root);
  if (::syscall(SYS_pivot_root, ".", ".") != 0) return Errno("pivot_root " + o.root);
  if (::umount2(".", MNT_DETACH) != 0) return Errno("detach the old root");
  if (::chdir("/") != 0) return Errno("chdir /");
  if (::mount(nullptr, "/", nullptr, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
    return Errno("remount the jail root read-only");
  return Status();
}

}  // namespace

Status UnsharePidNamespace() {
  if (::unshare(CLONE_NEWPID) != 0) return Errno("unshare a pid namespace");
  return Status();
}

Status EnterJail(const JailOptions& o) {
  for (const std::string& dir : o.read_only_dirs) {
    Status s = CheckDirectory("--jail-ro", dir);
    if (!s.ok()) return s;
  }
  Status s = PrepareRootDirectory(o.root);
  // Both read /proc, which the jail does not have.
  if (s.ok()) s = SetLimits(o);
  if (s.ok()) s = ClearEnvironment();
  if (!s.ok()) return s;
  // The cgroup namespace too: the VMM has joined its groups already and sees them as its root.
  if (::unshare(CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP) != 0) return Errno("unshare namespaces");
  if (::sethostname("vc-vmm", 6) != 0) return Errno("sethostname");
  if (!(s = EnterNewRoot(o)).ok()) return s;
  return DropPrivileges(o);
}

}  // namespace vmm::jail
