// Starting a program for `exec`: environment and PATH lookup, pipes or a pseudo-terminal, a new
// session, and EXEC_FAILED detection through a CLOEXEC report pipe.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

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
