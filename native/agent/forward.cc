#include "forward.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "agent.h"
#include "args.h"
#include "process.h"

namespace {

// The answer to a connected forward: the socket becomes a process-like stream of conn.
Reply connected(Agent& a, Connection& conn, int fd) {
  Process* p = process_adopt_socket(a, conn, fd);
  json::Value r = json::Value::object();
  r.set("process", json::Value::number(p->id));
  return Reply::ok(std::move(r));
}

Reply connect_failed(const std::string& target, int err) {
  return Reply::error("FORWARD_FAILED", "connect to " + target + ": " + strerror(err));
}

// "host" as a socket address with `port`; false if it is not an IPv4 or IPv6 literal.
bool parse_address(const std::string& host, uint16_t port, ForwardTarget* out) {
  out->addr = {};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out->addr);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    out->len = sizeof *v4;
    out->target = host + ":" + std::to_string(port);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out->addr);
  if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    out->len = sizeof *v6;
    out->target = "[" + host + "]:" + std::to_string(port);
    return true;
  }
  return false;
}

Reply op_forward(Agent& a, Connection& c, uint32_t request, const json::Value& req) {
  Args args(req);
  ForwardTarget t;
  if (!forward_args(args, &t)) return Reply::error("BAD_REQUEST", args.error());
  int fd = socket(t.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Reply::error("INTERNAL", std::string("forward: socket: ") + strerror(errno));
  int r;
  do {
    r = connect(fd, reinterpret_cast<const sockaddr*>(&t.addr), t.len);
  } while (r < 0 && errno == EINTR);
  if (r == 0) return connected(a, c, fd);
  if (errno != EINPROGRESS) {
    int err = errno;
    close(fd);
    return connect_failed(t.target, err);
  }
  PendingForward pending;
  pending.fd = fd;
  pending.reply = ReplyTo{c.id, request};
  pending.deadline_ms = monotonic_ms() + kForwardConnectTimeoutMs;
  pending.target = t.target;
  a.forward_connects.push_back(std::move(pending));
  return Reply::deferred();
}

}  // namespace

bool forward_args(Args& args, ForwardTarget* out) {
  int64_t port = 0;
  std::string host = "127.0.0.1";
  if (!args.integer("port", true, 1, 65535, &port) || !args.string("host", &host)) return false;
  if (!parse_address(host, static_cast<uint16_t>(port), out)) {
    return args.fail("host", "expected an IPv4 or IPv6 address, got " + Args::got(*args.get("host")));
  }
  return true;
}

const std::vector<Op> kForwardOps = {
    {"forward", op_forward},
};

void forward_connect_ready(Agent& a, int fd) {
  for (PendingForward& f : a.forward_connects) {
    if (f.fd == fd) f.done = true;
  }
}

void forwards_service(Agent& a) {
  int64_t now = monotonic_ms();
  auto& list = a.forward_connects;
  for (size_t i = 0; i < list.size();) {
    PendingForward& f = list[i];
    Connection* c = conn_find(a, f.reply.conn);
    bool timed_out = !f.done && now >= f.deadline_ms;
    if (c && !f.done && !timed_out) {
      i++;
      continue;
    }
    if (!c) {
      close(f.fd);  // the host went away meanwhile: nobody wants the connection
    } else if (timed_out) {
      close(f.fd);
      reply_send(a, f.reply,
                 Reply::error("FORWARD_FAILED", "connect to " + f.target + ": timed out after " +
                                                    std::to_string(kForwardConnectTimeoutMs / 1000) + " s"));
    } else {
      int err = 0;
      socklen_t len = sizeof err;
      if (getsockopt(f.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      if (err == 0) {
        reply_send(a, f.reply, connected(a, *c, f.fd));
      } else {
        close(f.fd);
        reply_send(a, f.reply, connect_failed(f.target, err));
      }
    }
    list.erase(list.begin() + static_cast<std::ptrdiff_t>(i));
  }
}

int forwards_poll_timeout(const Agent& a) {
  if (a.forward_connects.empty()) return -1;
  int64_t now = monotonic_ms(), next = INT64_MAX;
  for (const PendingForward& f : a.forward_connects) next = f.deadline_ms < next ? f.deadline_ms : next;
  return next <= now ? 0 : static_cast<int>(next - now);
}

void forwards_cleanup(Agent& a) {
  for (PendingForward& f : a.forward_connects) close(f.fd);
  a.forward_connects.clear();
}
