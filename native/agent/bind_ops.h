// The bind ops (docs/agent-protocol.md, "Binds"): put_file writes into a bind's staging area,
// get_file and list_bind read it back, remove_file takes an entry out.
#pragma once

#include <vector>

#include "reply.h"

// The dispatcher's entries for them (requests.cc).
extern const std::vector<Op> kBindOps;

class Args;
enum class BindKind;
struct PutRequest;
// put_file's arguments other than id and bind, for a bind of kind bind_kind: false with the
// BAD_REQUEST reason in args. Apart for the request fuzzer (native/agent/fuzz).
bool put_file_args(Args& args, BindKind bind_kind, PutRequest* p);
