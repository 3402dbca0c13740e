#include "cgroup.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common/read_file.h"
#include "log.h"

static const char* const kControllers[] = {"memory", "pids", "cpu"};

static bool write_file(const std::string& path, const std::string& value) {
  int fd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = write(fd, value.data(), value.size());
  int err = errno;
  close(fd);
  errno = err;
  return n == static_cast<ssize_t>(value.size());
}

static bool read_file(const std::string& path, std::string* out) {
  return vc::ReadFileBounded(path.c_str(), 16u << 20, out);  // cgroup files; procs of a whole guest
}

static bool exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

// The value of "key N" in a flat-keyed file such as memory.events; -1 if absent.
static long long keyed_value(const std::string& text, const char* key) {
  std::string k = std::string(key) + " ";
  size_t at = 0;
  while ((at = text.find(k, at)) != std::string::npos) {
    if (at == 0 || text[at - 1] == '\n') return std::strtoll(text.c_str() + at + k.size(), nullptr, 10);
    at += k.size();
  }
  return -1;
}

static bool fail(std::string* error, const std::string& step) {
  *error = step + ": " + strerror(errno);
  return false;
}

// Offers every available controller to the children of dir. A controller that cannot be enabled
// is left out: only a limit that needs it fails later (its file is missing).
static void enable_controllers(const std::string& dir) {
  std::string available;
  if (!read_file(dir + "/cgroup.controllers", &available)) return;
  for (const char* c : kControllers) {
    bool listed = false;
    size_t start = 0;
    while (!listed && start < available.size()) {
      size_t end = available.find_first_of(" \n", start);
      if (end == std::string::npos) end = available.size();
      listed = available.compare(start, end - start, c) == 0;
      start = end + 1;
    }
    if (listed && !write_file(dir + "/cgroup.subtree_control", std::string("+") + c)) {
      logf("cgroup: enabling %s in %s: %s", c, dir.c_str(), strerror(errno));
    }
  }
}

static bool make_dir(const std::string& path) { return mkdir(path.c_str(), 0755) == 0 || errno == EEXIST; }

bool cgroup_create(const std::string& root, const std::string& id, const Limits& limits,
                   std::string* path, std::string* error) {
  struct statfs fs;
  if (statfs(root.c_str(), &fs) != 0) return fail(error, "cgroup: statfs " + root);
  if (fs.f_type != CGROUP2_SUPER_MAGIC) {
    *error = "cgroup: " + root + " is not a cgroup2 file system";
    return false;
  }
  enable_controllers(root);
  std::string vc = root + "/vc";
  if (!make_dir(vc)) return fail(error, "cgroup: mkdir " + vc);
  enable_controllers(vc);

  std::string dir = vc + "/" + id;
  // A directory left by an earlier agent run (test mode) would hold stale limits.
  if (rmdir(dir.c_str()) != 0 && errno != ENOENT) return fail(error, "cgroup: stale " + dir);
  if (mkdir(dir.c_str(), 0755) != 0) return fail(error, "cgroup: mkdir " + dir);

  auto set = [&](const char* file, const std::string& value) {
    if (write_file(dir + "/" + file, value)) return true;
    fail(error, std::string("cgroup: ") + file + " = " + value);
    rmdir(dir.c_str());
    return false;
  };
  if (limits.memory_bytes >= 0) {
    if (!set("memory.max", std::to_string(limits.memory_bytes))) return false;
    // Without swap the limit is the container's whole memory, and going past it is an OOM kill.
    if (exists(dir + "/memory.swap.max") && !set("memory.swap.max", "0")) return false;
  }
  if (exists(dir + "/memory.oom.group") && !set("memory.oom.group", "1")) return false;
  if (limits.pids >= 0 && !set("pids.max", std::to_string(limits.pids))) return false;
  if (limits.cpu_quota_us >= 0 || limits.cpu_period_us >= 0) {
    std::string quota = limits.cpu_quota_us >= 0 ? std::to_string(limits.cpu_quota_us) : "max";
    std::string period = limits.cpu_period_us >= 0 ? std::to_string(limits.cpu_period_us) : "100000";
    if (!set("cpu.max", quota + " " + period)) return false;
  }
  *path = dir;
  return true;
}

int cgroup_open(const std::string& path) {
  return open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

bool cgroup_oom_killed(const std::string& path) {
  std::string text;
  return read_file(path + "/memory.events", &text) && keyed_value(text, "oom_kill") > 0;
}

bool cgroup_populated(const std::string& path) {
  std::string text;
  if (!read_file(path + "/cgroup.events", &text)) return false;
  return keyed_value(text, "populated") > 0;
}

void cgroup_kill(const std::string& path) {
  if (!write_file(path + "/cgroup.kill", "1")) cgroup_signal(path, SIGKILL);  // before Linux 5.14
}

bool cgroup_signal(const std::string& path, int sig) {
  std::string procs;
  if (!read_file(path + "/cgroup.procs", &procs)) return false;
  const char* p = procs.c_str();
  while (*p) {
    char* end = nullptr;
    long pid = std::strtol(p, &end, 10);
    if (end == p) break;
    if (pid > 0) kill(static_cast<pid_t>(pid), sig);  // ESRCH: exited meanwhile
    p = end;
    while (*p == '\n') p++;
  }
  return true;
}

bool cgroup_remove(const std::string& path) { return rmdir(path.c_str()) == 0 || errno == ENOENT; }

void cgroup_remove_root(const std::string& root, bool created_root) {
  rmdir((root + "/vc").c_str());
  if (created_root) rmdir(root.c_str());
}
