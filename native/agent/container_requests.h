// The container ops of the agent protocol (docs/agent-protocol.md, "Containers"): argument
// checking; the work is in container.cc.
#pragma once

#include <string>
#include <vector>

#include "confine_requests.h"
#include "reply.h"
#include "spawn.h"

// The dispatcher's entries for them (requests.cc).
extern const std::vector<Op> kContainerOps;

class Args;
struct CreateSpec;
// create_container's argument checks, all of them (op_create then does the work); false with the
// BAD_REQUEST reason in args. test_mode: the agent serves --serve-unix (image.path allowed).
// Apart so the request fuzzer (native/agent/fuzz) reaches them without creating anything.
bool create_container_args(Args& args, bool test_mode, CreateSpec* spec);

struct SignalContainerRequest {
  std::string id;
  int signal = 0;    // 0 (a probe) to SIGRTMAX
  bool all = false;  // every process in the container, not just its init
};

struct ExecContainerRequest {
  std::string id;
  ExecSpec spec;         // cwd absolute
  bool has_cwd = false;  // else the image's working directory
  std::string user;      // "" = the container's user; else not empty
  ConfineOverrides confine;
};

// signal_container's and exec_container's argument checks (the ops then act), apart for the
// request fuzzer like create_container_args; false with the BAD_REQUEST reason in args.
bool signal_container_args(Args& args, SignalContainerRequest* out);
bool exec_container_args(Args& args, ExecContainerRequest* out);

// A container id argument (^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$), for the ops of container_ops.cc.
bool container_name_arg(Args& args, const char* name, std::string* out);
