// The argument checks of the process ops (docs/agent-protocol.md, "Requests": exec, signal,
// resize), apart from the ops in requests.cc so the request fuzzer (native/agent/fuzz) reaches
// them without starting, signalling or resizing anything. Each returns false with the BAD_REQUEST
// reason in args ("field: why").
#pragma once

#include <cstdint>

#include "spawn.h"

class Args;

struct SignalRequest {
  uint32_t process = 0;  // >= 1
  int signal = 0;        // 0 (a probe) to SIGRTMAX
};

struct ResizeRequest {
  uint32_t process = 0;  // >= 1
  unsigned short rows = 0, cols = 0;
};

// exec: argv (non-empty), env ("K=V"), cwd (non-empty; default "/"), tty, rows and cols (a
// size only for a tty).
bool exec_args(Args& args, ExecSpec* spec);
bool signal_args(Args& args, SignalRequest* out);
bool resize_args(Args& args, ResizeRequest* out);
