// Processes the agent starts for `exec`: spawning (pipes or a pty), moving their output into
// STDOUT/STDERR frames under the protocol's flow control, feeding stdin with STDIN_ACK, keeping
// the output and exit status of detached processes. (Reaping is children_reap(), container.h.)
// A forwarded TCP connection (forward.h) is a process too, without a child: its socket is both
// stdin and stdout, and it "exits" once both directions are done.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "common/json.h"
#include "spawn.h"

struct Agent;
struct Connection;

// A detached process's output is buffered up to this; beyond it the agent stops reading its pipes.
constexpr size_t kDetachedBufferLimit = 1u << 20;
// The host keeps at most this many stdin bytes unacknowledged; the agent tolerates kStdinSlack
// more before it calls the host broken.
constexpr size_t kStdinWindow = 256u << 10;
constexpr size_t kStdinSlack = 1u << 20;
// The waitpid()-style status of a forward that failed (reset, write error): exit code 1.
constexpr int kForwardFailedStatus = 1 << 8;

struct OutStream {
  int fd = -1;
  bool ended = false;  // end-of-stream frame emitted (TTY: stderr starts ended, never sent)
  // TTY only: the terminal's other side is all closed, but the process has not exited yet. The
  // master stays open until it has: closing it hangs the terminal up, and the SIGHUP would kill a
  // process that closed its stdio just before exiting normally.
  bool hung_up = false;
};

struct StdinState {
  int fd = -1;  // pipe write end, or the pty master (shared with stdout) for a TTY
  std::string buf;  // bytes received but not yet written, from buf[off]
  size_t off = 0;
  // Of the buffered bytes, how many the currently attached connection sent (always the tail):
  // only those are acknowledged, since a connection's window says nothing about older bytes.
  size_t from_current = 0;
  bool close_requested = false;  // empty STDIN frame seen: close once buf is written
  bool closed = false;
};

struct Process {
  uint32_t id = 0;
  pid_t pid = 0;
  bool tty = false;
  uint64_t conn = 0;  // attached connection, 0 = detached
  OutStream out, err;
  StdinState in;
  bool exited = false;  // reaped; status is valid
  int status = 0;       // as from waitpid()
  bool exit_queued = false;
  // Frames not yet handed to a connection (detached, or the connection is busy). Order matters:
  // they go out before anything newer of this process.
  std::deque<std::string> pending;
  size_t pending_bytes = 0;
  size_t ack_owed = 0;  // stdin bytes written for the attached connection, not yet acknowledged
  // A forward (forward.h): pid is 0, `sock` owns the socket that in.fd and out.fd name, there is
  // no stderr, and `error` (sent in EXIT) says why the connection failed, if it did.
  bool forward = false;
  int sock = -1;
  std::string error;
};

// Starts a process attached to conn. On failure returns false with *code "EXEC_FAILED" (the
// program could not be executed; message names it and the errno text) or "INTERNAL".
bool process_spawn(Agent& a, Connection& conn, const ExecSpec& spec, Process** out,
                   std::string* code, std::string* message);

// Registers a child started elsewhere (a container's init or exec) as a process attached to conn.
Process* process_adopt(Agent& a, Connection& conn, const SpawnedChild& child);
// Registers a connected TCP socket as a forward attached to conn (it takes the fd).
Process* process_adopt_socket(Agent& a, Connection& conn, int fd);
// A forward fails or is closed by the host: the socket is closed at once, what the host sent and
// the agent still holds is dropped (and acknowledged), the output ends, and EXIT follows with
// `status` (a waitpid()-style status) and `error` ("" for none).
void process_forward_close(Agent& a, Process& p, int status, const std::string& error);
Process* process_find(Agent& a, uint32_t id);
// Whether the process's output may be read now (flow control / detached buffer limit).
bool process_can_read(Agent& a, const Process& p);
void process_on_readable(Agent& a, Process& p, bool stderr_stream);
void process_on_stdin_writable(Agent& a, Process& p);
// A STDIN frame from the attached connection. false: the host overran the stdin window.
bool process_stdin(Process& p, const std::string& data);
void process_attach(Agent& a, Process& p, Connection& c);
void process_detach_all(Agent& a, uint64_t conn);
// Bookkeeping for one reaped child's process (if it is one of ours; unknown pids are discarded).
void process_record_exit(Agent& a, pid_t pid, int status);
// Once per loop iteration: hand buffered output to connections, finish streams of exited
// processes, emit EXIT, send STDIN_ACKs, answer waiters and forget waited-for processes.
void process_service(Agent& a);
// SIGKILLs every process (and its process group) still running; test mode exit.
void process_kill_all(Agent& a);

json::Value exit_status_json(int status);
// The EXIT payload / `wait` answer of p: exit_status_json plus, for a failed forward, "error".
json::Value process_exit_json(const Process& p);
std::string signal_name(int sig);
