// Processes inside containers: the init, cloned into new mount/pid/uts/ipc namespaces (or into
// another container's pid and ipc namespaces, when it joins them) and its cgroup, set up and
// stopped before execve until the container is started; and processes exec'd into a running
// container's namespaces.
#pragma once

#include <sys/types.h>

#include <string>

#include "binds.h"
#include "confine.h"
#include "mounts.h"
#include "spawn.h"
#include "users.h"

// PATH of container processes unless their env sets one.
constexpr char kContainerPath[] =
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

struct InitPlan {
  ExecSpec exec;  // env complete (defaults applied), cwd inside the container
  std::string rootfs;  // the overlay mount, as the agent sees it
  std::string hostname;
  Credentials cred;
  int cgroup_fd = -1;
  std::vector<FileBind> files;  // the pod's network files, bound read-only (mounts.h)
  Confinement confine;          // confine.h
  std::string dir;               // the container's tmpfs, which holds the binds' staging
  std::vector<BindSpec> binds;   // bound after pivot_root (binds.h)
  // Another container's init (in the agent's pid namespace) whose pid namespace this init joins
  // instead of making one (it is then not PID 1 there); 0 = a new one.
  pid_t join_pid_of = 0;
  // Likewise for the IPC namespace; the init's /dev/shm is then that init's /dev/shm too.
  pid_t join_ipc_of = 0;
};

// The agent's hold on an init that waits before execve.
struct InitHandle {
  int start_fd = -1;   // a byte (or closing it) lets the init go on
  int report_fd = -1;  // EOF once the init has exec'ed; a report if it failed
};

// Clones the init and waits until it has set up its root and stopped. false with *error =
// "step: errno text"; the child is gone then.
bool container_init_spawn(const InitPlan& plan, SpawnedChild* child, InitHandle* handle,
                          std::string* error);

enum class StartResult { kStarted, kExecFailed, kNoAnswer };
// Lets the init execve and waits for the outcome; *message names the program and the errno text
// when it failed (the init then exits 127). Closes the handle's fds.
StartResult container_init_start(InitHandle* handle, const InitPlan& plan, std::string* message);

struct ExecPlan {
  ExecSpec exec;  // env complete, cwd inside the container
  pid_t init_pid = 0;
  Credentials cred;
  int cgroup_fd = -1;
  Confinement confine;  // the container's, with the exec's overrides
};

// Starts a process in the namespaces of init_pid and in the cgroup. false with *code
// "EXEC_FAILED" (message names the program and the errno text) or "INTERNAL".
bool container_exec_spawn(const ExecPlan& plan, SpawnedChild* child, std::string* code,
                          std::string* message);
