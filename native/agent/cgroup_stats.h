// container_stats: a cgroup v2 directory's usage numbers as JSON (docs/agent-protocol.md,
// "Pause, stats, limits, processes"). Files the kernel does not offer there (a controller not
// enabled) read as null, {} or [].
#pragma once

#include <string>

#include "common/json.h"

// { cpu: {usageUsec, userUsec, systemUsec, nrPeriods, nrThrottled, throttledUsec},
//   memory: {usage, limit, swapUsage, stat: {..}, events: {..}}, pids: {current, limit},
//   io: [{major, minor, rbytes, wbytes, rios, wios}] }
json::Value cgroup_stats(const std::string& path);
