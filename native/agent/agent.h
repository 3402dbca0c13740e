// The agent's whole state, owned by main() and passed by reference: connections to the host,
// processes it started, pending `wait` requests. Single-threaded; see event_loop.cc.
#pragma once

#include <sys/types.h>
#include <time.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "channel.h"
#include "container.h"
#include "forward.h"
#include "process.h"
#include "protocol.h"
#include "reply.h"
#include "restore.h"

constexpr const char kAgentName[] = "vc-agent 0.1.0";

// A `wait` request that arrived before its process exited; answered by process_service().
struct Waiter {
  ReplyTo reply;
  uint32_t process;
};

struct Listener {
  int fd;
  const char* kind;  // "vsock" or "unix", for logs
};

// One virtio-serial port of the agent channel (its virtio-ports name is `agent` or `agent.<N>`).
// Unlike sockets there is one fd for the VM's lifetime; a Connection exists only while the host
// side is open (no POLLHUP), so each host session starts clean. Each port is an independent
// channel: sessions on one port never touch another port's.
struct SerialPort {
  int fd = -1;
  uint64_t conn = 0;  // id of the current Connection, 0 while no host is connected
  std::string dev;    // /dev/vportNpM
  std::string name;   // its virtio-ports name, also the Connection kind in logs
};

// Every agent port found so far, and the scan of /sys/class/virtio-ports that finds them as the
// kernel adds them (a multiport device announces its ports one by one after the driver loads).
struct SerialPorts {
  // A deque: ports are only ever appended, and Connections keep pointers to their names.
  std::deque<SerialPort> ports;
  std::set<std::string> seen;  // virtio-ports entries opened already or not agent ports
  bool scanning = false;
  int64_t scan_deadline_ms = 0;  // fast scanning until then (ports expected), slow afterwards
  int64_t next_scan_ms = 0;
};

struct Agent {
  bool pid1 = false;
  int sigfd = -1;
  std::string unix_path;  // test mode socket, removed on exit
  bool ready_logged = false;
  // A socket channel serves already (test mode's Unix socket, or vsock with a virtio-vsock device
  // behind it), so the virtio-serial port is optional: stop looking for it after the grace time.
  bool socket_channel_up = false;

  std::vector<Listener> listeners;
  SerialPorts serial;
  std::map<uint64_t, std::unique_ptr<Connection>> conns;
  uint64_t next_conn_id = 1;
  // Where a decoded frame from the host goes: handle_frame (requests.h), set by main(), so that
  // the channel below never calls up into the ops.
  void (*on_frame)(Agent& a, Connection& c, const proto::Frame& frame) = nullptr;
  // What a dropped connection leaves behind (requests_conn_gone, requests.h; set by main()).
  void (*on_conn_gone)(Agent& a, uint64_t conn) = nullptr;
  // A host socket failed with ECONNRESET (restore_conn_reset, restore.h; set by main()).
  void (*on_conn_reset)(Agent& a, const char* kind) = nullptr;

  std::map<uint32_t, std::unique_ptr<Process>> procs;
  std::map<pid_t, uint32_t> pids;  // live children we started -> process id
  uint32_t next_proc_id = 1;
  std::vector<Waiter> waiters;
  std::vector<PendingForward> forward_connects;  // `forward`s still connecting (forward.h)

  Containers containers;
  // The pod's network files written by configure_network so far (network.h): file name ->
  // its current generation, <run>/net/gen/<name>.<N>, the source of the binds into containers.
  std::map<std::string, std::string> net_files;
  uint64_t net_generation = 0;

  RestoreState restore;  // snapshot restores seen and applied (restore.h)

  bool shutdown_requested = false;   // `shutdown` op answered; stop serving
  bool terminate_requested = false;  // test mode: SIGTERM/SIGINT
};

inline int64_t monotonic_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}
