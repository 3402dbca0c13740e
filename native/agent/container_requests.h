// The container ops of the agent protocol (docs/agent-protocol.md, "Containers"): argument
// checking; the work is in container.cc.
#pragma once

#include <string>
#include <vector>

#include "reply.h"

// The dispatcher's entries for them (requests.cc).
extern const std::vector<Op> kContainerOps;

class Args;
struct CreateSpec;
// create_container's argument checks, all of them (op_create then does the work); false with the
// BAD_REQUEST reason in args. test_mode: the agent serves --serve-unix (image.path allowed).
// Apart so the request fuzzer (native/agent/fuzz) reaches them without creating anything.
bool create_container_args(Args& args, bool test_mode, CreateSpec* spec);

// A container id argument (^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$), for the ops of container_ops.cc.
bool container_name_arg(Args& args, const char* name, std::string* out);
