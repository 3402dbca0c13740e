#include "process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "agent.h"
#include "protocol.h"
#include "reply.h"

// --- exit statuses ---------------------------------------------------------------------------

std::string signal_name(int sig) {
  static const char* const kNames[] = {
      nullptr,   "SIGHUP",  "SIGINT",    "SIGQUIT", "SIGILL",    "SIGTRAP", "SIGABRT",
      "SIGBUS",  "SIGFPE",  "SIGKILL",   "SIGUSR1", "SIGSEGV",   "SIGUSR2", "SIGPIPE",
      "SIGALRM", "SIGTERM", "SIGSTKFLT", "SIGCHLD", "SIGCONT",   "SIGSTOP", "SIGTSTP",
      "SIGTTIN", "SIGTTOU", "SIGURG",    "SIGXCPU", "SIGXFSZ",   "SIGVTALRM", "SIGPROF",
      "SIGWINCH", "SIGIO",  "SIGPWR",    "SIGSYS"};
  if (sig > 0 && sig < static_cast<int>(sizeof kNames / sizeof kNames[0])) return kNames[sig];
  // Real-time signals, named as `kill -l` does (glibc reserves 32 and 33).
  int rtmin = SIGRTMIN, rtmax = SIGRTMAX;
  if (sig == rtmin) return "SIGRTMIN";
  if (sig == rtmax) return "SIGRTMAX";
  if (sig > rtmin && sig < rtmax) {
    int mid = rtmin + (rtmax - rtmin) / 2;
    return sig <= mid ? "SIGRTMIN+" + std::to_string(sig - rtmin)
                      : "SIGRTMAX-" + std::to_string(rtmax - sig);
  }
  return "SIG" + std::to_string(sig);
}

json::Value process_exit_json(const Process& p) {
  json::Value v = exit_status_json(p.status);
  if (p.forward && !p.error.empty()) v.set("error", json::Value::string(p.error));
  return v;
}

json::Value exit_status_json(int status) {
  json::Value v = json::Value::object();
  if (WIFSIGNALED(status)) {
    v.set("exitCode", json::Value());
    v.set("signal", json::Value::string(signal_name(WTERMSIG(status))));
  } else {
    v.set("exitCode", json::Value::number(WEXITSTATUS(status)));
    v.set("signal", json::Value());
  }
  return v;
}

bool process_spawn(Agent& a, Connection& conn, const ExecSpec& spec, Process** out,
                   std::string* code, std::string* message) {
  SpawnedChild child;
  if (!spawn_child(spec, &child, code, message)) return false;
  *out = process_adopt(a, conn, child);
  return true;
}

static std::unique_ptr<Process> new_process(Agent& a, Connection& conn) {
  auto p = std::make_unique<Process>();
  p->id = a.next_proc_id++;
  if (a.next_proc_id == 0) a.next_proc_id = 1;  // after 2^32 processes; ids stay non-zero
  p->conn = conn.id;
  return p;
}

Process* process_adopt(Agent& a, Connection& conn, const SpawnedChild& child) {
  auto p = new_process(a, conn);
  p->pid = child.pid;
  p->tty = child.tty;
  p->in.fd = child.stdin_fd;
  p->out.fd = child.stdout_fd;
  p->err.fd = child.stderr_fd;
  p->err.ended = child.tty;  // a TTY has no separate stderr and never sends its end
  Process* raw = p.get();
  a.pids[child.pid] = p->id;
  a.procs[p->id] = std::move(p);
  return raw;
}

Process* process_adopt_socket(Agent& a, Connection& conn, int fd) {
  auto p = new_process(a, conn);
  p->forward = true;
  p->sock = fd;
  p->in.fd = fd;
  p->out.fd = fd;
  p->err.ended = true;  // no stderr, and no end frame for it (as for a TTY)
  Process* raw = p.get();
  a.procs[p->id] = std::move(p);
  return raw;
}

Process* process_find(Agent& a, uint32_t id) {
  auto it = a.procs.find(id);
  return it == a.procs.end() ? nullptr : it->second.get();
}

// --- output ----------------------------------------------------------------------------------

static Connection* attached(Agent& a, const Process& p) {
  return p.conn ? conn_find(a, p.conn) : nullptr;
}

bool process_can_read(Agent& a, const Process& p) {
  if (Connection* c = attached(a, p)) {
    return p.pending.empty() && c->wbuf.size() < kConnOutputHighWater;
  }
  return p.pending_bytes < kDetachedBufferLimit;
}

static void emit(Agent& a, Process& p, uint8_t type, const void* data, size_t len) {
  Connection* c = attached(a, p);
  if (c && p.pending.empty()) {
    conn_send(*c, type, p.id, data, len);
    return;
  }
  std::string frame;
  proto::encode(&frame, type, p.id, data, len);
  p.pending_bytes += frame.size();
  p.pending.push_back(std::move(frame));
}

// Moves buffered frames to the attached connection; force ignores the connection's high-water
// mark (used before the process is forgotten; bounded by the detached buffer limit).
static void flush_pending(Agent& a, Process& p, bool force) {
  Connection* c = attached(a, p);
  if (!c) return;
  while (!p.pending.empty() && (force || c->wbuf.size() < kConnOutputHighWater)) {
    c->wbuf.tail()->append(p.pending.front());
    p.pending_bytes -= p.pending.front().size();
    p.pending.pop_front();
  }
}

static void stdin_discard(Process& p) {
  // Bytes that will never reach the process still leave the agent: acknowledge them so the
  // host's window does not stall.
  p.ack_owed += p.in.from_current;
  p.in.from_current = 0;
  p.in.buf.clear();
  p.in.off = 0;
}

static void end_stream(Agent& a, Process& p, bool stderr_stream) {
  OutStream& s = stderr_stream ? p.err : p.out;
  if (p.tty) {
    // The master is stdin too; with the terminal gone there is nowhere to write.
    stdin_discard(p);
    p.in.fd = -1;
    p.in.closed = true;
  }
  if (p.forward) {
    s.fd = -1;  // the socket stays open for the other direction (half-close)
  } else {
    close_fd(&s.fd);
  }
  s.ended = true;
  emit(a, p, stderr_stream ? proto::kStderr : proto::kStdout, "", 0);
}

void process_forward_close(Agent& a, Process& p, int status, const std::string& error) {
  if (!p.forward || p.exited) return;
  if (p.error.empty()) p.error = error;
  stdin_discard(p);
  p.in.fd = -1;
  p.in.closed = true;
  if (!p.out.ended) end_stream(a, p, false);
  close_fd(&p.sock);
  p.exited = true;
  p.status = status;
}

void process_on_readable(Agent& a, Process& p, bool stderr_stream) {
  OutStream& s = stderr_stream ? p.err : p.out;
  if (s.fd < 0 || s.ended) return;
  // A full read and its frame header make exactly 64 KiB, the largest packet Linux's
  // virtio-vsock sends: 64 KiB of output used to go out as a full packet plus a 12-byte one, each
  // packet costing the guest a buffer, a ring slot and often a notification.
  static char buf[64 * 1024 - proto::kHeaderSize];
  ssize_t n = read(s.fd, buf, sizeof buf);
  if (n > 0) {
    emit(a, p, stderr_stream ? proto::kStderr : proto::kStdout, buf, static_cast<size_t>(n));
    return;
  }
  if (n < 0 && errno == EINTR) return;
  if (n < 0 && p.forward && errno != EAGAIN) {
    // A reset (or another failure): nothing more can be read or written.
    process_forward_close(a, p, kForwardFailedStatus, std::string("read: ") + strerror(errno));
    return;
  }
  if (n < 0 && errno == EAGAIN) {
    // Once the process has exited, all it wrote is already readable (for a pty, read() first
    // flushes the line discipline). Nothing left means the end, even if a descendant still
    // holds the pipe open: EXIT must not wait for daemons.
    if (p.exited) end_stream(a, p, stderr_stream);
    return;
  }
  // EOF, or EIO from a pty whose slave side is all closed.
  if (p.tty && !p.exited) {
    s.hung_up = true;  // not polled any more; ended once the process has exited
    return;
  }
  end_stream(a, p, stderr_stream);
}

// --- stdin -----------------------------------------------------------------------------------

bool process_stdin(Process& p, const std::string& data) {
  StdinState& in = p.in;
  if (data.empty()) {
    in.close_requested = true;
    return true;
  }
  if (in.fd < 0 || in.closed || in.close_requested) {
    p.ack_owed += data.size();  // nowhere to deliver: dropped, but acknowledged
    return true;
  }
  if (in.from_current + data.size() > kStdinWindow + kStdinSlack) return false;
  in.buf.append(data);
  in.from_current += data.size();
  return true;
}

static void stdin_consumed(Process& p, size_t n) {
  StdinState& in = p.in;
  size_t buffered = in.buf.size() - in.off;
  size_t older = buffered - in.from_current;  // from earlier connections, at the head
  size_t mine = n > older ? n - older : 0;
  in.from_current -= mine;
  p.ack_owed += mine;
  in.off += n;
  if (in.off == in.buf.size()) {
    in.buf.clear();
    in.off = 0;
  } else if (in.off >= (64u << 10)) {
    in.buf.erase(0, in.off);
    in.off = 0;
  }
}

static void close_stdin(Process& p) {
  StdinState& in = p.in;
  in.closed = true;
  if (p.forward) {
    // Half-close: the peer reads its end of file, and may still answer.
    if (p.sock >= 0) shutdown(p.sock, SHUT_WR);
    in.fd = -1;
    return;
  }
  if (p.tty) {
    // The master stays open (it carries the output). Closing "stdin" of a terminal means an
    // end-of-file for its reader: the EOF character, when the terminal is in canonical mode.
    termios t;
    if (in.fd >= 0 && tcgetattr(in.fd, &t) == 0 && (t.c_lflag & ICANON)) {
      char eof = static_cast<char>(t.c_cc[VEOF]);
      ssize_t n = write(in.fd, &eof, 1);
      (void)n;
    }
    return;
  }
  close_fd(&in.fd);
}

void process_on_stdin_writable(Agent&, Process& p) {
  StdinState& in = p.in;
  while (in.fd >= 0 && in.off < in.buf.size()) {
    ssize_t n = write(in.fd, in.buf.data() + in.off, in.buf.size() - in.off);
    if (n > 0) {
      stdin_consumed(p, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    // EPIPE: the process closed its stdin or exited; the rest can never be delivered.
    if (p.forward && p.error.empty()) p.error = std::string("write: ") + strerror(errno);
    stdin_discard(p);
    if (p.forward) {
      in.fd = -1;  // what the peer sent before it went can still be read
    } else if (!p.tty) {
      close_fd(&in.fd);
    }
    in.closed = true;
    return;
  }
}

// --- attachment ------------------------------------------------------------------------------

void process_attach(Agent& a, Process& p, Connection& c) {
  if (p.conn == c.id) return;
  p.conn = c.id;
  // Stdin still buffered came from another connection; this one's window starts empty.
  p.in.from_current = 0;
  p.ack_owed = 0;
  flush_pending(a, p, false);
}

void process_detach_all(Agent& a, uint64_t conn) {
  for (auto& [id, p] : a.procs) {
    if (p->conn != conn) continue;
    p->conn = 0;
    p->in.from_current = 0;
    p->ack_owed = 0;
    // A forward is not kept for a later attach: its TCP peer learns at once that the other end
    // is gone. process_service() forgets it.
    if (p->forward) {
      process_forward_close(a, *p, kForwardFailedStatus, "the host connection of the forward closed");
    }
  }
}

// --- lifecycle -------------------------------------------------------------------------------

void process_record_exit(Agent& a, pid_t pid, int status) {
  auto it = a.pids.find(pid);
  if (it == a.pids.end()) return;  // an orphan (PID 1) or a child whose exec failed
  if (Process* p = process_find(a, it->second)) {
    p->exited = true;
    p->status = status;
  }
  a.pids.erase(it);
}

static void send_ack(Agent& a, Process& p) {
  if (p.ack_owed == 0) return;
  Connection* c = attached(a, p);
  if (!c) {
    p.ack_owed = 0;
    return;
  }
  while (p.ack_owed > 0) {
    uint32_t n = p.ack_owed > 0xFFFFFFFFu ? 0xFFFFFFFFu : static_cast<uint32_t>(p.ack_owed);
    std::string payload;
    proto::append_be32(&payload, n);
    conn_send(*c, proto::kStdinAck, p.id, payload.data(), payload.size());
    p.ack_owed -= n;
  }
}

// Answers the `wait` requests for a finished process; true if there were any (then the process
// is forgotten).
static bool answer_waiters(Agent& a, Process& p) {
  bool any = false;
  for (size_t i = 0; i < a.waiters.size();) {
    const Waiter w = a.waiters[i];
    if (w.process != p.id) {
      i++;
      continue;
    }
    a.waiters.erase(a.waiters.begin() + i);
    any = true;
    // Everything of the process goes out before the answer (same connection: in order).
    flush_pending(a, p, true);
    reply_send(a, w.reply, Reply::ok(process_exit_json(p)));
  }
  return any;
}

static void close_process_fds(Process& p) {
  if (p.forward) {
    p.in.fd = p.out.fd = -1;  // both name the socket
    close_fd(&p.sock);
    return;
  }
  if (p.tty) p.in.fd = -1;  // the pty master, closed once, through out.fd
  close_fd(&p.in.fd);
  close_fd(&p.out.fd);
  close_fd(&p.err.fd);
}

void process_service(Agent& a) {
  for (auto it = a.procs.begin(); it != a.procs.end();) {
    Process& p = *it->second;
    flush_pending(a, p, false);
    if (p.in.close_requested && !p.in.closed && p.in.off >= p.in.buf.size()) close_stdin(p);
    if (p.forward && !p.exited && p.out.ended && p.in.closed) {
      // Both directions are done: the forward's "exit", 0 unless something failed on the way.
      close_fd(&p.sock);
      p.exited = true;
      p.status = p.error.empty() ? 0 : kForwardFailedStatus;
    }
    if (p.exited) {
      // The process is gone: read what it left, until the pipes are empty (or flow control).
      for (bool err : {false, true}) {
        OutStream& s = err ? p.err : p.out;
        while (!s.ended && s.fd >= 0 && process_can_read(a, p)) process_on_readable(a, p, err);
      }
    }
    if (!p.exit_queued && p.exited && p.out.ended && p.err.ended) {
      std::string payload = json::serialize(process_exit_json(p));
      emit(a, p, proto::kExit, payload.data(), payload.size());
      p.exit_queued = true;
      close_process_fds(p);
    }
    flush_pending(a, p, false);
    send_ack(a, p);
    // Collected: a `wait` was answered, or EXIT went out to an attached connection. Either way
    // nobody will ask again, and keeping every status forever would grow without bound.
    // A detached forward has nobody to collect it (process_detach_all closed it).
    if (p.exit_queued && (answer_waiters(a, p) || (attached(a, p) && p.pending.empty()) ||
                          (p.forward && !attached(a, p)))) {
      close_process_fds(p);
      it = a.procs.erase(it);
      continue;
    }
    ++it;
  }
}

void process_kill_all(Agent& a) {
  for (auto& [id, p] : a.procs) {
    if (p->exited || p->forward) continue;  // a forward has no pid (kill(0) would hit the agent)
    kill(-p->pid, SIGKILL);  // its process group (it is a session leader)
    kill(p->pid, SIGKILL);
  }
}
