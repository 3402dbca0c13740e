#include "process.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <unordered_map>

#include "agent.h"
#include "protocol.h"
#include "requests.h"

static const char kDefaultPath[] = "/usr/sbin:/usr/bin:/sbin:/bin";

static void close_fd(int* fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

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

// --- spawning --------------------------------------------------------------------------------

// The default PATH, then the given entries (a later key replaces an earlier one).
static std::vector<std::string> build_env(const std::vector<std::string>& given) {
  std::vector<std::string> env{std::string("PATH=") + kDefaultPath};
  std::unordered_map<std::string, size_t> index{{"PATH", 0}};
  for (const std::string& kv : given) {
    std::string key = kv.substr(0, kv.find('='));
    auto [it, inserted] = index.emplace(key, env.size());
    if (inserted) {
      env.push_back(kv);
    } else {
      env[it->second] = kv;
    }
  }
  return env;
}

// Paths execve() should try, in order: argv[0] itself when it has a slash, else PATH lookup with
// the process's own PATH (as execvpe would, but with the new environment, not the agent's).
static std::vector<std::string> exec_candidates(const std::string& prog,
                                                const std::vector<std::string>& env) {
  if (prog.find('/') != std::string::npos) return {prog};
  if (prog.empty()) return {};
  std::string path = kDefaultPath;
  for (const std::string& kv : env) {
    if (kv.compare(0, 5, "PATH=") == 0) path = kv.substr(5);
  }
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t end = path.find(':', start);
    std::string dir = path.substr(start, end == std::string::npos ? std::string::npos : end - start);
    out.push_back((dir.empty() ? std::string(".") : dir) + "/" + prog);
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

// What the child writes to the CLOEXEC report pipe when it fails before or at execve(); a
// successful execve closes the pipe, which the parent reads as EOF.
struct ChildReport {
  int32_t stage;  // kStageChdir or kStageExec
  int32_t err;
};
enum : int32_t { kStageChdir = 1, kStageExec = 2 };

struct ChildPlan {
  bool tty;
  int stdin_fd, stdout_fd, stderr_fd;  // child ends (tty: all the pty slave)
  const char* cwd;
  std::vector<char*> argv, envp;
  const std::vector<std::string>* candidates;
  int report_fd;
};

[[noreturn]] static void child_fail(int report_fd, int32_t stage, int err) {
  ChildReport r{stage, err};
  ssize_t n = write(report_fd, &r, sizeof r);
  (void)n;
  _exit(127);
}

// Runs in the forked child: only async-signal-safe calls from here on.
[[noreturn]] static void child_exec(const ChildPlan& p) {
  // The agent blocks SIGCHLD (signalfd) and ignores SIGPIPE; a program must start with defaults.
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int s = 1; s < NSIG; s++) sigaction(s, &dfl, nullptr);  // fails harmlessly for some

  setsid();
  if (p.tty) ioctl(p.stdin_fd, TIOCSCTTY, 0);
  dup2(p.stdin_fd, 0);
  dup2(p.stdout_fd, 1);
  dup2(p.stderr_fd, 2);
  // Every agent fd is CLOEXEC already; this also covers fds inherited by the agent in test mode.
  syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC);

  if (chdir(p.cwd) != 0) child_fail(p.report_fd, kStageChdir, errno);
  int err = ENOENT;
  bool eacces = false;
  for (const std::string& path : *p.candidates) {
    execve(path.c_str(), p.argv.data(), p.envp.data());
    err = errno;
    // Like execvpe: keep searching past "not here" errors, remember a permission problem.
    if (err == EACCES) {
      eacces = true;
      continue;
    }
    if (err == ENOENT || err == ENOTDIR || err == ESTALE || err == ENODEV || err == ETIMEDOUT) {
      continue;
    }
    break;
  }
  if (eacces && (err == ENOENT || err == ENOTDIR || err == ESTALE || err == ENODEV ||
                 err == ETIMEDOUT || err == EACCES)) {
    err = EACCES;
  }
  child_fail(p.report_fd, kStageExec, err);
}

static bool set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  return fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0;
}

// Reads exactly len bytes unless EOF comes first; returns the count read.
static size_t read_full(int fd, void* buf, size_t len) {
  size_t got = 0;
  while (got < len) {
    ssize_t n = read(fd, static_cast<char*>(buf) + got, len - got);
    if (n > 0) {
      got += static_cast<size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      break;
    }
  }
  return got;
}

bool process_spawn(Agent& a, Connection& conn, const ExecSpec& spec, Process** out,
                   std::string* code, std::string* message) {
  std::vector<std::string> env = build_env(spec.env);
  std::vector<std::string> candidates = exec_candidates(spec.argv[0], env);

  // Parent ends: in_w (stdin), out_r, err_r; child ends: in_r, out_w, err_w; pty: master/slave.
  int in_r = -1, in_w = -1, out_r = -1, out_w = -1, err_r = -1, err_w = -1;
  int master = -1, slave = -1;
  int report[2] = {-1, -1};
  auto close_all = [&]() {
    for (int* fd : {&in_r, &in_w, &out_r, &out_w, &err_r, &err_w, &master, &slave, &report[0],
                    &report[1]}) {
      close_fd(fd);
    }
  };
  auto internal = [&](const char* what) {
    *code = "INTERNAL";
    *message = std::string(what) + ": " + strerror(errno);
    close_all();
    return false;
  };

  if (spec.tty) {
    master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
    if (master < 0) return internal("open /dev/ptmx");
    char name[128];
    if (grantpt(master) != 0 || unlockpt(master) != 0) return internal("unlockpt");
    if (ptsname_r(master, name, sizeof name) != 0) return internal("ptsname");
    if (spec.has_size) {
      winsize ws{};
      ws.ws_row = spec.rows;
      ws.ws_col = spec.cols;
      if (ioctl(master, TIOCSWINSZ, &ws) != 0) return internal("TIOCSWINSZ");
    }
    slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (slave < 0) return internal("open pty slave");
  } else {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return internal("pipe");
    in_r = p[0];
    in_w = p[1];
    if (pipe2(p, O_CLOEXEC) != 0) return internal("pipe");
    out_r = p[0];
    out_w = p[1];
    if (pipe2(p, O_CLOEXEC) != 0) return internal("pipe");
    err_r = p[0];
    err_w = p[1];
    if (!set_nonblock(in_w) || !set_nonblock(out_r) || !set_nonblock(err_r)) {
      return internal("fcntl");
    }
  }
  if (pipe2(report, O_CLOEXEC) != 0) return internal("pipe");

  ChildPlan plan;
  plan.tty = spec.tty;
  plan.stdin_fd = spec.tty ? slave : in_r;
  plan.stdout_fd = spec.tty ? slave : out_w;
  plan.stderr_fd = spec.tty ? slave : err_w;
  plan.cwd = spec.cwd.c_str();
  for (const std::string& s : spec.argv) plan.argv.push_back(const_cast<char*>(s.c_str()));
  plan.argv.push_back(nullptr);
  for (const std::string& s : env) plan.envp.push_back(const_cast<char*>(s.c_str()));
  plan.envp.push_back(nullptr);
  plan.candidates = &candidates;
  plan.report_fd = report[1];

  pid_t pid = fork();
  if (pid < 0) return internal("fork");
  if (pid == 0) child_exec(plan);

  // Parent. Close the child's ends so EOF/EIO arrive when the child's side closes.
  close_fd(&in_r);
  close_fd(&out_w);
  close_fd(&err_w);
  close_fd(&slave);
  close_fd(&report[1]);
  ChildReport rep{};
  size_t got = read_full(report[0], &rep, sizeof rep);
  close_fd(&report[0]);
  if (got == sizeof rep) {
    // The child has _exit()ed; the reaper collects it as an unknown pid.
    *code = "EXEC_FAILED";
    if (rep.stage == kStageChdir) {
      *message = "cannot execute \"" + spec.argv[0] + "\": chdir to \"" + spec.cwd +
                 "\": " + strerror(rep.err);
    } else {
      *message = "cannot execute \"" + spec.argv[0] + "\": " + strerror(rep.err);
    }
    close_all();
    return false;
  }

  auto p = std::make_unique<Process>();
  p->id = a.next_proc_id++;
  if (a.next_proc_id == 0) a.next_proc_id = 1;  // after 2^32 processes; ids stay non-zero
  p->pid = pid;
  p->tty = spec.tty;
  p->conn = conn.id;
  if (spec.tty) {
    p->out.fd = master;
    p->in.fd = master;
    p->err.ended = true;  // a TTY has no separate stderr and never sends its end
  } else {
    p->out.fd = out_r;
    p->err.fd = err_r;
    p->in.fd = in_w;
  }
  Process* raw = p.get();
  a.pids[pid] = p->id;
  a.procs[p->id] = std::move(p);
  *out = raw;
  return true;
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
  close_fd(&s.fd);
  s.ended = true;
  emit(a, p, stderr_stream ? proto::kStderr : proto::kStdout, "", 0);
}

void process_on_readable(Agent& a, Process& p, bool stderr_stream) {
  OutStream& s = stderr_stream ? p.err : p.out;
  if (s.fd < 0 || s.ended) return;
  static char buf[64 * 1024];
  ssize_t n = read(s.fd, buf, sizeof buf);
  if (n > 0) {
    emit(a, p, stderr_stream ? proto::kStderr : proto::kStdout, buf, static_cast<size_t>(n));
    return;
  }
  if (n < 0 && errno == EINTR) return;
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
    stdin_discard(p);
    if (!p.tty) close_fd(&in.fd);
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
  }
}

// --- lifecycle -------------------------------------------------------------------------------

void process_reap_children(Agent& a) {
  for (;;) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid < 0 && errno == EINTR) continue;
    if (pid <= 0) return;
    auto it = a.pids.find(pid);
    if (it == a.pids.end()) continue;  // an orphan (PID 1) or a child whose exec failed
    if (Process* p = process_find(a, it->second)) {
      p->exited = true;
      p->status = status;
    }
    a.pids.erase(it);
  }
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
    if (Connection* c = conn_find(a, w.conn)) respond_ok(*c, w.request, exit_status_json(p.status));
  }
  return any;
}

static void close_process_fds(Process& p) {
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
    if (p.exited) {
      // The process is gone: read what it left, until the pipes are empty (or flow control).
      for (bool err : {false, true}) {
        OutStream& s = err ? p.err : p.out;
        while (!s.ended && s.fd >= 0 && process_can_read(a, p)) process_on_readable(a, p, err);
      }
    }
    if (!p.exit_queued && p.exited && p.out.ended && p.err.ended) {
      std::string payload = json::serialize(exit_status_json(p.status));
      emit(a, p, proto::kExit, payload.data(), payload.size());
      p.exit_queued = true;
      close_process_fds(p);
    }
    flush_pending(a, p, false);
    send_ack(a, p);
    if (p.exit_queued && answer_waiters(a, p)) {
      close_process_fds(p);
      it = a.procs.erase(it);
      continue;
    }
    ++it;
  }
}

void process_kill_all(Agent& a) {
  for (auto& [id, p] : a.procs) {
    if (p->exited) continue;
    kill(-p->pid, SIGKILL);  // its process group (it is a session leader)
    kill(p->pid, SIGKILL);
  }
}
