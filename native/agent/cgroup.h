// cgroup v2 for containers: <root>/vc/<id> with memory, pids and cpu limits, OOM reporting, and
// killing or signalling everything in it. root is /sys/fs/cgroup in the VM, the --cgroup-root
// directory in the host test mode.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <sys/types.h>

// A limit value meaning "max" (none), for cgroup_update.
constexpr int64_t kLimitNone = INT64_MAX;

struct Limits {
  int64_t memory_bytes = -1;  // -1 = not set
  int64_t pids = -1;
  int64_t cpu_quota_us = -1;
  int64_t cpu_period_us = -1;
};

// Creates <root>/vc/<id> (enabling +memory +pids +cpu for it where the kernel offers them) and
// applies limits; memory.oom.group=1 so an OOM kill takes the whole container. false with
// *error = "step: errno text"; nothing is left behind then.
bool cgroup_create(const std::string& root, const std::string& id, const Limits& limits,
                   std::string* path, std::string* error);
// A directory fd for clone3(CLONE_INTO_CGROUP); -1 with errno on failure.
int cgroup_open(const std::string& path);
// Whether memory.events counts an OOM kill.
bool cgroup_oom_killed(const std::string& path);
// Whether any process is still in it (cgroup.events "populated").
bool cgroup_populated(const std::string& path);
// SIGKILL to every process in it (cgroup.kill, falling back to cgroup.procs).
void cgroup_kill(const std::string& path);
// sig to every process listed in cgroup.procs; false with errno if the list cannot be read.
bool cgroup_signal(const std::string& path, int sig);
// rmdir; false with errno (EBUSY while processes remain).
bool cgroup_remove(const std::string& path);
// Changes the limits that are set (>= 0; kLimitNone writes "max") of a live cgroup, in the order
// memory, pids, cpu; a cpu.max half not given keeps its current value. false with *error =
// "cgroup: file = value: errno text" at the first that fails (those before it stay changed).
bool cgroup_update(const std::string& path, const Limits& limits, std::string* error);
// Writes cgroup.freeze and waits up to timeout_ms until cgroup.events says "frozen" is `frozen`.
// false with *error naming the step or the timeout.
bool cgroup_freeze(const std::string& path, bool frozen, int timeout_ms, std::string* error);
// Every pid in cgroup.procs of path and of its descendant cgroups, ascending. false with errno
// if path's own list cannot be read.
bool cgroup_pids(const std::string& path, std::vector<pid_t>* pids);
// Removes <root>/vc if empty, and root itself if created_root (test mode cleanup).
void cgroup_remove_root(const std::string& root, bool created_root);
