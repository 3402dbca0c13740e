#include "spawn.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <unordered_map>

static const char kDefaultPath[] = "/usr/sbin:/usr/bin:/sbin:/bin";

static void close_fd(int* fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

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

bool spawn_child(const ExecSpec& spec, SpawnedChild* child, std::string* code,
                 std::string* message) {
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

  child->pid = pid;
  child->tty = spec.tty;
  if (spec.tty) {
    child->stdin_fd = child->stdout_fd = master;
    child->stderr_fd = -1;
  } else {
    child->stdin_fd = in_w;
    child->stdout_fd = out_r;
    child->stderr_fd = err_r;
  }
  return true;
}
