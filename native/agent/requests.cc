#include "requests.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "agent.h"
#include "args.h"
#include "bind_ops.h"
#include "common/read_file.h"
#include "container_ops.h"
#include "container_requests.h"
#include "forward.h"
#include "log.h"
#include "network.h"
#include "process_requests.h"
#include "reply.h"
#include "restore.h"

// --- ops -------------------------------------------------------------------------------------

static Reply op_hello(Agent& a, Connection& c, uint32_t, const json::Value& req) {
  const json::Value* v = req.find("version");
  if (!v) return Reply::error("BAD_REQUEST", "version: missing");
  if (!v->is_number()) return Reply::error("BAD_REQUEST", "version: expected a number");
  if (v->as_number() != 1) {
    std::string got = json::serialize(*v);
    return Reply::error("VERSION_MISMATCH", "agent speaks protocol version 1, host asked for " + got);
  }
  c.hello = true;
  json::Value r = json::Value::object();
  r.set("version", json::Value::number(1));
  r.set("agent", json::Value::string(kAgentName));
  // Which copy of the VM this is (0: cold boot), and whether it still waits for `restored`.
  r.set("epoch", json::Value::number(a.restore.epoch));
  r.set("restorePending", json::Value::boolean(a.restore.pending));
  return Reply::ok(std::move(r));
}

// "MemTotal:  1234 kB" -> 1234; -1 if the field is missing.
static double meminfo_kib(const std::string& meminfo, const char* field) {
  std::string key = std::string("\n") + field + ":";
  std::string text = "\n" + meminfo;
  size_t at = text.find(key);
  if (at == std::string::npos) return -1;
  return std::strtod(text.c_str() + at + key.size(), nullptr);
}

static Reply op_guest_info(Agent& a, Connection&, uint32_t, const json::Value&) {
  utsname u{};
  std::string uptime, meminfo;
  if (uname(&u) != 0 || !vc::ReadFileBounded("/proc/uptime", 1u << 20, &uptime) ||
      !vc::ReadFileBounded("/proc/meminfo", 1u << 20, &meminfo)) {
    return Reply::error("INTERNAL", std::string("guest_info: ") + strerror(errno));
  }
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  json::Value r = json::Value::object();
  r.set("kernelRelease", json::Value::string(u.release));
  r.set("uptimeSec", json::Value::number(std::strtod(uptime.c_str(), nullptr)));
  r.set("memTotalKiB", json::Value::number(meminfo_kib(meminfo, "MemTotal")));
  r.set("memAvailableKiB", json::Value::number(meminfo_kib(meminfo, "MemAvailable")));
  r.set("cpus", json::Value::number(cpus > 0 ? static_cast<double>(cpus) : 1));
  r.set("agent", json::Value::string(kAgentName));
  r.set("epoch", json::Value::number(a.restore.epoch));
  return Reply::ok(std::move(r));
}

static Reply op_exec(Agent& a, Connection& c, uint32_t, const json::Value& req) {
  Args args(req);
  ExecSpec spec;
  if (!exec_args(args, &spec)) return Reply::error("BAD_REQUEST", args.error());
  Process* p = nullptr;
  std::string code, message;
  if (!process_spawn(a, c, spec, &p, &code, &message)) return Reply::error(code, message);
  json::Value r = json::Value::object();
  r.set("process", json::Value::number(p->id));
  r.set("pid", json::Value::number(p->pid));
  return Reply::ok(std::move(r));
}

// Process `pid`; else nullptr and *fail is NOT_FOUND.
static Process* find_process(Agent& a, uint32_t pid, Reply* fail) {
  Process* p = process_find(a, pid);
  if (!p) *fail = Reply::error("NOT_FOUND", "no process " + std::to_string(pid));
  return p;
}

// The process named by the "process" argument; else nullptr and *fail says why.
static Process* find_arg_process(Agent& a, Args& args, Reply* fail) {
  uint32_t pid = 0;
  if (!args.process_id(&pid)) {
    *fail = Reply::error("BAD_REQUEST", args.error());
    return nullptr;
  }
  return find_process(a, pid, fail);
}

static Reply op_attach(Agent& a, Connection& c, uint32_t, const json::Value& req) {
  Args args(req);
  Reply r = Reply::ok();
  Process* p = find_arg_process(a, args, &r);
  if (!p) return r;
  r.after_sent = [&a, p, &c]() { process_attach(a, *p, c); };  // after the answer: it releases output
  return r;
}

static Reply op_wait(Agent& a, Connection& c, uint32_t request, const json::Value& req) {
  Args args(req);
  Reply fail;
  Process* p = find_arg_process(a, args, &fail);
  if (!p) return fail;
  // Answered by process_service() once the process has exited and its output has been sent.
  a.waiters.push_back(Waiter{ReplyTo{c.id, request}, p->id});
  return Reply::deferred();
}

static Reply op_signal(Agent& a, Connection&, uint32_t, const json::Value& req) {
  Args args(req);
  SignalRequest r;
  if (!signal_args(args, &r)) return Reply::error("BAD_REQUEST", args.error());
  int sig = r.signal;
  Reply fail;
  Process* p = find_process(a, r.process, &fail);
  if (!p) return fail;
  // A forward has no pid: any signal but 0 closes its socket (docs: "Port forwarding").
  if (p->forward) {
    if (sig != 0) process_forward_close(a, *p, sig, "");
    return Reply::ok();
  }
  // After reaping, the pid may belong to someone else: an exited process takes no signals.
  if (!p->exited && kill(p->pid, sig) != 0 && errno != ESRCH) {
    return Reply::error("INTERNAL", std::string("kill: ") + strerror(errno));
  }
  return Reply::ok();
}

static Reply op_resize(Agent& a, Connection&, uint32_t, const json::Value& req) {
  Args args(req);
  ResizeRequest r;
  if (!resize_args(args, &r)) return Reply::error("BAD_REQUEST", args.error());
  Reply fail;
  Process* p = find_process(a, r.process, &fail);
  if (!p) return fail;
  if (!p->tty) {
    return Reply::error("BAD_REQUEST", "process " + std::to_string(p->id) + " has no terminal");
  }
  if (p->out.fd >= 0) {  // else the terminal is already gone: nothing to resize
    winsize ws{};
    ws.ws_row = r.rows;
    ws.ws_col = r.cols;
    if (ioctl(p->out.fd, TIOCSWINSZ, &ws) != 0) {
      return Reply::error("INTERNAL", std::string("TIOCSWINSZ: ") + strerror(errno));
    }
  }
  return Reply::ok();
}

static Reply op_shutdown(Agent& a, Connection&, uint32_t, const json::Value&) {
  a.shutdown_requested = true;  // the loop flushes responses, then powers off / exits
  return Reply::ok();
}

static const Op kOps[] = {
    {"hello", op_hello},
    {"guest_info", op_guest_info},
    {"exec", op_exec},
    {"attach", op_attach},
    {"wait", op_wait},
    {"signal", op_signal},
    {"resize", op_resize},
    {"shutdown", op_shutdown},
};

static const Op* find_op(const std::string& name) {
  for (const Op& o : kOps) {
    if (name == o.name) return &o;
  }
  for (const Op& o : kContainerOps) {
    if (name == o.name) return &o;
  }
  for (const Op& o : kBindOps) {
    if (name == o.name) return &o;
  }
  for (const Op& o : kContainerMoreOps) {
    if (name == o.name) return &o;
  }
  for (const Op& o : kNetworkOps) {
    if (name == o.name) return &o;
  }
  for (const Op& o : kForwardOps) {
    if (name == o.name) return &o;
  }
  for (const Op& o : kRestoreOps) {
    if (name == o.name) return &o;
  }
  return nullptr;
}

static void handle_request(Agent& a, Connection& c, uint32_t id, const std::string& payload) {
  json::Value req;
  std::string error;
  if (!json::parse(payload, &req, &error)) {
    return conn_protocol_error(a, c, "request " + std::to_string(id) + ": bad JSON: " + error);
  }
  if (!req.is_object()) {
    return conn_protocol_error(a, c, "request " + std::to_string(id) + ": not a JSON object");
  }
  // Id 0 is reserved for the agent's notices (see conn_protocol_error): a host bug.
  if (id == 0) return conn_protocol_error(a, c, "request id 0 (ids must be non-zero)");
  const json::Value* op = req.find("op");
  if (!op || !op->is_string()) {
    return reply_send(c, id, Reply::error("BAD_REQUEST", "op: missing or not a string"));
  }
  if (!c.hello && op->as_string() != "hello") {
    return reply_send(c, id, Reply::error("BAD_REQUEST", "the first request on a connection must be hello"));
  }
  Reply refusal;
  if (restore_refuses(a, op->as_string(), &refusal)) return reply_send(c, id, refusal);
  const Op* o = find_op(op->as_string());
  if (!o) return reply_send(c, id, Reply::error("UNKNOWN_OP", "unknown op " + json::serialize(*op)));
  reply_send(c, id, o->fn(a, c, id, req));
}

static void handle_stdin(Agent& a, Connection& c, uint32_t process, const std::string& data) {
  Process* p = process_find(a, process);
  // Stdin of a process that has been waited for, or belongs to another connection, is dropped.
  if (!p || p->conn != c.id) return;
  if (!process_stdin(*p, data)) {
    conn_protocol_error(a, c,
                        "process " + std::to_string(process) + ": stdin window exceeded (" +
                            std::to_string(kStdinWindow) + " bytes unacknowledged)");
  }
}

void handle_frame(Agent& a, Connection& c, const proto::Frame& frame) {
  switch (frame.type) {
    case proto::kRequest: return handle_request(a, c, frame.id, frame.payload);
    case proto::kStdin: return handle_stdin(a, c, frame.id, frame.payload);
    default:
      return conn_protocol_error(
          a, c, std::string("frame type ") + proto::type_name(frame.type) + " is not sent by the host");
  }
}

void requests_conn_gone(Agent& a, uint64_t conn) {
  process_detach_all(a, conn);
  for (size_t i = 0; i < a.waiters.size();) {
    if (a.waiters[i].reply.conn == conn) {
      a.waiters.erase(a.waiters.begin() + i);
    } else {
      i++;
    }
  }
}
