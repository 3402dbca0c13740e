// Dispatch of frames from the host: REQUEST ops (docs/agent-protocol.md, "Requests") and STDIN.
#pragma once

#include <cstdint>
#include <string>

#include "common/json.h"
#include "protocol.h"

struct Agent;
struct Connection;

void handle_frame(Agent& a, Connection& c, const proto::Frame& frame);

void respond_ok(Connection& c, uint32_t id, const json::Value& result);
void respond_error(Connection& c, uint32_t id, const char* code, const std::string& message);
