// The container ops of the agent protocol (docs/agent-protocol.md, "Containers"): argument
// checking; the work is in container.cc.
#pragma once

#include <cstdint>

#include "common/json.h"

struct Agent;
struct Connection;

void op_create_container(Agent& a, Connection& c, uint32_t id, const json::Value& req);
void op_start_container(Agent& a, Connection& c, uint32_t id, const json::Value& req);
void op_container_status(Agent& a, Connection& c, uint32_t id, const json::Value& req);
void op_wait_container(Agent& a, Connection& c, uint32_t id, const json::Value& req);
void op_signal_container(Agent& a, Connection& c, uint32_t id, const json::Value& req);
void op_exec_container(Agent& a, Connection& c, uint32_t id, const json::Value& req);
void op_delete_container(Agent& a, Connection& c, uint32_t id, const json::Value& req);
void op_list_containers(Agent& a, Connection& c, uint32_t id, const json::Value& req);
