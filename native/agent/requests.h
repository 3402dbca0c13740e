// Dispatch of frames from the host: REQUEST ops (docs/agent-protocol.md, "Requests") and STDIN.
// Each op returns its Reply (reply.h) and the dispatcher sends it.
#pragma once

#include "protocol.h"

struct Agent;
struct Connection;

void handle_frame(Agent& a, Connection& c, const proto::Frame& frame);
