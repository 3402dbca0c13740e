// Containers (docs/agent-protocol.md, "Containers"): their records, lifecycle and the ops that
// drive it. A container is an image mount (shared, refcounted), a writable overlay layer, a cgroup
// and an init process in new namespaces; its init is also an ordinary Process of process.h for
// stdio and EXIT frames, while the container keeps its own exit record until it is deleted.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "binds.h"
#include "cgroup.h"
#include "container_spawn.h"
#include "common/json.h"
#include "mounts.h"
#include "reply.h"

struct Agent;
struct Connection;

// kPaused: running with its cgroup frozen (container_ops.h).
enum class ContainerState { kCreated, kRunning, kPaused, kStopped };

// create_container's arguments, checked.
struct CreateSpec {
  std::string id;
  std::string serial;      // image disk serial, or
  std::string image_path;  // test mode only: a directory as the image
  std::string fstype = "erofs";
  ExecSpec exec;  // env as given
  std::string user = "0:0";
  std::string hostname;
  Limits limits;
  Confinement confine;  // confine.h
  std::vector<BindSpec> binds;
  std::string join_pid;  // joinNamespaces: the container whose pid namespace the init joins
  std::string join_ipc;  // ... and whose IPC namespace (and /dev/shm)
};

struct Container {
  std::string id;
  ContainerState state = ContainerState::kCreated;
  pid_t pid = 0;         // the init, in the agent's pid namespace
  uint32_t process = 0;  // the init's process id
  InitHandle init;       // while created
  InitPlan plan;         // argv, complete env, cwd, user, hostname of the init
  std::vector<std::string> env;  // env as given: what exec_container's env applies over
  std::string image;   // serial of the shared image mount; "" for a test-mode directory
  std::string dir;     // <run>/containers/<id>: the tmpfs with upper, work and rootfs
  std::string cgroup;  // <cgroup root>/vc/<id>
  int cgroup_fd = -1;
  bool exited = false;
  int status = 0;  // as from waitpid(), once exited
  bool oom_killed = false;
  std::vector<BindSpec> binds;  // staged under dir/binds/<n>
};

struct PendingCreate {  // waiting for its image disk to appear
  ReplyTo reply;
  CreateSpec spec;
  int64_t deadline_ms;
};

struct ContainerWaiter {
  ReplyTo reply;
  std::string id;
};

struct Containers {
  std::string run_dir = "/run/vc";
  std::string cgroup_root;  // "" in test mode without --cgroup-root: no containers then
  bool cgroup_root_created = false;
  bool test_mode = false;  // image.path is accepted
  std::map<std::string, std::unique_ptr<Container>> all;
  ImageTable images;
  std::vector<PendingCreate> pending;
  std::vector<ContainerWaiter> waiters;
  int64_t next_scan_ms = 0;
};

// The container ops: each returns its answer. create (image disk not there yet) and wait may
// instead keep `to` and answer later (Reply::deferred()). `c` is the connection that owns the
// process a create or exec starts.
Reply container_create(Agent& a, Connection& c, const ReplyTo& to, const CreateSpec& spec);
Reply container_start(Agent& a, const std::string& id);
Reply container_status(Agent& a, const std::string& id);
Reply container_wait(Agent& a, const ReplyTo& to, const std::string& id);
Reply container_signal(Agent& a, const std::string& id, int sig, bool all);
// exec: env as given (applied over the container's), user "" = the container's, confinement the
// container's with `confine` applied over it.
Reply container_exec(Agent& a, Connection& c, const std::string& id, const ExecSpec& exec,
                     bool has_cwd, const std::string& user, const ConfineOverrides& confine);
Reply container_delete(Agent& a, const std::string& id);
Reply container_list(Agent& a);

// The container `id`, or nullptr.
Container* container_find(Agent& a, const std::string& id);
// "created", "running", "paused", "stopped": as container_status reports it.
const char* container_state_name(ContainerState s);

// Once per loop iteration: creates whose image has appeared (or timed out), `wait_container`s.
void containers_service(Agent& a);
// How long the loop may sleep as far as containers are concerned (-1 = indefinitely).
int containers_poll_timeout(const Agent& a);
// Reaps every child that has exited and records it with its process and, if it is a container's
// init, its container (stopped). Here because containers sit above processes.
void children_reap(Agent& a);
// Test mode exit: kills every container and removes its mounts and cgroup.
void containers_cleanup_all(Agent& a);
