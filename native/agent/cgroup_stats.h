// container_stats: a cgroup v2 directory's usage numbers as JSON (docs/agent-protocol.md,
// "Pause, stats, limits, processes"). Files the kernel does not offer there (a controller not
// enabled) read as null, {} or [].
#pragma once

#include <optional>
#include <string>

#include "common/json.h"

// The texts of the cgroup files container_stats reads; nullopt where the file could not be read.
// The guest kernel writes them, but a container can be the one steering what is in some of them
// (memory.stat's keys come from the kernel; its numbers from the container's use).
struct CgroupStatFiles {
  std::optional<std::string> cpu_stat, memory_current, memory_max, memory_swap_current,
      memory_stat, memory_events, pids_current, pids_max, io_stat;
};

// The reply for those texts (the shape below); pure, for the request fuzzer (native/agent/fuzz).
json::Value cgroup_stats_parse(const CgroupStatFiles& files);

// { cpu: {usageUsec, userUsec, systemUsec, nrPeriods, nrThrottled, throttledUsec},
//   memory: {usage, limit, swapUsage, stat: {..}, events: {..}}, pids: {current, limit},
//   io: [{major, minor, rbytes, wbytes, rios, wios}] }
json::Value cgroup_stats(const std::string& path);
