// The bind ops (docs/agent-protocol.md, "Binds"): put_file writes into a bind's staging area,
// get_file and list_bind read it back, remove_file takes an entry out.
#pragma once

#include <vector>

#include "reply.h"

// The dispatcher's entries for them (requests.cc).
extern const std::vector<Op> kBindOps;
