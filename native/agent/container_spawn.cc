#include "container_spawn.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "mounts.h"

namespace {

// Child setup must not hang the agent forever; real setups take milliseconds.
constexpr int kReportTimeoutMs = 10000;

// What a container child writes to its CLOEXEC report pipe: kReady once an init is set up (then
// it waits), or a failure. A successful execve closes the pipe, which reads as EOF.
struct Report {
  int32_t stage;
  int32_t err;
  int32_t pid;  // kSpawned only
  char step[160];
};
// kSpawned: the intermediate of container_exec_spawn() has cloned the process (pid).
enum : int32_t { kReady = 1, kSetupFailed = 2, kExecFailed = 3, kSpawned = 4 };

void report(int fd, int32_t stage, int err, const char* step) {
  Report r{};
  r.stage = stage;
  r.err = err;
  std::snprintf(r.step, sizeof r.step, "%s", step);
  ssize_t n = write(fd, &r, sizeof r);
  (void)n;
}

// An init's kReady, with the master of its terminal (SCM_RIGHTS) when master is not -1.
void report_ready(int fd, int master) {
  Report r{};
  r.stage = kReady;
  iovec iov{&r, sizeof r};
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  if (master >= 0) {
    m.msg_control = control;
    m.msg_controllen = sizeof control;
    cmsghdr* c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &master, sizeof(int));
  }
  ssize_t n = sendmsg(fd, &m, MSG_NOSIGNAL);
  (void)n;
}

// The agent's side of the init's first report: the byte count read (0 on EOF, error or timeout)
// and in *passed the fd that came with it (CLOEXEC), else -1.
size_t read_first_report(int fd, Report* r, int* passed) {
  *passed = -1;
  pollfd p{fd, POLLIN, 0};
  int ready;
  while ((ready = poll(&p, 1, kReportTimeoutMs)) < 0 && errno == EINTR) {
  }
  if (ready != 1) return 0;
  iovec iov{r, sizeof *r};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 4)];
  msghdr m{};
  m.msg_iov = &iov;
  m.msg_iovlen = 1;
  m.msg_control = control;
  m.msg_controllen = sizeof control;
  ssize_t n;
  while ((n = recvmsg(fd, &m, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {
  }
  for (cmsghdr* c = n > 0 ? CMSG_FIRSTHDR(&m) : nullptr; c; c = CMSG_NXTHDR(&m, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; i++) {
      int got;
      std::memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof got);
      if (*passed < 0) {
        *passed = got;
      } else {
        close(got);  // never sent; nothing extra may leak
      }
    }
  }
  return n > 0 ? static_cast<size_t>(n) : 0;
}

[[noreturn]] void child_fail(int fd, int32_t stage, int err, const char* step) {
  report(fd, stage, err, step);
  _exit(stage == kExecFailed ? 127 : 1);
}

// clone3's argument block, declared here because <linux/sched.h> clashes with <sched.h>.
struct CloneArgs {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid,
      set_tid_size, cgroup;
};
constexpr uint64_t kCloneIntoCgroup = 0x200000000ULL;

// fork() into new namespaces and straight into the container's cgroup, so that no instant of the
// child is accounted to (or limited by) the agent's cgroup. With CLONE_PARENT the child is the
// caller's sibling and inherits the caller's exit signal (clone3 requires exit_signal 0 then).
pid_t clone_into(uint64_t flags, int cgroup_fd) {
  CloneArgs ca{};
  ca.flags = flags;
  if (cgroup_fd >= 0) {
    ca.flags |= kCloneIntoCgroup;
    ca.cgroup = static_cast<uint64_t>(cgroup_fd);
  }
  ca.exit_signal = (flags & CLONE_PARENT) ? 0 : SIGCHLD;
  return static_cast<pid_t>(syscall(SYS_clone3, &ca, sizeof ca));
}

// Closes every fd from 3 up except those in keep (at most 3; -1 entries are ignored). An init may
// wait long before execve (and its CLOEXEC), and must not hold the agent's fds meanwhile: a copy
// of another process's stdin pipe would keep that process from ever seeing EOF.
void close_all_but(int keep_a, int keep_b, int keep_c = -1) {
  int keep[3] = {keep_a, keep_b, keep_c};
  std::sort(keep, keep + 3);
  unsigned from = 3;
  for (int k : keep) {
    if (k < 3) continue;
    if (static_cast<unsigned>(k) > from) syscall(SYS_close_range, from, static_cast<unsigned>(k) - 1, 0u);
    from = static_cast<unsigned>(k) + 1;
  }
  syscall(SYS_close_range, from, ~0u, 0u);
}

// The last steps of every container process: confinement and user, working directory, program.
[[noreturn]] void drop_and_exec(int report_fd, const Confinement& conf, const Credentials& cred,
                                const std::string& cwd, const std::vector<std::string>& candidates,
                                char* const argv[], char* const envp[]) {
  char step[160] = "";
  if (!confine_credentials(conf, cred, step, sizeof step)) {
    child_fail(report_fd, kExecFailed, errno, step);
  }
  if (chdir(cwd.c_str()) != 0) {
    std::snprintf(step, sizeof step, "chdir to \"%s\"", cwd.c_str());
    child_fail(report_fd, kExecFailed, errno, step);
  }
  if (!confine_last(conf, step, sizeof step)) child_fail(report_fd, kExecFailed, errno, step);
  child_fail(report_fd, kExecFailed, exec_search(candidates, argv, envp), "");
}

std::string exec_failure(const std::string& prog, const Report& r) {
  std::string msg = "cannot execute \"" + prog + "\": ";
  if (r.step[0]) msg += std::string(r.step) + ": ";
  return msg + strerror(r.err);
}

// Waits for a child that is exiting anyway (it reported a failure, or was just SIGKILLed).
void reap(pid_t pid) {
  while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
  }
}

// The intermediate child (see container_exec_spawn) tells the agent the pid it cloned, and goes.
[[noreturn]] void intermediate_done(int report_fd, pid_t cloned) {
  Report r{};
  r.stage = kSpawned;
  r.pid = cloned;
  ssize_t n = write(report_fd, &r, sizeof r);
  _exit(n == static_cast<ssize_t>(sizeof r) ? 0 : 1);
}

// The agent's side: the pid the intermediate cloned, or 0 with errno and *step set (the
// intermediate's failing step, else `what` with ETIMEDOUT/EPROTO). The intermediate is reaped.
pid_t intermediate_result(pid_t helper, int report_fd, const char* what, std::string* step) {
  Report m{};
  size_t got = read_full(report_fd, &m, sizeof m, kReportTimeoutMs);
  if (got != sizeof m) kill(helper, SIGKILL);  // hung, or died without a word
  reap(helper);
  if (got == sizeof m && m.stage == kSpawned && m.pid > 0) return m.pid;
  if (got == sizeof m && m.stage != kSpawned) {
    errno = m.err;
    *step = m.step;
  } else {
    errno = got == sizeof m ? EPROTO : ETIMEDOUT;
    *step = what;
  }
  return 0;
}

}  // namespace

namespace {

// The namespaces an init joins: fds of the joined inits' namespaces (-1 = make a new one).
struct JoinFds {
  int pid = -1, ipc = -1;
  int shm_mnt = -1;  // the ipc-joined init's mount namespace, where its /dev/shm is
  int own_mnt = -1;  // the agent's, to come back to
  bool any() const { return pid >= 0 || ipc >= 0; }
  void close_all() {
    for (int* fd : {&pid, &ipc, &shm_mnt, &own_mnt}) close_fd(fd);
  }
};

bool open_ns(pid_t of, const char* ns, int* fd, std::string* what) {
  std::string path = "/proc/" + std::to_string(of) + "/ns/" + ns;
  *fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (*fd < 0) *what = "open " + path;
  return *fd >= 0;
}

// In the intermediate of a joining init (fork()ed from the agent; async-signal-safe calls only):
// enters the joined namespaces so that the init cloned next is born in them, and clones the joined
// init's /dev/shm (*shm_tree) from its mount namespace, coming back to the agent's after.
void enter_joined(const JoinFds& j, int report_fd, int* shm_tree) {
  if (j.ipc >= 0) {
    // A mount of another namespace cannot be cloned from outside it (open_tree: EINVAL).
    if (setns(j.shm_mnt, CLONE_NEWNS) != 0) child_fail(report_fd, kSetupFailed, errno, "setns mnt of the joined container");
    *shm_tree = static_cast<int>(
        syscall(SYS_open_tree, AT_FDCWD, "/dev/shm", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC));
    if (*shm_tree < 0) child_fail(report_fd, kSetupFailed, errno, "open_tree the joined container's /dev/shm");
    if (setns(j.own_mnt, CLONE_NEWNS) != 0) child_fail(report_fd, kSetupFailed, errno, "setns back to the agent's mnt");
    if (setns(j.ipc, CLONE_NEWIPC) != 0) child_fail(report_fd, kSetupFailed, errno, "setns ipc");
  }
  // Affects only the children from here on (pid_namespaces(7)).
  if (j.pid >= 0 && setns(j.pid, CLONE_NEWPID) != 0) child_fail(report_fd, kSetupFailed, errno, "setns pid");
}

// In the init, once its /dev is final (after the OCI mounts, which may mount another devpts): a
// terminal from the container's own devpts, as runc makes it: tty(1) names /dev/pts/N, and
// /dev/console is that same slave. The slave becomes the init's controlling terminal and stdio;
// *master is for the agent to relay.
bool init_terminal(const ExecSpec& spec, int* master, char* step, size_t step_len) {
  int slave = -1;
  unsigned index = 0;
  const char* what = "";
  if (!pty_open("/dev/pts/ptmx", spec, master, &slave, &index, &what)) {
    int err = errno;
    std::snprintf(step, step_len, "%s (/dev/pts/ptmx in the container)", what);
    errno = err;
    return false;
  }
  char path[32];
  std::snprintf(path, sizeof path, "/dev/pts/%u", index);
  bool ok = container_bind_console(path, step, step_len);
  if (ok) pty_take_as_stdio(slave);
  int err = errno;
  close(slave);
  if (!ok) close_fd(master);
  errno = err;
  return ok;
}

}  // namespace

bool container_init_spawn(const InitPlan& plan, SpawnedChild* child, InitHandle* handle,
                          std::string* error) {
  std::vector<std::string> candidates =
      exec_candidates(plan.exec.argv[0], plan.exec.env, kContainerPath);
  std::vector<char*> argv = c_strings(plan.exec.argv), envp = c_strings(plan.exec.env);
  ChildStdio io;
  int rep[2] = {-1, -1}, start[2] = {-1, -1}, mid[2] = {-1, -1};
  JoinFds join;
  auto fail = [&](const std::string& what) {
    *error = what + ": " + strerror(errno);
    for (int* fd : {&rep[0], &rep[1], &start[0], &start[1], &mid[0], &mid[1]}) close_fd(fd);
    join.close_all();
    return false;
  };
  std::string what;
  if (plan.join_pid_of > 0 && !open_ns(plan.join_pid_of, "pid", &join.pid, &what)) return fail(what);
  if (plan.join_ipc_of > 0 &&
      (!open_ns(plan.join_ipc_of, "ipc", &join.ipc, &what) ||
       !open_ns(plan.join_ipc_of, "mnt", &join.shm_mnt, &what) ||
       !open_ns(getpid(), "mnt", &join.own_mnt, &what))) {
    return fail(what);
  }
  if (plan.exec.tty) {
    io.open_tty_later();  // the init opens it in the container's devpts: init_terminal()
  } else if (!io.open(plan.exec, &what)) {
    return fail(what);
  }
  // rep is a socket so that the ready report can carry the terminal's master.
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, rep) != 0) return fail("socketpair");
  if (pipe2(start, O_CLOEXEC) != 0) return fail("pipe");
  if (join.any() && pipe2(mid, O_CLOEXEC) != 0) return fail("pipe");

  // The init: PID 1 of its new pid namespace (or PID n of the joined one), in its new mount
  // namespace, a copy of the agent's. shm_tree: the joined init's /dev/shm, or -1.
  auto init_body = [&](int shm_tree) {
    io.child_setup();
    close_all_but(start[0], rep[1], shm_tree);
    char step[160] = "";
    if (!confine_early(plan.confine, step, sizeof step)) child_fail(rep[1], kSetupFailed, errno, step);
    std::vector<int> trees;
    if (!binds_open_trees(plan.dir, plan.binds, &trees, step, sizeof step) ||
        !container_setup_root(plan.rootfs.c_str(), plan.files, shm_tree, step, sizeof step)) {
      child_fail(rep[1], kSetupFailed, errno, step);
    }
    if (sethostname(plan.hostname.data(), plan.hostname.size()) != 0) {
      child_fail(rep[1], kSetupFailed, errno, "sethostname");
    }
    if (!confine_root(plan.confine, step, sizeof step)) child_fail(rep[1], kSetupFailed, errno, step);
    // Binds last: a guest mount such as OCI's tmpfs on /dev would hide one made before it.
    if (!binds_attach(plan.binds, &trees, step, sizeof step)) child_fail(rep[1], kSetupFailed, errno, step);
    int master = -1;
    if (io.tty() && !init_terminal(plan.exec, &master, step, sizeof step)) {
      child_fail(rep[1], kSetupFailed, errno, step);
    }
    report_ready(rep[1], master);
    if (master >= 0) close(master);  // the agent has its own copy now
    char go;
    ssize_t n;
    while ((n = read(start[0], &go, 1)) < 0 && errno == EINTR) {
    }
    if (n != 1) _exit(1);  // the agent gave up on this container
    drop_and_exec(rep[1], plan.confine, plan.cred, plan.exec.cwd, candidates, argv.data(),
                  envp.data());
  };

  // CLONE_NEWCGROUP with CLONE_INTO_CGROUP roots the new cgroup namespace at the container's cgroup:
  // its cgroup2 mount shows its own limits at /sys/fs/cgroup (what runtimes and JVMs read).
  uint64_t flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWCGROUP;
  if (join.pid < 0) flags |= CLONE_NEWPID;
  if (join.ipc < 0) flags |= CLONE_NEWIPC;
  pid_t pid = -1;
  if (!join.any()) {
    pid = clone_into(flags, plan.cgroup_fd);
    if (pid < 0) return fail("clone3 into new namespaces");
    if (pid == 0) init_body(-1);
  } else {
    // As for exec (container_exec_spawn): the agent never changes its own namespaces, so a
    // short-lived intermediate enters the joined ones and clones the init as the agent's child.
    pid_t helper = fork();
    if (helper < 0) return fail("fork");
    if (helper == 0) {
      close(mid[0]);
      int shm_tree = -1;
      enter_joined(join, mid[1], &shm_tree);
      pid_t init = clone_into(flags | CLONE_PARENT, plan.cgroup_fd);
      if (init < 0) child_fail(mid[1], kSetupFailed, errno, "clone3 into the joined namespaces");
      if (init == 0) init_body(shm_tree);
      intermediate_done(mid[1], init);
    }
    close_fd(&mid[1]);
    join.close_all();
    std::string step;
    pid = intermediate_result(helper, mid[0], "enter the joined namespaces", &step);
    close_fd(&mid[0]);
    if (pid == 0) return fail(step);
  }
  join.close_all();

  close_fd(&rep[1]);
  close_fd(&start[0]);
  Report r{};
  int master = -1;
  size_t got = read_first_report(rep[0], &r, &master);
  bool ready = got == sizeof r && r.stage == kReady;
  std::string why = "the container's init did not get ready";
  if (ready && io.tty()) {
    if (master < 0) {
      ready = false;
      why = "the container's init reported ready without its terminal";
    } else if (!io.adopt_master(master)) {  // io owns master now
      ready = false;
      why = std::string("fcntl the terminal's master: ") + strerror(errno);
    }
    master = -1;
  }
  if (master >= 0) close(master);  // sent with a failure report: not ours to keep
  if (!ready) {
    if (got == sizeof r && r.stage != kReady) {
      *error = std::string(r.step) + ": " + strerror(r.err);
    } else {
      *error = why;
    }
    kill(pid, SIGKILL);  // harmless if it is exiting anyway
    reap(pid);
    for (int* fd : {&rep[0], &start[1]}) close_fd(fd);
    return false;
  }
  child->pid = pid;
  io.parent_take(child);
  handle->start_fd = start[1];
  handle->report_fd = rep[0];
  return true;
}

StartResult container_init_start(InitHandle* handle, const InitPlan& plan, std::string* message) {
  StartResult result = StartResult::kNoAnswer;
  char go = 1;
  if (write(handle->start_fd, &go, 1) == 1) {
    Report r{};
    // EOF before a whole report: execve closed the pipe.
    size_t got = read_full(handle->report_fd, &r, sizeof r, kReportTimeoutMs);
    if (got == sizeof r) {
      *message = exec_failure(plan.exec.argv[0], r);
      result = StartResult::kExecFailed;
    } else if (got == 0) {
      pollfd p{handle->report_fd, POLLIN, 0};
      // got == 0 is EOF unless the timeout ran out (then the pipe is still open, not readable).
      result = poll(&p, 1, 0) == 1 ? StartResult::kStarted : StartResult::kNoAnswer;
    }
  }
  if (result == StartResult::kNoAnswer) *message = std::string("no answer from the init: ") + strerror(errno);
  close_fd(&handle->start_fd);
  close_fd(&handle->report_fd);
  return result;
}

bool container_exec_spawn(const ExecPlan& plan, SpawnedChild* child, std::string* code,
                          std::string* message) {
  std::vector<std::string> candidates =
      exec_candidates(plan.exec.argv[0], plan.exec.env, kContainerPath);
  std::vector<char*> argv = c_strings(plan.exec.argv), envp = c_strings(plan.exec.env);
  static const char* const kNs[] = {"ipc", "uts", "cgroup", "mnt", "pid"};
  constexpr int kPidNs = 4;
  int ns[5] = {-1, -1, -1, -1, -1};
  int rep[2] = {-1, -1}, mid[2] = {-1, -1};
  ChildStdio io;
  auto cleanup = [&]() {
    for (int* fd : {&ns[0], &ns[1], &ns[2], &ns[3], &ns[4], &rep[0], &rep[1], &mid[0], &mid[1]}) {
      close_fd(fd);
    }
  };
  auto internal = [&](const std::string& what) {
    *code = "INTERNAL";
    *message = what + ": " + strerror(errno);
    cleanup();
    return false;
  };
  for (int i = 0; i < 5; i++) {
    std::string path = "/proc/" + std::to_string(plan.init_pid) + "/ns/" + kNs[i];
    ns[i] = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (ns[i] < 0) return internal("open " + path);
  }
  std::string what;
  // A terminal from the container's own devpts when it has one (OCI mounts a newinstance there):
  // tty(1) and ttyname find the slave at its /dev/pts/N inside the container.
  std::string ptmx = "/proc/" + std::to_string(plan.init_pid) + "/root/dev/pts/ptmx";
  if (!io.open(plan.exec, &what, access(ptmx.c_str(), R_OK | W_OK) == 0 ? ptmx.c_str() : nullptr)) {
    return internal(what);
  }
  if (pipe2(rep, O_CLOEXEC) != 0 || pipe2(mid, O_CLOEXEC) != 0) return internal("pipe");

  // A pid namespace is entered only by children, through the namespace for children of their
  // parent. The agent never switches its own (every later child of the agent, the next container's
  // init included, would land in this container), and a child cannot switch it back once it is
  // inside (setns to an ancestor pid namespace is EINVAL). So a short-lived intermediate child
  // enters it and clones the process as a sibling (CLONE_PARENT): a child of the agent, reaped and
  // tracked like any other, whose pid the intermediate reports (in the agent's namespace).
  pid_t helper = fork();
  if (helper < 0) return internal("fork");
  if (helper == 0) {  // the intermediate: async-signal-safe calls only
    close(rep[0]);
    close(mid[0]);
    if (setns(ns[kPidNs], CLONE_NEWPID) != 0) child_fail(mid[1], kSetupFailed, errno, "setns pid");
    pid_t pid = clone_into(CLONE_PARENT, plan.cgroup_fd);
    if (pid < 0) child_fail(mid[1], kSetupFailed, errno, "clone3 into the container");
    if (pid == 0) {  // the process, PID n of the container
      close(mid[1]);
      io.child_setup();
      char step[160] = "";
      if (!confine_early(plan.confine, step, sizeof step)) child_fail(rep[1], kSetupFailed, errno, step);
      for (int i = 0; i < kPidNs; i++) {  // ipc, uts, cgroup, then mnt: root and cwd become the container's
        if (setns(ns[i], 0) != 0) {
          std::snprintf(step, sizeof step, "setns %s", kNs[i]);
          child_fail(rep[1], kSetupFailed, errno, step);
        }
      }
      drop_and_exec(rep[1], plan.confine, plan.cred, plan.exec.cwd, candidates, argv.data(),
                    envp.data());
    }
    intermediate_done(mid[1], pid);
  }

  close_fd(&rep[1]);
  close_fd(&mid[1]);
  std::string step;
  pid_t pid = intermediate_result(helper, mid[0], "enter the container's pid namespace", &step);
  if (pid == 0) return internal(step);

  Report r{};
  size_t got = read_full(rep[0], &r, sizeof r, kReportTimeoutMs);
  pollfd eof{rep[0], POLLIN, 0};
  if (got != sizeof r && (got != 0 || poll(&eof, 1, 0) != 1)) {
    kill(pid, SIGKILL);  // neither exec'ed nor failed in time
    reap(pid);
    errno = ETIMEDOUT;
    return internal("exec into the container");
  }
  if (got == sizeof r) {
    reap(pid);
    *code = r.stage == kExecFailed ? "EXEC_FAILED" : "INTERNAL";
    *message = r.stage == kExecFailed ? exec_failure(plan.exec.argv[0], r)
                                      : std::string(r.step) + ": " + strerror(r.err);
    cleanup();
    return false;
  }
  cleanup();
  child->pid = pid;
  io.parent_take(child);
  return true;
}
