// The container ops beyond the lifecycle (docs/agent-protocol.md, "Pause, stats, limits,
// processes"): pause_container, resume_container (the cgroup v2 freezer), container_stats,
// update_container and container_pids; and what they share with the bind ops (bind_ops.h).
#pragma once

#include <string>
#include <vector>

#include "reply.h"

class Args;
struct Agent;
struct Container;

// BAD_REQUEST with the reason args recorded.
Reply bad_request(const Args& args);
// CONTAINER_FAILED: `container "<id>": why`.
Reply container_failed(const Container& ctr, const std::string& why);
// The container named by the `id` argument; nullptr with *fail set (BAD_REQUEST or NOT_FOUND).
Container* container_arg(Agent& a, Args& args, Reply* fail);

// The dispatcher's entries for them (requests.cc).
extern const std::vector<Op> kContainerMoreOps;
