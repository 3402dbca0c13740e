#include "cgroup.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>

#include "common/read_file.h"

namespace vc {
namespace host {
namespace {

constexpr const char* kParent = "virtcontainers";
constexpr const char* kControllers[] = {"cpu", "memory", "pids"};

bool Fail(CgroupError* error, const std::string& what, const std::string& path, int err) {
  if (error) {
    error->message = err ? what + ": " + std::strerror(err) : what;
    error->path = path;
    error->err = err;
  }
  return false;
}

bool ReadText(const std::string& path, std::string* out, CgroupError* error) {
  out->clear();
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Fail(error, "cannot open " + path, path, errno);
  bool ok = vc::ReadFdBounded(fd, 16u << 20, out);  // cgroup and mountinfo files
  int err = errno;
  ::close(fd);
  return ok || Fail(error, "cannot read " + path, path, err);
}

// One write(2) of the whole value: cgroup files take a value per write.
bool WriteText(const std::string& path, const std::string& value, CgroupError* error) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return Fail(error, "cannot open " + path + " for writing", path, errno);
  ssize_t n;
  do {
    n = ::write(fd, value.data(), value.size());
  } while (n < 0 && errno == EINTR);
  int err = n < 0 ? errno : 0;
  ::close(fd);
  if (n < 0) return Fail(error, "cannot write \"" + value + "\" to " + path, path, err);
  if (size_t(n) != value.size()) return Fail(error, "short write of \"" + value + "\" to " + path, path, EIO);
  return true;
}

bool Exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

std::vector<std::string> Words(const std::string& text, const char* separators) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < text.size()) {
    size_t end = text.find_first_of(separators, at);
    if (end == std::string::npos) end = text.size();
    if (end > at) out.push_back(text.substr(at, end - at));
    at = end + 1;
  }
  return out;
}

bool Has(const std::vector<std::string>& words, const std::string& w) {
  return std::find(words.begin(), words.end(), w) != words.end();
}

std::string Join(const std::vector<std::string>& words, const char* sep) {
  std::string out;
  for (const auto& w : words) out += (out.empty() ? "" : sep) + w;
  return out;
}

uint64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

void SleepMs(int ms) {
  timespec ts{0, long(ms) * 1000000L};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
  }
}

// /proc/self/mountinfo escapes space, tab, newline and backslash as \ooo.
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); i++) {
    auto octal = [&](size_t j) { return j < s.size() && s[j] >= '0' && s[j] <= '7'; };
    if (s[i] == '\\' && octal(i + 1) && octal(i + 2) && octal(i + 3)) {
      out += char((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

struct Mount {
  std::string root;        // the directory of the filesystem that is mounted (field 4)
  std::string point;       // where (field 5)
  std::string fstype;
  std::vector<std::string> super_options;
};

// id parent major:minor root point options [optional fields...] - fstype source super-options
std::vector<Mount> ParseMountinfo(const std::string& text) {
  std::vector<Mount> mounts;
  for (const std::string& line : Words(text, "\n")) {
    std::vector<std::string> f = Words(line, " ");
    auto dash = std::find(f.begin(), f.end(), "-");
    if (f.size() < 6 || dash == f.end() || dash - f.begin() < 6 || f.end() - dash < 4) continue;
    Mount m;
    m.root = Unescape(f[3]);
    m.point = Unescape(f[4]);
    m.fstype = *(dash + 1);
    m.super_options = Words(*(dash + 3), ",");
    mounts.push_back(std::move(m));
  }
  return mounts;
}

std::string WritableProblem(const std::string& dir) {
  if (::access(dir.c_str(), W_OK) == 0) return "";
  return dir + " is not writable: " + std::strerror(errno);
}

// Makes cpu, memory and pids available to the children of dir (cgroup v2).
bool EnableControllers(const std::string& dir, CgroupError* error) {
  std::string enabled;
  if (!ReadText(dir + "/cgroup.subtree_control", &enabled, error)) return false;
  std::vector<std::string> on = Words(enabled, " \n");
  for (const char* c : kControllers) {
    if (Has(on, c)) continue;
    if (!WriteText(dir + "/cgroup.subtree_control", std::string("+") + c, error)) return false;
  }
  return true;
}

// mkdir that treats an existing directory as success when exist_ok.
bool MakeDir(const std::string& dir, bool exist_ok, bool* created, CgroupError* error) {
  *created = false;
  if (::mkdir(dir.c_str(), 0755) == 0) {
    *created = true;
    return true;
  }
  if (errno == EEXIST && exist_ok) return true;
  if (errno == EEXIST) return Fail(error, "cgroup " + dir + " already exists (remove it first)", dir, EEXIST);
  return Fail(error, "cannot create cgroup " + dir, dir, errno);
}

std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

bool ValidLimits(const CgroupLimits& l, int64_t* quota, CgroupError* error) {
  if (!(l.cpus > 0) || !std::isfinite(l.cpus) || l.cpus > 4096)
    return Fail(error, "cpus must be a number in (0, 4096], not " + Num(l.cpus), "", 0);
  *quota = std::llround(l.cpus * double(kCpuPeriodUs));
  if (*quota < kCpuMinQuotaUs)
    return Fail(error, "cpus " + Num(l.cpus) + " gives a CFS quota of " + std::to_string(*quota) +
                           " us per " + std::to_string(kCpuPeriodUs) + " us, below the kernel's minimum of " +
                           std::to_string(kCpuMinQuotaUs) + " us", "", 0);
  if (l.memory_bytes < (1u << 20))
    return Fail(error, "memoryBytes must be at least 1 MiB, not " + std::to_string(l.memory_bytes), "", 0);
  if (l.pids_max < 1) return Fail(error, "pidsMax must be at least 1, not " + std::to_string(l.pids_max), "", 0);
  return true;
}

bool CreateV2(const CgroupSupport& s, const std::string& name, const CgroupLimits& l, int64_t quota,
              std::vector<std::string>* paths, CgroupError* error) {
  const std::string parent = s.v2_root + "/" + kParent;
  bool created = false;
  if (!EnableControllers(s.v2_root, error)) return false;
  if (!MakeDir(parent, true, &created, error)) return false;
  if (!EnableControllers(parent, error)) return false;
  const std::string dir = parent + "/" + name;
  if (!MakeDir(dir, false, &created, error)) return false;
  bool ok = WriteText(dir + "/cpu.max", std::to_string(quota) + " " + std::to_string(kCpuPeriodUs), error) &&
            WriteText(dir + "/memory.max", std::to_string(l.memory_bytes), error) &&
            (!Exists(dir + "/memory.swap.max") || WriteText(dir + "/memory.swap.max", "0", error)) &&
            WriteText(dir + "/pids.max", std::to_string(l.pids_max), error);
  if (!ok) {
    ::rmdir(dir.c_str());
    return false;
  }
  paths->push_back(dir);
  return true;
}

// A v1 hierarchy with cpuset co-mounted (with cpu or memory) starts a new group with empty
// cpuset.cpus/mems, which nothing can join: give it its parent's.
bool InheritCpuset(const std::string& dir, CgroupError* error) {
  const std::string parent = dir.substr(0, dir.rfind('/'));
  for (const char* file : {"cpuset.cpus", "cpuset.mems"}) {
    std::string mine, theirs;
    if (!Exists(dir + "/" + file)) continue;
    if (!ReadText(dir + "/" + file, &mine, error)) return false;
    if (!Words(mine, " \n").empty()) continue;
    if (!ReadText(parent + "/" + file, &theirs, error)) return false;
    const std::vector<std::string> value = Words(theirs, " \n");
    if (!value.empty() && !WriteText(dir + "/" + file, value.front(), error)) return false;
  }
  return true;
}

bool CreateV1(const CgroupSupport& s, const std::string& name, const CgroupLimits& l, int64_t quota,
              std::vector<std::string>* paths, CgroupError* error) {
  // Co-mounted controllers share one directory.
  std::vector<std::string> mounts;
  for (const std::string* m : {&s.v1_cpu, &s.v1_memory, &s.v1_pids})
    if (!Has(mounts, *m)) mounts.push_back(*m);
  std::vector<std::string> made;
  auto undo = [&made]() {
    for (auto it = made.rbegin(); it != made.rend(); ++it) ::rmdir(it->c_str());
    return false;
  };
  for (const std::string& mount : mounts) {
    bool created = false;
    if (!MakeDir(mount + "/" + kParent, true, &created, error)) return undo();
    if (!InheritCpuset(mount + "/" + kParent, error)) return undo();
    const std::string dir = mount + "/" + kParent + "/" + name;
    if (!MakeDir(dir, false, &created, error)) return undo();
    made.push_back(dir);
    if (!InheritCpuset(dir, error)) return undo();
  }
  const std::string cpu = s.v1_cpu + "/" + kParent + "/" + name;
  const std::string memory = s.v1_memory + "/" + kParent + "/" + name;
  const std::string pids = s.v1_pids + "/" + kParent + "/" + name;
  bool ok = WriteText(cpu + "/cpu.cfs_period_us", std::to_string(kCpuPeriodUs), error) &&
            WriteText(cpu + "/cpu.cfs_quota_us", std::to_string(quota), error) &&
            WriteText(memory + "/memory.limit_in_bytes", std::to_string(l.memory_bytes), error) &&
            // With swap accounting, memory+swap gets the same limit: no swap beyond it.
            (!Exists(memory + "/memory.memsw.limit_in_bytes") ||
             WriteText(memory + "/memory.memsw.limit_in_bytes", std::to_string(l.memory_bytes), error)) &&
            WriteText(pids + "/pids.max", std::to_string(l.pids_max), error);
  if (!ok) return undo();
  *paths = made;
  return true;
}

// <something>/virtcontainers/<valid name>, absolute, with no empty, "." or ".." component.
bool PlausibleGroupPath(const std::string& path, std::string* why) {
  if (path.empty() || path[0] != '/' || path.back() == '/') {
    *why = "not an absolute path to a directory";
    return false;
  }
  std::vector<std::string> parts;
  size_t at = 1;
  while (at <= path.size()) {
    size_t end = path.find('/', at);
    if (end == std::string::npos) end = path.size();
    std::string part = path.substr(at, end - at);
    if (part.empty() || part == "." || part == "..") {
      *why = "has an empty, \".\" or \"..\" component";
      return false;
    }
    parts.push_back(part);
    at = end + 1;
  }
  if (parts.size() < 2 || parts[parts.size() - 2] != kParent) {
    *why = std::string("is not a ") + kParent + "/<name> group";
    return false;
  }
  return ValidCgroupName(parts.back(), why);
}

bool ReadPids(const std::string& dir, std::set<pid_t>* out, bool* gone, CgroupError* error) {
  std::string text;
  *gone = false;
  CgroupError e;
  if (!ReadText(dir + "/cgroup.procs", &text, &e)) {
    if (e.err == ENOENT || e.err == ENODEV) {
      *gone = true;
      return true;
    }
    if (error) *error = e;
    return false;
  }
  for (const std::string& w : Words(text, "\n")) out->insert(pid_t(std::strtol(w.c_str(), nullptr, 10)));
  return true;
}

int PidfdOpen(pid_t pid) {
#ifdef SYS_pidfd_open
  return int(::syscall(SYS_pidfd_open, pid, 0));
#else
  errno = ENOSYS;
  return -1;
#endif
}

int PidfdKill(int pidfd) {
#ifdef SYS_pidfd_send_signal
  return int(::syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0));
#else
  (void)pidfd;
  errno = ENOSYS;
  return -1;
#endif
}

// SIGKILL to each pid that is (still) in one of the groups. A pid read from cgroup.procs may exit
// and be reused before the signal: each is pinned with a pidfd first and signalled only if the
// groups still list it afterwards (a process that entered the group meanwhile is killed too, as
// it should be). Without pidfds (kernel < 5.3) plain kill().
void KillListed(const std::vector<std::string>& dirs, const std::set<pid_t>& listed) {
  std::vector<std::pair<pid_t, int>> pinned;
  for (pid_t pid : listed) {
    if (pid <= 0) continue;
    int fd = PidfdOpen(pid);
    if (fd < 0 && errno == ENOSYS) {
      ::kill(pid, SIGKILL);
      continue;
    }
    if (fd >= 0) pinned.emplace_back(pid, fd);
  }
  if (pinned.empty()) return;
  std::set<pid_t> still;
  bool gone;
  for (const std::string& d : dirs) ReadPids(d, &still, &gone, nullptr);
  for (auto& [pid, fd] : pinned) {
    if (still.count(pid) && PidfdKill(fd) < 0 && errno == ENOSYS) ::kill(pid, SIGKILL);
    ::close(fd);
  }
}

std::string PidList(const std::set<pid_t>& pids) {
  std::string out;
  for (pid_t p : pids) out += (out.empty() ? "" : " ") + std::to_string(p);
  return out;
}

}  // namespace

bool ValidCgroupName(const std::string& name, std::string* why) {
  if (name.empty() || name.size() > 63) {
    *why = "must be 1 to 63 characters, not " + std::to_string(name.size());
    return false;
  }
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == '-';
    if (!ok) {
      *why = "may contain only letters, digits, _ . -";
      return false;
    }
  }
  if (name == "." || name.find("..") != std::string::npos) {
    *why = "must not be \".\" or contain \"..\"";
    return false;
  }
  return true;
}

CgroupSupport DetectCgroups() {
  CgroupSupport s;
  std::string text;
  CgroupError e;
  if (!ReadText("/proc/self/mountinfo", &text, &e)) {
    s.reason = e.message;
    return s;
  }
  std::vector<Mount> mounts = ParseMountinfo(text);

  // cgroup v2: the usual places first, then any other cgroup2 mount.
  std::vector<const Mount*> v2;
  for (const char* usual : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"})
    for (const Mount& m : mounts)
      if (m.fstype == "cgroup2" && m.point == usual) v2.push_back(&m);
  for (const Mount& m : mounts)
    if (m.fstype == "cgroup2" && std::find(v2.begin(), v2.end(), &m) == v2.end()) v2.push_back(&m);
  std::vector<std::string> v2_notes;
  for (const Mount* m : v2) {
    std::string controllers;
    CgroupError re;
    if (!ReadText(m->point + "/cgroup.controllers", &controllers, &re)) {
      v2_notes.push_back("cgroup2 at " + m->point + ": " + re.message);
      continue;
    }
    std::vector<std::string> have = Words(controllers, " \n"), missing;
    for (const char* c : kControllers)
      if (!Has(have, c)) missing.push_back(c);
    if (!missing.empty()) {
      v2_notes.push_back("cgroup2 at " + m->point + " offers \"" + Join(have, " ") + "\", without " + Join(missing, ", "));
      continue;
    }
    std::string problem = WritableProblem(m->point);
    if (!problem.empty()) {
      v2_notes.push_back("cgroup2 at " + problem);
      continue;
    }
    s.version = 2;
    s.v2_root = m->point;
    return s;
  }
  if (v2.empty()) v2_notes.push_back("no cgroup2 filesystem is mounted");

  // cgroup v1: a hierarchy per controller (possibly co-mounted); prefer a mount of its root.
  std::string* slot[] = {&s.v1_cpu, &s.v1_memory, &s.v1_pids};
  bool at_root[] = {false, false, false};
  for (const Mount& m : mounts) {
    if (m.fstype != "cgroup") continue;
    for (int i = 0; i < 3; i++) {
      if (!Has(m.super_options, kControllers[i])) continue;
      if (slot[i]->empty() || (!at_root[i] && m.root == "/")) {
        *slot[i] = m.point;
        at_root[i] = m.root == "/";
      }
    }
  }
  std::vector<std::string> v1_notes, missing;
  for (int i = 0; i < 3; i++)
    if (slot[i]->empty()) missing.push_back(kControllers[i]);
  if (!missing.empty()) v1_notes.push_back("cgroup v1 has no hierarchy for " + Join(missing, ", "));
  for (int i = 0; i < 3 && missing.empty(); i++) {
    std::string problem = WritableProblem(*slot[i]);
    if (!problem.empty()) v1_notes.push_back("cgroup v1 " + std::string(kControllers[i]) + " hierarchy " + problem);
  }
  if (v1_notes.empty()) {
    s.version = 1;
    s.why_not_v2 = Join(v2_notes, "; ");
    return s;
  }
  s.v1_cpu.clear();
  s.v1_memory.clear();
  s.v1_pids.clear();
  std::vector<std::string> all = v2_notes;
  all.insert(all.end(), v1_notes.begin(), v1_notes.end());
  s.reason = "no cgroup hierarchy with the cpu, memory and pids controllers: " + Join(all, "; ");
  return s;
}

bool CgroupCreate(const std::string& name, const CgroupLimits& limits, int* version,
                  std::vector<std::string>* paths, CgroupError* error) {
  paths->clear();
  std::string why;
  if (!ValidCgroupName(name, &why)) return Fail(error, "cgroup name \"" + name + "\" " + why, "", 0);
  int64_t quota = 0;
  if (!ValidLimits(limits, &quota, error)) return false;
  CgroupSupport s = DetectCgroups();
  *version = s.version;
  if (s.version == 2) return CreateV2(s, name, limits, quota, paths, error);
  if (s.version == 1) return CreateV1(s, name, limits, quota, paths, error);
  return Fail(error, s.reason, "", 0);
}

bool CgroupJoin(const std::string& dir, pid_t pid, CgroupError* error) {
  return WriteText(dir + "/cgroup.procs", std::to_string(pid > 0 ? pid : ::getpid()), error);
}

bool CgroupPids(const std::vector<std::string>& paths, std::vector<pid_t>* pids, CgroupError* error) {
  std::set<pid_t> all;
  for (const std::string& dir : paths) {
    std::string text;
    if (!ReadText(dir + "/cgroup.procs", &text, error)) return false;
    for (const std::string& w : Words(text, "\n")) all.insert(pid_t(std::strtol(w.c_str(), nullptr, 10)));
  }
  pids->assign(all.begin(), all.end());
  return true;
}

bool CgroupRemove(const std::vector<std::string>& paths, int timeout_ms, CgroupError* error) {
  const uint64_t deadline = NowMs() + uint64_t(timeout_ms > 0 ? timeout_ms : 0);
  std::vector<std::string> live;
  for (const std::string& dir : paths) {
    std::string why;
    if (!PlausibleGroupPath(dir, &why)) return Fail(error, "refusing to remove " + dir + ": " + why, dir, 0);
    struct stat st;
    if (::lstat(dir.c_str(), &st) < 0) {
      if (errno == ENOENT) continue;  // already gone
      return Fail(error, "cannot stat " + dir, dir, errno);
    }
    struct statfs fs;
    if (::statfs(dir.c_str(), &fs) < 0) return Fail(error, "cannot statfs " + dir, dir, errno);
    if (!S_ISDIR(st.st_mode) || (fs.f_type != CGROUP_SUPER_MAGIC && fs.f_type != CGROUP2_SUPER_MAGIC))
      return Fail(error, "refusing to remove " + dir + ": not a cgroup directory", dir, 0);
    live.push_back(dir);
  }
  // cgroup v2 (5.14+) kills the whole group at once; otherwise (and as a backstop) signal each pid.
  for (const std::string& dir : live)
    if (Exists(dir + "/cgroup.kill")) WriteText(dir + "/cgroup.kill", "1", nullptr);
  while (true) {
    std::set<pid_t> listed;
    for (const std::string& dir : live) {
      bool gone;
      if (!ReadPids(dir, &listed, &gone, error)) return false;
    }
    if (listed.empty()) break;
    if (NowMs() >= deadline)
      return Fail(error, "cgroup " + Join(live, ", ") + " still has processes " + PidList(listed) + " after " +
                             std::to_string(timeout_ms) + " ms of SIGKILL", live.front(), 0);
    KillListed(live, listed);
    SleepMs(5);
  }
  // A killed process can keep its group busy for a moment after it left cgroup.procs.
  for (const std::string& dir : live) {
    while (::rmdir(dir.c_str()) < 0) {
      if (errno == ENOENT) break;
      if (errno != EBUSY || NowMs() >= deadline) return Fail(error, "cannot remove cgroup " + dir, dir, errno);
      SleepMs(5);
    }
  }
  return true;
}

}  // namespace host
}  // namespace vc
