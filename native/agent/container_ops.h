// The container ops beyond the lifecycle (docs/agent-protocol.md, "Pause, stats, limits,
// processes" and "Binds"): pause_container, resume_container (the cgroup v2 freezer),
// container_stats, update_container, container_pids, put_file, get_file and list_bind.
#pragma once

#include <vector>

#include "reply.h"

// The dispatcher's entries for them (requests.cc).
extern const std::vector<Op> kContainerMoreOps;
