// Port forwarding without a network (docs/agent-protocol.md, "Port forwarding"): the `forward` op
// connects to a TCP port in the guest (default 127.0.0.1, the loopback every container shares) and
// registers the socket as a process-like stream (process.h): STDIN frames go to the socket,
// what it sends comes back as STDOUT frames, and EXIT says how the connection ended.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "reply.h"

struct Agent;
struct Connection;

// How long a connect may take before `forward` answers FORWARD_FAILED.
constexpr int kForwardConnectTimeoutMs = 15000;

// A `forward` whose non-blocking connect is still under way; answered by forwards_service().
struct PendingForward {
  int fd = -1;
  ReplyTo reply{0, 0};
  int64_t deadline_ms = 0;
  std::string target;  // "127.0.0.1:8080" / "[::1]:8080", for messages
  bool done = false;   // the socket said something (POLLOUT/POLLERR): look at SO_ERROR
};

extern const std::vector<Op> kForwardOps;

// Once per loop iteration: answers the pending connects that completed, failed or timed out, and
// drops those whose connection is gone.
void forwards_service(Agent& a);
// ms until the next pending connect times out (-1: none pending).
int forwards_poll_timeout(const Agent& a);
// The loop saw POLLOUT/POLLERR/POLLHUP on a pending connect's socket.
void forward_connect_ready(Agent& a, int fd);
// Closes every pending connect (the agent is stopping).
void forwards_cleanup(Agent& a);
