#include "spawn.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <unordered_map>
#include <utility>

void close_fd(int* fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

// --- environment and PATH ----------------------------------------------------------------------

std::vector<std::string> build_env(const char* default_path, const std::vector<std::string>& given) {
  std::vector<std::string> env{std::string("PATH=") + default_path};
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

bool env_has(const std::vector<std::string>& env, const char* key) {
  size_t n = std::strlen(key);
  for (const std::string& kv : env) {
    if (kv.size() > n && kv.compare(0, n, key) == 0 && kv[n] == '=') return true;
  }
  return false;
}

std::vector<std::string> exec_candidates(const std::string& prog,
                                         const std::vector<std::string>& env,
                                         const char* default_path) {
  if (prog.find('/') != std::string::npos) return {prog};
  if (prog.empty()) return {};
  std::string path = default_path;
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

std::vector<char*> c_strings(const std::vector<std::string>& v) {
  std::vector<char*> out;
  for (const std::string& s : v) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

static bool not_here(int err) {
  return err == ENOENT || err == ENOTDIR || err == ESTALE || err == ENODEV || err == ETIMEDOUT;
}

int exec_search(const std::vector<std::string>& candidates, char* const argv[],
                char* const envp[]) {
  int err = ENOENT;
  bool eacces = false;
  for (const std::string& path : candidates) {
    execve(path.c_str(), argv, envp);
    err = errno;
    // Like execvpe: keep searching past "not here" errors, remember a permission problem.
    if (err == EACCES) {
      eacces = true;
      continue;
    }
    if (not_here(err)) continue;
    break;
  }
  if (eacces && (not_here(err) || err == EACCES)) err = EACCES;
  return err;
}

// --- stdio -------------------------------------------------------------------------------------

static bool set_nonblock(int fd) {
  int fl = fcntl(fd, F_GETFL);
  return fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0;
}

ChildStdio::~ChildStdio() {
  for (int* fd : {&in_r_, &in_w_, &out_r_, &out_w_, &err_r_, &err_w_, &master_, &slave_}) {
    close_fd(fd);
  }
}

bool pty_open(const char* ptmx, const ExecSpec& spec, int* master, int* slave, unsigned* index,
              const char** what) {
  *slave = -1;
  *master = ::open(ptmx, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (*master < 0) {
    *what = "open ptmx";
    return false;
  }
  int unlock = 0;
  winsize ws{};
  ws.ws_row = spec.rows;
  ws.ws_col = spec.cols;
  if (ioctl(*master, TIOCSPTLCK, &unlock) != 0) {
    *what = "unlockpt";
  } else if (ioctl(*master, TIOCGPTN, index) != 0) {
    *what = "TIOCGPTN";
  } else if (spec.has_size && ioctl(*master, TIOCSWINSZ, &ws) != 0) {
    *what = "TIOCSWINSZ";
  } else if ((*slave = ioctl(*master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0) {
    *what = "open pty slave";
  } else {
    return true;
  }
  int err = errno;
  close_fd(master);
  errno = err;
  return false;
}

void pty_take_as_stdio(int slave) {
  ioctl(slave, TIOCSCTTY, 0);
  dup2(slave, 0);
  dup2(slave, 1);
  dup2(slave, 2);
}

bool ChildStdio::open(const ExecSpec& spec, std::string* what, const char* ptmx) {
  auto fail = [what](const char* call) {
    *what = call;
    return false;
  };
  tty_ = spec.tty;
  if (spec.tty) {
    unsigned index = 0;
    const char* call = "";
    if (!pty_open(ptmx ? ptmx : "/dev/ptmx", spec, &master_, &slave_, &index, &call)) return fail(call);
    if (!set_nonblock(master_)) return fail("fcntl");
    return true;
  }
  int p[2];
  for (auto [r, w] : {std::pair<int*, int*>{&in_r_, &in_w_}, {&out_r_, &out_w_}, {&err_r_, &err_w_}}) {
    if (pipe2(p, O_CLOEXEC) != 0) return fail("pipe");
    *r = p[0];
    *w = p[1];
  }
  if (!set_nonblock(in_w_) || !set_nonblock(out_r_) || !set_nonblock(err_r_)) return fail("fcntl");
  return true;
}

void ChildStdio::child_setup() const {
  // The agent blocks SIGCHLD (signalfd) and ignores SIGPIPE; a program must start with defaults.
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int s = 1; s < NSIG; s++) sigaction(s, &dfl, nullptr);  // fails harmlessly for some

  setsid();
  if (!tty_) {
    dup2(in_r_, 0);
    dup2(out_w_, 1);
    dup2(err_w_, 2);
  } else if (slave_ >= 0) {
    pty_take_as_stdio(slave_);
  }
  // Every agent fd is CLOEXEC already; this also covers fds inherited by the agent in test mode.
  syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC);
}

bool ChildStdio::adopt_master(int fd) {
  close_fd(&master_);
  master_ = fd;
  return set_nonblock(master_);  // on failure the destructor closes it
}

void ChildStdio::parent_take(SpawnedChild* child) {
  // Closing the child's ends makes EOF/EIO arrive when the child's side closes.
  close_fd(&in_r_);
  close_fd(&out_w_);
  close_fd(&err_w_);
  close_fd(&slave_);
  child->tty = tty_;
  if (tty_) {
    child->stdin_fd = child->stdout_fd = master_;
    child->stderr_fd = -1;
    master_ = -1;
  } else {
    child->stdin_fd = in_w_;
    child->stdout_fd = out_r_;
    child->stderr_fd = err_r_;
    in_w_ = out_r_ = err_r_ = -1;
  }
}

size_t read_full(int fd, void* buf, size_t len, int timeout_ms) {
  timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  size_t got = 0;
  while (got < len) {
    if (timeout_ms >= 0) {
      timespec now;
      clock_gettime(CLOCK_MONOTONIC, &now);
      long spent = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
      if (spent >= timeout_ms) break;
      pollfd p{fd, POLLIN, 0};
      int n = poll(&p, 1, static_cast<int>(timeout_ms - spent));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
    }
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

// --- exec --------------------------------------------------------------------------------------

// What the child writes to the CLOEXEC report pipe when it fails before or at execve(); a
// successful execve closes the pipe, which the parent reads as EOF.
struct ChildReport {
  int32_t stage;  // kStageChdir or kStageExec
  int32_t err;
};
enum : int32_t { kStageChdir = 1, kStageExec = 2 };

[[noreturn]] static void child_fail(int report_fd, int32_t stage, int err) {
  ChildReport r{stage, err};
  ssize_t n = write(report_fd, &r, sizeof r);
  (void)n;
  _exit(127);
}

bool spawn_child(const ExecSpec& spec, SpawnedChild* child, std::string* code,
                 std::string* message) {
  std::vector<std::string> env = build_env(kDefaultPath, spec.env);
  std::vector<std::string> candidates = exec_candidates(spec.argv[0], env, kDefaultPath);
  std::vector<char*> argv = c_strings(spec.argv), envp = c_strings(env);

  ChildStdio io;
  int report[2] = {-1, -1};
  auto internal = [&](const std::string& what) {
    *code = "INTERNAL";
    *message = what + ": " + strerror(errno);
    close_fd(&report[0]);
    close_fd(&report[1]);
    return false;
  };
  std::string what;
  if (!io.open(spec, &what)) return internal(what);
  if (pipe2(report, O_CLOEXEC) != 0) return internal("pipe");

  pid_t pid = fork();
  if (pid < 0) return internal("fork");
  if (pid == 0) {  // only async-signal-safe calls from here on
    io.child_setup();
    if (chdir(spec.cwd.c_str()) != 0) child_fail(report[1], kStageChdir, errno);
    child_fail(report[1], kStageExec, exec_search(candidates, argv.data(), envp.data()));
  }

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
    return false;
  }
  child->pid = pid;
  io.parent_take(child);
  return true;
}
