#include "cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common/read_file.h"
#include "log.h"
#include "write_file.h"

// io: for container_stats' io.stat (no io limits are set).
static const char* const kControllers[] = {"memory", "pids", "cpu", "io"};

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

static std::string limit_text(int64_t v) { return v == kLimitNone ? "max" : std::to_string(v); }

bool cgroup_update(const std::string& path, const Limits& limits, std::string* error) {
  auto set = [&](const char* file, const std::string& value) {
    return write_file(path + "/" + file, value) ||
           fail(error, std::string("cgroup: ") + file + " = " + value);
  };
  if (limits.memory_bytes >= 0) {
    if (!set("memory.max", limit_text(limits.memory_bytes))) return false;
    if (exists(path + "/memory.swap.max") && !set("memory.swap.max", "0")) return false;
  }
  if (limits.pids >= 0 && !set("pids.max", limit_text(limits.pids))) return false;
  if (limits.cpu_quota_us >= 0 || limits.cpu_period_us >= 0) {
    std::string now, quota = "max", period = "100000";
    if (read_file(path + "/cpu.max", &now)) {
      size_t space = now.find(' ');
      if (space != std::string::npos) {
        quota = now.substr(0, space);
        period = std::to_string(std::strtoll(now.c_str() + space + 1, nullptr, 10));
      }
    }
    if (limits.cpu_quota_us >= 0) quota = limit_text(limits.cpu_quota_us);
    if (limits.cpu_period_us >= 0) period = std::to_string(limits.cpu_period_us);
    if (!set("cpu.max", quota + " " + period)) return false;
  }
  return true;
}

static int64_t now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

bool cgroup_freeze(const std::string& path, bool frozen, int timeout_ms, std::string* error) {
  if (!write_file(path + "/cgroup.freeze", frozen ? "1" : "0")) {
    return fail(error, std::string("cgroup: cgroup.freeze = ") + (frozen ? "1" : "0"));
  }
  std::string events_path = path + "/cgroup.events";
  int fd = open(events_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(error, "cgroup: open " + events_path);
  int64_t deadline = now_ms() + timeout_ms;
  for (;;) {
    char buf[256];
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    if (n < 0) {
      fail(error, "cgroup: read " + events_path);
      close(fd);
      return false;
    }
    buf[n] = 0;
    if ((keyed_value(buf, "frozen") > 0) == frozen) break;
    int64_t left = deadline - now_ms();
    if (left <= 0) {
      close(fd);
      *error = "cgroup: " + events_path + " does not say frozen " + (frozen ? "1" : "0") +
               " after " + std::to_string(timeout_ms) + " ms";
      return false;
    }
    // A change of cgroup.events wakes poll (POLLPRI); the short slice only bounds a missed one.
    pollfd p{fd, POLLPRI, 0};
    poll(&p, 1, static_cast<int>(std::min<int64_t>(left, 20)));
  }
  close(fd);
  return true;
}

static void collect_pids(const std::string& path, std::vector<pid_t>* pids, int depth) {
  std::string procs;
  if (read_file(path + "/cgroup.procs", &procs)) {
    const char* p = procs.c_str();
    char* end = nullptr;
    for (long pid; (pid = std::strtol(p, &end, 10)), end != p; p = end) {
      if (pid > 0) pids->push_back(static_cast<pid_t>(pid));
    }
  }
  if (depth >= 32) return;  // cgroup.max.depth is unlimited by default; the walk is not
  DIR* d = opendir(path.c_str());
  if (!d) return;
  while (dirent* e = readdir(d)) {
    if (e->d_type == DT_DIR && e->d_name[0] != '.') collect_pids(path + "/" + e->d_name, pids, depth + 1);
  }
  closedir(d);
}

bool cgroup_pids(const std::string& path, std::vector<pid_t>* pids) {
  std::string own;
  if (!read_file(path + "/cgroup.procs", &own)) return false;
  collect_pids(path, pids, 0);
  std::sort(pids->begin(), pids->end());
  pids->erase(std::unique(pids->begin(), pids->end()), pids->end());
  return true;
}
