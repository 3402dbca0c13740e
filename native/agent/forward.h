// Port forwarding without a network (docs/agent-protocol.md, "Port forwarding"): the `forward` op
// connects to a TCP port in the guest (default 127.0.0.1, the loopback every container shares) and
// registers the socket as a process-like stream (process.h): STDIN frames go to the socket,
// what it sends comes back as STDOUT frames, and EXIT says how the connection ended.
#pragma once

#include <sys/socket.h>

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

// Where a forward connects: an IPv4 or IPv6 literal and a port.
struct ForwardTarget {
  sockaddr_storage addr{};  // sockaddr_in or sockaddr_in6, port set
  socklen_t len = 0;        // of that one
  std::string target;       // "127.0.0.1:8080" / "[::1]:8080", for messages
};

class Args;
// forward's arguments: port (1 to 65535) and host (default 127.0.0.1): false with the
// BAD_REQUEST reason in args. Apart for the request fuzzer (native/agent/fuzz): it connects
// nothing.
bool forward_args(Args& args, ForwardTarget* out);

// Once per loop iteration: answers the pending connects that completed, failed or timed out, and
// drops those whose connection is gone.
void forwards_service(Agent& a);
// ms until the next pending connect times out (-1: none pending).
int forwards_poll_timeout(const Agent& a);
// The loop saw POLLOUT/POLLERR/POLLHUP on a pending connect's socket.
void forward_connect_ready(Agent& a, int fd);
// Closes every pending connect (the agent is stopping).
void forwards_cleanup(Agent& a);
