// The process-level parts of the jail (jail_process.h, jail.h): inherited fds, rlimits, the
// environment, credentials.
#include "jail/jail_process.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common/fd.h"
#include "common/read_file.h"

namespace vmm::jail {

using vc::Status;

namespace {

Status Errno(const std::string& what) { return Status::Error("jail: " + what + ": " + std::strerror(errno)); }

Status Limit(int resource, const char* name, uint64_t value) {
  const rlimit r{rlim_t(value), rlim_t(value)};
  if (::setrlimit(resource, &r) != 0) return Errno(std::string("setrlimit ") + name + " " + std::to_string(value));
  return Status();
}

// The highest fd open now, or -1.
int HighestOpenFd() {
  DIR* d = ::opendir("/proc/self/fd");
  if (!d) return -1;
  int highest = -1;
  const int own = ::dirfd(d);
  while (dirent* e = ::readdir(d)) {
    const int fd = std::atoi(e->d_name);
    if (e->d_name[0] >= '0' && e->d_name[0] <= '9' && fd != own) highest = std::max(highest, fd);
  }
  ::closedir(d);
  return highest;
}

}  // namespace

pid_t HostPid() {
  std::string status;
  vc::UniqueFd fd(::open("/proc/self/status", O_RDONLY | O_CLOEXEC));
  if (fd.valid() && vc::ReadFdBounded(fd.get(), 1 << 16, &status)) {
    const size_t at = status.find("\nNSpid:");
    if (at != std::string::npos) {
      const long pid = std::strtol(status.c_str() + at + 8, nullptr, 10);
      if (pid > 0) return pid_t(pid);
    }
  }
  return ::getpid();
}

Status CloseInheritedFds(const std::vector<int>& keep) {
  DIR* d = ::opendir("/proc/self/fd");
  if (!d) return Errno("list /proc/self/fd");
  std::vector<int> doomed;
  const int own = ::dirfd(d);
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    const int fd = std::atoi(e->d_name);
    if (fd > 2 && fd != own && std::find(keep.begin(), keep.end(), fd) == keep.end()) doomed.push_back(fd);
  }
  ::closedir(d);
  for (int fd : doomed) ::close(fd);
  return Status();
}

Status SetLimits(const JailOptions& o) {
  // The VM holds its fds already: a limit at or below the highest would only fail later opens
  // in a way that looks like a VM bug, so it is refused here, naming both numbers.
  const int highest = HighestOpenFd();
  if (highest >= 0 && uint64_t(highest) >= o.max_open_files)
    return Status::Error(vc::Format("jail: --jail-nofile %llu is not above fd %d, which the VM holds already",
                                    (unsigned long long)o.max_open_files, highest));
  ::signal(SIGXFSZ, SIG_IGN);
  Status s = Limit(RLIMIT_CORE, "RLIMIT_CORE", 0);
  if (s.ok()) s = Limit(RLIMIT_FSIZE, "RLIMIT_FSIZE", o.max_file_bytes);
  if (s.ok()) s = Limit(RLIMIT_NOFILE, "RLIMIT_NOFILE", o.max_open_files);
  return s;
}

Status ClearEnvironment() {
  // /proc/PID/environ shows the block the kernel copied at exec (between env_start and env_end in
  // /proc/PID/stat), not `environ`: blank that block, then move its end to its start.
  std::string stat;
  vc::UniqueFd fd(::open("/proc/self/stat", O_RDONLY | O_CLOEXEC));
  if (!fd.valid() || !vc::ReadFdBounded(fd.get(), 4096, &stat)) return Errno("read /proc/self/stat");
  // Fields after the command name (which may hold spaces) start at field 3; env_start is 50.
  const size_t paren = stat.rfind(')');
  std::vector<unsigned long> fields;
  for (size_t pos = paren == std::string::npos ? stat.size() : paren + 2; pos < stat.size();) {
    const size_t end = std::min(stat.find(' ', pos), stat.size());
    fields.push_back(std::strtoul(stat.c_str() + pos, nullptr, 10));
    pos = end + 1;
  }
  ::clearenv();
  if (fields.size() < 51 - 3 + 1) return Status::Error("jail: /proc/self/stat has no env_start/env_end (kernel older than 3.5)");
  const unsigned long env_start = fields[50 - 3], env_end = fields[51 - 3];
  if (env_end > env_start) std::memset(reinterpret_cast<void*>(env_start), 0, env_end - env_start);
  // Without CAP_SYS_RESOURCE (a container may withhold it) the blanked block stays: NUL bytes
  // only, no variable.
  ::prctl(PR_SET_MM, PR_SET_MM_ENV_END, env_start, 0, 0);
  return Status();
}

Status DropPrivileges(const JailOptions& o) {
  if (::setgroups(0, nullptr) != 0) return Errno("setgroups");
  if (::setresgid(o.gid, o.gid, o.gid) != 0) return Errno(vc::Format("setresgid %u", unsigned(o.gid)));
  if (::setresuid(o.uid, o.uid, o.uid) != 0) return Errno(vc::Format("setresuid %u", unsigned(o.uid)));
  uid_t r, e, s;
  if (::getresuid(&r, &e, &s) != 0 || r != o.uid || e != o.uid || s != o.uid)
    return Status::Error(vc::Format("jail: the uid did not change to %u", unsigned(o.uid)));
  // Not dumpable: no core, and /proc/PID of the VMM belongs to root, so another process of the
  // same uid (a VMM of another pod) can neither ptrace it nor read its memory.
  if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) return Errno("prctl PR_SET_DUMPABLE");
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return Errno("prctl PR_SET_NO_NEW_PRIVS");
  return Status();
}

Status ForbidNewProcesses() {
  // The uid's task count includes this process, so a limit of 0 refuses every later fork and
  // thread. Other processes of the uid are unaffected: the limit is this process's.
  return Limit(RLIMIT_NPROC, "RLIMIT_NPROC", 0);
}

Status ForbidNewProcessesOnce(const std::function<bool()>& vcpu_ran) {
  for (int waited_ms = 0; waited_ms < 10000 && !vcpu_ran(); waited_ms++) ::usleep(1000);
  return ForbidNewProcesses();
}

}  // namespace vmm::jail
