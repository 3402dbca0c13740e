#include "pid1.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "agent.h"
#include "common/read_file.h"
#include "log.h"
#include "mounts.h"
#include "network.h"

static void mount_fs(const char* source, const char* target, const char* type,
                     unsigned long flags, const char* options) {
  if (mkdir(target, 0755) != 0 && errno != EEXIST) {
    logf("mkdir %s: %s", target, strerror(errno));
  }
  if (mount(source, target, type, flags, options) != 0 && errno != EBUSY) {
    logf("mount %s on %s: %s", type, target, strerror(errno));
  }
}

static bool read_file(const char* path, std::string* out) {
  return vc::ReadFileBounded(path, 1u << 20, out);  // /proc/cmdline, /etc/vc-modules: small
}

// The kernel gives init fds 0-2 only if the initramfs has /dev/console. Children get their own
// stdio, but fds 0-2 must be taken so that no pipe of ours lands there and gets clobbered by a
// child's dup2() onto 0-2.
static void ensure_std_fds() {
  for (int fd = 0; fd < 3; fd++) {
    if (fcntl(fd, F_GETFD) >= 0) continue;
    int n = open("/dev/console", O_RDWR | O_NOCTTY);
    if (n < 0) n = open("/dev/null", O_RDWR);
    if (n >= 0 && n != fd) {
      dup2(n, fd);
      close(n);
    }
  }
}

static void load_modules() {
  std::string list;
  if (!read_file("/etc/vc-modules", &list)) {
    if (errno != ENOENT) logf("/etc/vc-modules: %s", strerror(errno));
    return;
  }
  size_t start = 0;
  while (start < list.size()) {
    size_t end = list.find('\n', start);
    if (end == std::string::npos) end = list.size();
    std::string line = list.substr(start, end - start);
    start = end + 1;
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t' || line.back() == '\r')) {
      line.pop_back();
    }
    size_t first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    line.erase(0, first);
    int fd = open(line.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      logf("module %s: %s", line.c_str(), strerror(errno));
      continue;
    }
    // Called directly: glibc has no wrapper. EEXIST = built in or loaded already, which is fine.
    if (syscall(SYS_finit_module, fd, "", 0) != 0 && errno != EEXIST) {
      logf("module %s: %s", line.c_str(), strerror(errno));
    }
    close(fd);
  }
}

static void set_hostname_from_cmdline() {
  std::string cmdline;
  if (!read_file("/proc/cmdline", &cmdline)) return;
  static const char kKey[] = "vc.hostname=";
  size_t pos = 0;
  while (pos < cmdline.size()) {
    size_t end = cmdline.find_first_of(" \t\n", pos);
    if (end == std::string::npos) end = cmdline.size();
    std::string word = cmdline.substr(pos, end - pos);
    pos = end + 1;
    if (word.compare(0, sizeof kKey - 1, kKey) != 0) continue;
    std::string name = word.substr(sizeof kKey - 1);
    if (sethostname(name.data(), name.size()) != 0) {
      logf("sethostname %s: %s", name.c_str(), strerror(errno));
    }
  }
}

void pid1_setup() {
  umask(022);
  // Before anything is mounted: the bind that replaces / is not recursive.
  mounts_root_off_rootfs();
  // /dev first: the console for logging lives there.
  mount_fs("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755");
  ensure_std_fds();
  int console = open("/dev/console", O_WRONLY | O_NOCTTY | O_CLOEXEC);
  if (console >= 0) log_set_fd(console);

  mount_fs("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
  mount_fs("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
  mount_fs("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, "mode=620,ptmxmode=666");
  // devtmpfs has a /dev/ptmx (5:2) that finds the devpts instance at /dev/pts; a symlink into
  // that instance is the fallback where the node is missing.
  if (access("/dev/ptmx", F_OK) != 0 && symlink("pts/ptmx", "/dev/ptmx") != 0) {
    logf("/dev/ptmx: %s", strerror(errno));
  }
  mount_fs("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  mount_fs("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
  mount_fs("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
  mount_fs("cgroup2", "/sys/fs/cgroup", "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
  // Conventional links that shells and programs expect (failures only mean they exist).
  symlink("/proc/self/fd", "/dev/fd");
  symlink("/proc/self/fd/0", "/dev/stdin");
  symlink("/proc/self/fd/1", "/dev/stdout");
  symlink("/proc/self/fd/2", "/dev/stderr");

  setenv("PATH", "/usr/sbin:/usr/bin:/sbin:/bin", 1);
  load_modules();
  network_lo_up();  // every pod has loopback, configured network or not
  set_hostname_from_cmdline();
}

// Reaps children until none is left or timeout_ms passes.
static void reap_all(int timeout_ms) {
  int64_t deadline = monotonic_ms() + timeout_ms;
  for (;;) {
    pid_t pid;
    while ((pid = waitpid(-1, nullptr, WNOHANG)) > 0) {
    }
    if (pid < 0 && errno == ECHILD) return;
    if (monotonic_ms() >= deadline) return;
    usleep(10000);
  }
}

void pid1_power_off() {
  logf("powering off");
  sync();
  kill(-1, SIGTERM);  // from init, -1 means every process but init
  reap_all(1000);
  kill(-1, SIGKILL);
  reap_all(1000);
  sync();
  reboot(RB_POWER_OFF);
  logf("power off failed: %s", strerror(errno));
  for (;;) pause();
}
