// vc-vmm launcher --socket PATH [--spares N]
//
// A pre-forked VMM launcher: starting a VM costs a process spawn (fork+exec of vc-vmm, its static
// start-up, and on a busy host the scheduling delays around each) before the VMM's first line runs.
// The launcher pays that ahead of time: it keeps N spare copies of itself forked, each blocked in
// accept() on the launcher's socket. A client connects and sends one request (cmd/launch_request.h);
// the spare that accepted it tells the launcher to fork a replacement, takes on the client's
// environment, working directory and network namespace, points its stdout and stderr at the
// connection and runs `vc-vmm run` in itself — the same code, argv and exit code as a spawned
// vc-vmm — then ends the stream with the exit trailer. A `run --detach` there forks the monitor
// and VMM as usual and returns once the VM runs, so the spare ends while the VM lives on.
//
// The socket is created mode 0600: whoever can connect starts VMMs with the launcher's privileges.
// A launcher that dies takes its waiting spares with it (PDEATHSIG); a spare that has taken a
// request no longer depends on it. A stale socket left by a killed launcher is replaced; a live one
// makes a second launcher refuse to start.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <linux/prctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "cmd/launch_request.h"
#include "common/read_file.h"
#include "common/write_all.h"
#include "vm/vm.h"

int RunVmMain(int argc, char** argv);  // cmd/run.cc

namespace {

using vc::WriteAll;
using vmm::launcher::LaunchRequest;

constexpr int kMaxSpares = 16;
constexpr int kRequestTimeoutSeconds = 10;

int Usage(const std::string& why) {
  std::fprintf(stderr, "vc-vmm launcher: %s\nusage: vc-vmm launcher --socket PATH [--spares N (1..%d, default 2)]\n", why.c_str(), kMaxSpares);
  return 2;
}

// Reads one line (without its '\n') of at most kMaxRequestBytes; false on EOF, error or timeout.
bool ReadRequestLine(int fd, std::string* line) {
  char buf[4096];
  while (line->size() <= vmm::launcher::kMaxRequestBytes) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    line->append(buf, size_t(n));
    const size_t nl = line->find('\n');
    if (nl != std::string::npos) {
      line->resize(nl);
      return true;
    }
  }
  return false;
}

// Makes /proc/self/cmdline read "vc-vmm <argv...>", as a spawned vc-vmm's would: the library finds
// a pod's VMM (and gc its leftovers) by the config path on its command line, and a spare forked
// from the launcher would otherwise show "vc-vmm launcher --socket …" (and so would the VMM it
// forks). PR_SET_MM_MAP with this process's own layout and a new argument area (which must be
// anonymous memory: the kernel reads it with FOLL_ANON) needs no capability unless the executable
// changes. False when the kernel refuses. The buffer stays for the process's life.
bool ShowArgv(const std::vector<std::string>& argv) {
  std::string text = "vc-vmm";
  text.push_back('\0');
  for (const std::string& a : argv) {
    text += a;
    text.push_back('\0');
  }
  char* area = new char[text.size()];
  std::memcpy(area, text.data(), text.size());
  std::string stat;
  const int fd = ::open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  if (fd < 0 || !vc::ReadFdBounded(fd, 4096, &stat)) {
    if (fd >= 0) ::close(fd);
    return false;
  }
  ::close(fd);
  // proc(5): the fields after the command name's closing parenthesis, field 3 first.
  std::vector<unsigned long> f{0, 0, 0};
  for (const char* p = stat.c_str() + stat.rfind(')') + 2; *p;) {
    char* end = nullptr;
    f.push_back(std::strtoul(p, &end, 10));
    if (*end != ' ') {
      if (end == p) f.back() = 0;  // the state letter
      while (*end && *end != ' ') end++;
    }
    p = *end ? end + 1 : end;
  }
  if (f.size() < 52) return false;  // a kernel before 3.5 has no layout fields
  prctl_mm_map map{};
  map.start_code = f[26];
  map.end_code = f[27];
  map.start_stack = f[28];
  map.start_data = f[45];
  map.end_data = f[46];
  map.start_brk = f[47];
  map.env_start = f[50];
  map.env_end = f[51];
  map.arg_start = reinterpret_cast<unsigned long>(area);
  map.arg_end = map.arg_start + text.size();
  map.exe_fd = static_cast<uint32_t>(-1);
  map.brk = reinterpret_cast<unsigned long>(::sbrk(0));  // last: nothing may allocate after it
  return ::prctl(PR_SET_MM, PR_SET_MM_MAP, &map, sizeof map, 0) == 0;
}

// The run as a child exec'd from this binary (where ShowArgv is refused): its exit code, or -1
// when it was killed (no trailer then, as a killed spawned vc-vmm gives no status either).
int ExecRun(const std::vector<std::string>& argv) {
  std::vector<char*> exec_argv{const_cast<char*>("vc-vmm")};
  for (const std::string& a : argv) exec_argv.push_back(const_cast<char*>(a.c_str()));
  exec_argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::execv("/proc/self/exe", exec_argv.data());
    std::fprintf(stderr, "vc-vmm launcher: cannot exec vc-vmm: %s\n", std::strerror(errno));
    ::_exit(1);
  }
  int status = 0;
  if (pid < 0 || ::waitpid(pid, &status, 0) != pid) return 1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// The client's context, applied to this process before the run: a failure is the client's error.
std::string TakeOn(const LaunchRequest& r) {
  if (!r.netns.empty()) {
    const int ns = ::open(r.netns.c_str(), O_RDONLY | O_CLOEXEC);
    if (ns < 0) return "cannot open netns " + r.netns + ": " + std::strerror(errno);
    const int rc = ::setns(ns, CLONE_NEWNET);
    const int err = errno;
    ::close(ns);
    if (rc != 0) return "cannot enter netns " + r.netns + ": " + std::strerror(err);
  }
  if (::chdir(r.cwd.c_str()) != 0) return "cannot enter cwd " + r.cwd + ": " + std::strerror(errno);
  ::clearenv();
  for (const auto& [k, v] : r.env) ::setenv(k.c_str(), v.c_str(), 1);
  return "";
}

// A spare: waits for one client, then serves it and ends. Never returns.
[[noreturn]] void Spare(int listen_fd, int taken_fd) {
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() == 1) ::_exit(0);  // the launcher died before PDEATHSIG was set
  // What KVM answers the same for every VM, asked now rather than after the request.
  (void)vmm::kvm::Vm::PrefetchHostLists();
  int conn;
  do conn = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
  while (conn < 0 && errno == EINTR);
  if (conn < 0) ::_exit(1);
  // From here the run is the client's: it outlives the launcher.
  ::prctl(PR_SET_PDEATHSIG, 0);
  const pid_t self = ::getpid();
  (void)!::write(taken_fd, &self, sizeof self);  // atomic: under PIPE_BUF
  ::close(taken_fd);
  ::close(listen_fd);

  timeval timeout{kRequestTimeoutSeconds, 0};
  ::setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::string line;
  if (!ReadRequestLine(conn, &line)) ::_exit(1);
  auto request = vmm::launcher::ParseLaunchRequest(line);
  if (!request.ok()) {
    WriteAll(conn, "vc-vmm launcher: " + request.error() + "\n");
    ::_exit(2);  // no nonce to end with: the client reads EOF without a trailer
  }
  const LaunchRequest& r = request.value();
  timeval none{0, 0};
  ::setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &none, sizeof none);

  // stdout and stderr are the connection, and no other fd of it stays open: a detached run's VMM
  // is forked without exec and must not hold the client's connection (the client waits for EOF).
  ::dup2(conn, STDOUT_FILENO);
  ::dup2(conn, STDERR_FILENO);
  ::close(conn);
  const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
  int code = 1;
  const std::string failed = TakeOn(r);
  if (!failed.empty()) {
    std::fprintf(stderr, "vc-vmm launcher: %s\n", failed.c_str());
  } else {
    std::vector<char*> argv;
    for (const std::string& a : r.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    code = ShowArgv(r.argv) ? RunVmMain(int(r.argv.size()), argv.data()) : ExecRun(r.argv);
  }
  if (code < 0) ::_exit(1);
  std::fflush(nullptr);
  WriteAll(STDOUT_FILENO, vmm::launcher::ExitTrailer(r.nonce, code));
  ::_exit(code);
}

// Binds PATH mode 0600, replacing a stale socket but never a live one.
int Listen(const std::string& path, std::string* error) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    *error = "--socket must be 1.." + std::to_string(sizeof addr.sun_path - 1) + " bytes";
    return -1;
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (probe >= 0 && ::connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    ::close(probe);
    *error = "another launcher serves " + path;
    return -1;
  }
  if (probe >= 0) ::close(probe);
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      *error = path + " exists and is not a socket";
      return -1;
    }
    ::unlink(path.c_str());  // left by a launcher that was killed
  }
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const mode_t old = ::umask(0177);
  const bool bound = fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::umask(old);
  if (!bound || ::listen(fd, 64) != 0) {
    *error = "cannot listen on " + path + ": " + std::strerror(errno);
    if (fd >= 0) ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

int LauncherMain(int argc, char** argv) {
  std::string socket_path;
  int spares = 2;
  for (int i = 1; i < argc; i++) {
    const std::string arg = argv[i];
    if (arg == "--socket" && i + 1 < argc) socket_path = argv[++i];
    else if (arg == "--spares" && i + 1 < argc) {
      char* end = nullptr;
      const long n = std::strtol(argv[++i], &end, 10);
      if (!end || *end || n < 1 || n > kMaxSpares) return Usage(std::string("--spares must be 1..") + std::to_string(kMaxSpares) + ", not \"" + argv[i] + "\"");
      spares = int(n);
    } else return Usage("unexpected argument " + arg);
  }
  if (socket_path.empty()) return Usage("--socket is required");

  std::string error;
  const int listen_fd = Listen(socket_path, &error);
  if (listen_fd < 0) {
    std::fprintf(stderr, "vc-vmm launcher: %s\n", error.c_str());
    return 1;
  }
  int taken[2];
  if (::pipe2(taken, O_CLOEXEC | O_NONBLOCK) != 0) return std::perror("vc-vmm launcher: pipe"), 1;
  sigset_t sigs;
  sigemptyset(&sigs);
  for (int s : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) sigaddset(&sigs, s);
  sigprocmask(SIG_BLOCK, &sigs, nullptr);
  const int sigfd = ::signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sigfd < 0) return std::perror("vc-vmm launcher: signalfd"), 1;

  std::set<pid_t> waiting;  // spares not yet taken
  auto fork_spare = [&]() {
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(taken[0]);
      ::close(sigfd);
      // A spare runs vc-vmm as a fresh process would: default signal handling, nothing blocked.
      sigset_t none;
      sigemptyset(&none);
      sigprocmask(SIG_SETMASK, &none, nullptr);
      Spare(listen_fd, taken[1]);
    }
    if (pid > 0) waiting.insert(pid);
    return pid > 0;
  };
  for (int i = 0; i < spares; i++)
    if (!fork_spare()) return std::perror("vc-vmm launcher: fork"), 1;
  std::fprintf(stderr, "vc-vmm launcher: serving %s with %d spares\n", socket_path.c_str(), spares);

  for (;;) {
    pollfd fds[2] = {{taken[0], POLLIN, 0}, {sigfd, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) break;
    bool stop = false;
    if (fds[1].revents & POLLIN) {
      signalfd_siginfo si;
      while (::read(sigfd, &si, sizeof si) == sizeof si)
        if (si.ssi_signo != SIGCHLD) stop = true;
      // Reap every child that ended: a spare killed while waiting is replaced; a taken one (or a
      // foreground VM it runs) just ends.
      int status;
      pid_t pid;
      while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0)
        if (waiting.erase(pid) && !stop) fork_spare();  // ended while waiting (killed?)
    }
    if (stop) break;
    if (fds[0].revents & POLLIN) {
      pid_t pid;
      while (::read(taken[0], &pid, sizeof pid) == sizeof pid)
        if (waiting.erase(pid)) fork_spare();  // a taken spare is the client's: never signalled
    }
  }
  ::unlink(socket_path.c_str());
  for (pid_t pid : waiting) ::kill(pid, SIGTERM);
  std::fprintf(stderr, "vc-vmm launcher: stopped\n");
  return 0;
}
