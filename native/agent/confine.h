// Confinement of container processes (docs/agent-protocol.md, "Confinement"): what an OCI config
// asks beyond namespaces, root and user — capabilities, no_new_privs, a seccomp filter, rlimits,
// oom_score_adj and extra groups for every process; sysctls, extra mounts, masked and read-only
// paths for the container as its init sets it up. The functions here run in the forked child.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "oci_mounts.h"
#include "users.h"

struct CapSets {  // bit n = capability n
  uint64_t bounding = 0, effective = 0, permitted = 0, inheritable = 0, ambient = 0;
};

struct Rlimit {
  int resource = 0;
  uint64_t soft = 0, hard = 0;  // RLIM_INFINITY for "no limit"
};

struct Confinement {
  // Absent: what setuid leaves (every capability for root, none otherwise), as before.
  bool has_caps = false;
  CapSets caps;
  bool no_new_privs = false;
  std::string seccomp;  // a classic BPF program (struct sock_filter[]); "" = no filter
  std::vector<Rlimit> rlimits;
  bool has_oom_score_adj = false;
  int oom_score_adj = 0;
  std::vector<gid_t> additional_gids;  // after the groups derived from /etc/group
  // The container's, set up by its init only.
  std::vector<OciMount> mounts;
  std::vector<std::pair<std::string, std::string>> sysctls;  // dotted name, value
  std::vector<std::string> masked_paths, readonly_paths;
};

// exec_container: what replaces the container's confinement for one process; absent pieces keep
// the container's.
struct ConfineOverrides {
  bool caps = false, no_new_privs = false, seccomp = false, rlimits = false, gids = false;
  Confinement values;
};
void confine_override(const ConfineOverrides& o, Confinement* conf);

// The first step of every container child, while the agent's /proc is still what /proc is:
// oom_score_adj. false with errno set and step[] naming what failed (also for those below).
bool confine_early(const Confinement& conf, char* step, size_t step_len);

// The init, after pivot_root and sethostname: mounts, then sysctls (while /proc/sys is
// writable), then masked and read-only paths.
bool confine_root(const Confinement& conf, char* step, size_t step_len);

// Just before chdir and execve, as root still: rlimits, the bounding set, the seccomp filter (here
// only without no_new_privs: installing it then needs CAP_SYS_ADMIN), groups (plus
// additional_gids), gid and uid (capabilities kept across it), capset, ambient capabilities.
bool confine_credentials(const Confinement& conf, const Credentials& cred, char* step,
                         size_t step_len);

// After chdir, right before execve: no_new_privs, then the seccomp filter when it is set.
bool confine_last(const Confinement& conf, char* step, size_t step_len);
