// Host cgroups for the processes that hold VMs (one group per pod): find a usable hierarchy
// (cgroup v2 with cpu, memory and pids, else the three cgroup v1 hierarchies), create
// <root>/virtcontainers/<name> with CPU, memory and pids limits, join it, list its processes, and
// remove it (killing what is left). Shared by the addon and the vc-vmm executable; no Node, no
// exceptions, no threads of its own. Every error names the file or directory and the errno text.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace vc {
namespace host {

// What went wrong: a message naming the path and errno text, plus both on their own.
struct CgroupError {
  std::string message;
  std::string path;  // the file or directory, when one is to blame
  int err = 0;       // errno, when a system call failed
};

struct CgroupSupport {
  int version = 0;            // 2, 1, or 0 when neither can be used (reason says why)
  std::string reason;         // version 0: what is missing
  std::string v2_root;        // version 2: the cgroup2 mount point
  std::string v1_cpu, v1_memory, v1_pids;  // version 1: the mount point of each hierarchy
  std::string why_not_v2;     // version 1: why cgroup v2 was not used
};

// Reads /proc/self/mountinfo (and cgroup.controllers of each cgroup2 mount).
CgroupSupport DetectCgroups();

struct CgroupLimits {
  double cpus = 0;              // > 0: quota = cpus * kCpuPeriodUs per period
  uint64_t memory_bytes = 0;    // >= 1 MiB
  int64_t pids_max = 0;         // >= 1
};

constexpr int64_t kCpuPeriodUs = 100000;
constexpr int64_t kCpuMinQuotaUs = 1000;  // the kernel refuses a smaller CFS quota

// [a-zA-Z0-9_.-]{1,63}, not "." and no "..". false with *why when it is not.
bool ValidCgroupName(const std::string& name, std::string* why);

// Creates virtcontainers/<name> in the hierarchy DetectCgroups() finds and applies the limits.
// *paths: the group's directory (v2: one; v1: one per distinct cpu/memory/pids mount). Fails if
// the group already exists. A failure part-way removes the directories it made (never the shared
// virtcontainers parent).
bool CgroupCreate(const std::string& name, const CgroupLimits& limits, int* version,
                  std::vector<std::string>* paths, CgroupError* error);

// Moves process `pid` (0: the caller) into the group at `dir` (writes DIR/cgroup.procs).
bool CgroupJoin(const std::string& dir, pid_t pid, CgroupError* error);

// The processes in the groups (union over the paths, ascending).
bool CgroupPids(const std::vector<std::string>& paths, std::vector<pid_t>* pids, CgroupError* error);

// Kills every process in the groups (v2 cgroup.kill where present, else SIGKILL to each pid,
// repeated until empty), then removes the directories. A group that is already gone is fine.
// Refuses a path that is not <cgroup fs>/.../virtcontainers/<valid name>. Gives up after
// timeout_ms with an error naming what is still there.
bool CgroupRemove(const std::vector<std::string>& paths, int timeout_ms, CgroupError* error);

}  // namespace host
}  // namespace vc
