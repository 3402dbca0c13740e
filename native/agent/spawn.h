// Starting a program for `exec`: environment and PATH lookup, pipes or a pseudo-terminal, a new
// session, and EXEC_FAILED detection through a CLOEXEC report pipe. The pieces are public because
// container processes (container_spawn.cc) are started the same way, only in other namespaces.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <vector>

// PATH of `exec` processes unless env sets one.
constexpr char kDefaultPath[] = "/usr/sbin:/usr/bin:/sbin:/bin";

struct ExecSpec {
  std::vector<std::string> argv;  // non-empty
  std::vector<std::string> env;   // "K=V", applied over the default PATH
  std::string cwd = "/";
  bool tty = false;
  bool has_size = false;
  unsigned short rows = 0, cols = 0;
};

// The agent's ends of a started child's stdio, all non-blocking and CLOEXEC. For a TTY, stdin and
// stdout are the same pty master fd and there is no stderr (-1).
struct SpawnedChild {
  pid_t pid = 0;
  bool tty = false;
  int stdin_fd = -1, stdout_fd = -1, stderr_fd = -1;
};

// Forks and execs spec. Returns only after the child has exec'ed or failed to: on failure false,
// with *code "EXEC_FAILED" (message names the program, or the cwd, and the errno text) or
// "INTERNAL". A failed child is left for the reaper, which discards its status.
bool spawn_child(const ExecSpec& spec, SpawnedChild* child, std::string* code,
                 std::string* message);

// --- building blocks ---------------------------------------------------------------------------

// Pipes, or a pseudo-terminal, for one child's stdio. Whatever is still open is closed on
// destruction, so an early return in the parent leaks nothing.
class ChildStdio {
 public:
  ChildStdio() = default;
  ChildStdio(const ChildStdio&) = delete;
  ChildStdio& operator=(const ChildStdio&) = delete;
  ~ChildStdio();

  // false with errno set and *what naming the call that failed. A terminal's master comes from
  // ptmx (default /dev/ptmx, the agent's devpts).
  bool open(const ExecSpec& spec, std::string* what, const char* ptmx = nullptr);
  // A terminal that the child opens itself (a container's init, in its own devpts): no pty yet,
  // child_setup() leaves fds 0-2 alone, and adopt_master() takes the master the child sends back.
  void open_tty_later() { tty_ = true; }
  // Takes fd (owned from then on, closed with the rest); false with errno set if it cannot be
  // made non-blocking.
  bool adopt_master(int fd);
  bool tty() const { return tty_; }

  // In the forked child, before execve (no allocation): default signal dispositions and mask, a
  // new session, the terminal as controlling terminal, fds 0-2, every other fd CLOEXEC.
  void child_setup() const;
  // In the parent after the fork: closes the child's ends and hands the parent's ends over.
  void parent_take(SpawnedChild* child);

 private:
  bool tty_ = false;
  int in_r_ = -1, in_w_ = -1, out_r_ = -1, out_w_ = -1, err_r_ = -1, err_w_ = -1;
  int master_ = -1, slave_ = -1;
};

// A new pseudo-terminal from ptmx: *master (CLOEXEC, sized when spec has a size) and *slave
// (CLOEXEC, by TIOCGPTPEER: the master may belong to a devpts instance mounted elsewhere, whose
// /dev/pts/N is not the caller's), *index its N. Async-signal-safe. false with errno set, *what
// naming the failing call and nothing left open.
bool pty_open(const char* ptmx, const ExecSpec& spec, int* master, int* slave, unsigned* index,
              const char** what);
// In a child with a session of its own: slave becomes its controlling terminal and fds 0-2.
void pty_take_as_stdio(int slave);

// default PATH first, then the given entries (a later key replaces an earlier one).
std::vector<std::string> build_env(const char* default_path, const std::vector<std::string>& given);
// Whether env sets key (env entries are "K=V").
bool env_has(const std::vector<std::string>& env, const char* key);
// Paths execve() should try, in order: prog itself when it has a slash, else PATH lookup with the
// process's own PATH (as execvpe would, but with the new environment, not the agent's).
std::vector<std::string> exec_candidates(const std::string& prog,
                                         const std::vector<std::string>& env,
                                         const char* default_path);
// NULL-terminated pointer arrays for execve(); the strings must outlive them.
std::vector<char*> c_strings(const std::vector<std::string>& v);
// Tries every candidate as execvpe does and returns the errno to report once all have failed.
int exec_search(const std::vector<std::string>& candidates, char* const argv[],
                char* const envp[]);

// Reads exactly len bytes unless EOF comes first (or, with timeout_ms >= 0, the time runs out);
// returns the count read.
size_t read_full(int fd, void* buf, size_t len, int timeout_ms = -1);
void close_fd(int* fd);
