// The confinement arguments of create_container and exec_container (docs/agent-protocol.md,
// "Confinement"), checked by name: BAD_REQUEST reasons name the field (security.caps.ambient,
// mounts[2].type, sysctls.vm.swappiness) and the value.
#pragma once

#include "args.h"
#include "confine.h"

// The number of RLIMIT_* resources the agent knows (0..15).
constexpr int kRlimitCount = 16;

// create_container: security, rlimits, sysctls, oomScoreAdj, additionalGids, mounts.
bool confine_create_args(Args& args, Confinement* out);

// exec_container: security (caps, noNewPrivileges, seccomp), rlimits, additionalGids,
// noNewPrivileges.
bool confine_exec_args(Args& args, ConfineOverrides* out);
