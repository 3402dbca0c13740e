// vc-agent: the guest agent of virtcontainers. As PID 1 of the VM it sets up the guest and serves
// the agent protocol (docs/agent-protocol.md) on virtio-serial and/or vsock. For host tests,
// `vc-agent --serve-unix PATH` serves the same protocol on a Unix socket without any PID-1 setup.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "agent.h"
#include "event_loop.h"
#include "log.h"
#include "mounts.h"
#include "pid1.h"
#include "requests.h"
#include "restore.h"

static constexpr uint32_t kVsockPort = 1024;
static constexpr int kSerialWaitMs = 10000;

// Init must never exit (the kernel would panic): a fatal error powers the VM off instead.
[[noreturn]] static void fatal(const Agent& a, const char* what) {
  logf("fatal: %s: %s", what, strerror(errno));
  if (a.pid1) pid1_power_off();
  _exit(1);
}

static void usage() {
  std::fprintf(stderr,
               "usage: vc-agent --serve-unix PATH [--cgroup-root DIR] [--run-dir DIR]\n"
               "           serve the agent protocol on a Unix socket (host test mode);\n"
               "           containers need --cgroup-root, a cgroup2 directory (created if\n"
               "           missing, removed at exit), and keep their mounts under --run-dir\n"
               "           (default /run/vc) in a mount namespace of the agent's own;\n"
               "           --restore-signal unix: a reset Unix connection counts as a snapshot\n"
               "           restore (the hostname then lives in a UTS namespace of its own, the\n"
               "           machine id in machine-id beside PATH, and the clock is left alone)\n"
               "       vc-agent --version\n"
               "As PID 1 (the VM's /init) it takes no arguments.\n");
}

// Test mode options after --serve-unix PATH; false on anything unknown.
static bool parse_test_options(Agent& a, int argc, char** argv) {
  for (int i = 3; i < argc; i += 2) {
    if (i + 1 >= argc) return false;
    if (std::strcmp(argv[i], "--cgroup-root") == 0) {
      a.containers.cgroup_root = argv[i + 1];
    } else if (std::strcmp(argv[i], "--run-dir") == 0) {
      a.containers.run_dir = argv[i + 1];
    } else if (std::strcmp(argv[i], "--restore-signal") == 0 && std::strcmp(argv[i + 1], "unix") == 0) {
      a.restore.test = true;
    } else {
      return false;
    }
  }
  return true;
}

int main(int argc, char** argv) {
  Agent a;
  a.on_frame = handle_frame;
  a.on_conn_gone = requests_conn_gone;
  a.on_conn_reset = restore_conn_reset;
  // Explicit options win so the test mode also works as PID 1 of a PID namespace; otherwise, as
  // init, argv holds whatever the kernel command line left over and is ignored.
  if (argc >= 2 && std::strcmp(argv[1], "--version") == 0) {
    std::printf("%s\n", kAgentName);
    return 0;
  }
  if (argc >= 3 && std::strcmp(argv[1], "--serve-unix") == 0) {
    a.unix_path = argv[2];
    a.containers.test_mode = true;
    if (!parse_test_options(a, argc, argv)) {
      usage();
      return 2;
    }
  } else if (getpid() == 1) {
    a.pid1 = true;
  } else {
    usage();
    return 2;
  }

  if (a.pid1) {
    pid1_setup();
    a.containers.cgroup_root = "/sys/fs/cgroup";
  } else {
    for (int fd = 0; fd < 3; fd++) {  // see ensure_std_fds() in pid1.cc
      if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) < 0) fatal(a, "open /dev/null");
    }
    mounts_private_namespace();
    if (a.restore.test) {
      if (unshare(CLONE_NEWUTS) != 0) fatal(a, "unshare(CLONE_NEWUTS)");
      std::string dir = a.unix_path.substr(0, a.unix_path.rfind('/') + 1);
      a.restore.machine_id_path = (dir.empty() ? std::string("./") : dir) + "machine-id";
    }
    const std::string& cg = a.containers.cgroup_root;
    if (!cg.empty()) {
      if (mkdir(cg.c_str(), 0755) == 0) {
        a.containers.cgroup_root_created = true;
      } else if (errno != EEXIST) {
        logf("--cgroup-root %s: %s", cg.c_str(), strerror(errno));
      }
    }
  }

  // SIGCHLD (and, in test mode, the termination signals) arrive through a signalfd, so the loop
  // handles them between events instead of in async handlers. Writes to a closed pipe or socket
  // should fail with EPIPE rather than kill the agent.
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  if (!a.pid1) {
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
  }
  if (sigprocmask(SIG_BLOCK, &mask, nullptr) != 0) fatal(a, "sigprocmask");
  a.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (a.sigfd < 0) fatal(a, "signalfd");
  signal(SIGPIPE, SIG_IGN);

  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;  // many connections and processes, 3-4 fds each
    setrlimit(RLIMIT_NOFILE, &rl);
  }

  if (a.pid1) {
    // SCHED_BATCH: a wakeup of the agent (a pipe with a process's output, a channel with input)
    // does not preempt the task running on the guest's vCPU. Without it, on one vCPU the agent
    // took the CPU after every 4 KiB a process wrote and sent it as a frame of its own (≈ 1700
    // STDOUT frames for 8 MiB of `head -c` over vsock); batched, the pipe fills further first.
    // RESET_ON_FORK: the processes the agent starts get the normal policy.
    sched_param none{};
    if (sched_setscheduler(0, SCHED_BATCH | SCHED_RESET_ON_FORK, &none) != 0) logf("SCHED_BATCH: %s", strerror(errno));
    // Listening is cheap and harmless without a device, so it does not depend on the check below
    // (which only decides whether to wait for virtio-serial and when to say "ready").
    int fd = listen_vsock(kVsockPort);
    if (fd >= 0) a.listeners.push_back(Listener{fd, "vsock"});
    a.socket_channel_up = fd >= 0 && vsock_device_present();
    if (fd >= 0 && !a.socket_channel_up) logf("no virtio-vsock device bound: vsock listener idle");
    a.serial.scanning = true;
    a.serial.scan_deadline_ms = monotonic_ms() + kSerialWaitMs;
  } else {
    // Orphaned grandchildren are reaped here as they would be by init in the VM.
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    int fd = listen_unix(a.unix_path);
    if (fd < 0) return 1;
    a.listeners.push_back(Listener{fd, "unix"});
    a.socket_channel_up = true;
  }

  run_event_loop(a);

  if (a.pid1) pid1_power_off();
  containers_cleanup_all(a);
  forwards_cleanup(a);
  process_kill_all(a);
  unlink(a.unix_path.c_str());
  return 0;
}
