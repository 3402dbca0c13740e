// Dispatch of frames from the host: REQUEST ops (docs/agent-protocol.md, "Requests") and STDIN.
// Each op returns its Reply (reply.h) and the dispatcher sends it.
#pragma once

#include "protocol.h"

struct Agent;
struct Connection;

void handle_frame(Agent& a, Connection& c, const proto::Frame& frame);
// A connection is gone: its processes detach (they keep running, output is kept for an attach)
// and its `wait`s are forgotten.
void requests_conn_gone(Agent& a, uint64_t conn);
