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
struct Limits;

// BAD_REQUEST with the reason args recorded.
Reply bad_request(const Args& args);
// CONTAINER_FAILED: `container "<id>": why`.
Reply container_failed(const Container& ctr, const std::string& why);
// The container named by the `id` argument; nullptr with *fail set (BAD_REQUEST or NOT_FOUND).
Container* container_arg(Agent& a, Args& args, Reply* fail);

// update_container's `limits` (memoryBytes, pids, cpuQuotaUs: an integer in range or "max";
// cpuPeriodUs: an integer), those not given left at -1: false with the BAD_REQUEST reason in
// args. Apart for the request fuzzer (native/agent/fuzz); op_update checks the id first.
bool update_limits_args(Args& args, Limits* limits);

// The dispatcher's entries for them (requests.cc).
extern const std::vector<Op> kContainerMoreOps;
