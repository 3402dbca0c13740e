// The answer to one request (docs/agent-protocol.md, "Responses") and how it is sent: the layer
// under the ops, containers and processes. A synchronous op returns a Reply that the dispatcher
// (requests.cc) sends; only an op that answers later (wait, wait_container, a create waiting for
// its image disk) keeps a ReplyTo and sends through it once it knows the answer.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "common/json.h"

struct Agent;
struct Connection;

struct Reply {
  enum class Kind { kOk, kError, kDeferred };
  Kind kind = Kind::kOk;
  json::Value result = json::Value::object();  // kOk
  std::string code;    // kError
  std::string message;
  // Runs once the reply has been sent (attach: the answer goes out before the output it releases).
  std::function<void()> after_sent;

  static Reply ok(json::Value result = json::Value::object());
  static Reply error(std::string code, std::string message);
  // The op kept a ReplyTo and answers later; the dispatcher sends nothing now.
  static Reply deferred();
};

// Where a deferred answer goes: the connection by id (it may be gone by then) and the request.
struct ReplyTo {
  uint64_t conn;
  uint32_t request;
};

// Sends `r` (kDeferred sends nothing), then runs its after_sent.
void reply_send(Connection& c, uint32_t request, const Reply& r);
// Sends `r` to `to` if that connection is still open.
void reply_send(Agent& a, const ReplyTo& to, const Reply& r);

// One op of the protocol: checks the request's arguments and returns its answer (the dispatcher
// sends it) or Reply::deferred(). `request` is the request id, for an op that keeps a ReplyTo.
struct Op {
  const char* name;
  Reply (*fn)(Agent& a, Connection& c, uint32_t request, const json::Value& req);
};
