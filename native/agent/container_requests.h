// The container ops of the agent protocol (docs/agent-protocol.md, "Containers"): argument
// checking; the work is in container.cc.
#pragma once

#include <vector>

#include "reply.h"

// The dispatcher's entries for them (requests.cc).
extern const std::vector<Op> kContainerOps;
