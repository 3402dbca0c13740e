// vc-vmm run --config FILE|- [--detach] [--log FILE] [--cgroup DIR]... [--jail DIR ...]
//
// One process per VM. In the foreground it runs the VM until it stops and exits with a code that
// says why (docs/vmm.md). With --detach the parent returns as soon as the VM runs — printing
// {"pid":N} — or fails with the reason, so a caller never has to guess whether a VM came up; the
// child carries on in its own session, outliving the caller, under a `vc-vmm monitor` parent that
// logs how it ended (cmd/monitor.cc). Each --cgroup DIR is joined by the process that builds the
// VM before it builds it, so guest RAM is charged to the group. Every VM thread installs its
// seccomp filter before it serves the guest (seccomp/filters.cc; config "seccomp": false: none).
// With --jail (detached only) the VMM is forked into its own pid namespace and, once the VM is
// built and before its threads start, shuts itself into the jail (jail/jail.h).
//
// vc-vmm restore --state FILE --memory FILE --config FILE|- [run's options]: the same, with the
// VM built from a snapshot (Vm::Restore) instead of a kernel; it comes up running.
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "common/read_file.h"
#include "common/write_all.h"
#include "host/cgroup.h"
#include "jail/jail.h"
#include "seccomp/filters.h"
#include "seccomp/test_hook.h"
#include "vm/control.h"
#include "vm/vm.h"

int MonitorMain(int argc, char** argv);  // cmd/monitor.cc

namespace {

using vc::WriteAll;
using vmm::kvm::StopReason;

constexpr int kExitOk = 0;        // stopped on request, by signal, or the guest reset/powered off
constexpr int kExitFailed = 1;    // the VM could not be built or KVM/the VMM failed
constexpr int kExitUsage = 2;     // bad arguments or config
constexpr int kExitGuestCrash = 3;  // the guest triple-faulted
constexpr size_t kMaxConfigBytes = 16u << 20;  // no config (nor the child's answer) is this large

// Set for `vc-vmm restore`: the snapshot's two files. (snapshot_dir: --snapshot-dir, for both.)
struct RestoreFiles {
  std::string state, memory, snapshot_dir;
  bool enabled() const { return !state.empty(); }
};

const char* g_command = "run";  // or "restore": what messages start with

int Usage(const char* why) {
  std::fprintf(stderr,
               "vc-vmm %s: %s\nusage: vc-vmm run --config FILE|- [--detach] [--log FILE] [--cgroup DIR]... %s\n"
               "       vc-vmm restore --state FILE --memory FILE --config FILE|- [the same options]\n"
               "       (both: [--snapshot-dir DIR], the directory the snapshot op may write, opened before a jail;\n"
               "        [--netns PATH], the network namespace to run in, joined first: the taps are opened there)\n",
               g_command, why, vmm::jail::kJailUsage);
  return kExitUsage;
}

int ExitCodeFor(StopReason r) {
  switch (r) {
    case StopReason::kRequested:
    case StopReason::kSignal:
    case StopReason::kGuestReset:
    case StopReason::kGuestPoweroff: return kExitOk;
    case StopReason::kGuestShutdown: return kExitGuestCrash;
    default: return kExitFailed;
  }
}

// Moves this process into each cgroup directory; "" or the reason it could not.
std::string JoinCgroups(const std::vector<std::string>& dirs) {
  for (const std::string& dir : dirs) {
    vc::host::CgroupError e;
    if (!vc::host::CgroupJoin(dir, 0, &e)) return "cannot join cgroup " + dir + ": " + e.message;
  }
  return "";
}

// Runs the VM in this process. `ready_fd` (or -1) gets "ok\n" once the VM runs, or the error.
int RunVm(const vmm::kvm::VmConfig& config, uint64_t t0, int ready_fd, const vmm::jail::JailOptions& jail,
          const RestoreFiles& restore) {
  // What the caller records: the pid in the host's view, not 1 in the jail's pid namespace.
  const pid_t host_pid = vmm::jail::HostPid();
  auto report_failure = [&](const std::string& msg) {
    std::fprintf(stderr, "vc-vmm: %s\n", msg.c_str());
    if (ready_fd >= 0) WriteAll(ready_fd, msg + "\n");
    return kExitFailed;
  };
  // SIGTERM/SIGINT/SIGHUP become a clean stop through a signalfd on the device thread; blocked
  // before any thread exists so every thread inherits the mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);  // a peer that hangs up is an error on that socket, not our death
  vc::UniqueFd sigfd(::signalfd(-1, &stop_signals, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!sigfd.valid()) return report_failure(std::string("signalfd: ") + std::strerror(errno));
  vc::Status armed = vmm::seccomp::ArmTestViolation();  // test-only (seccomp/test_hook.h)
  if (!armed.ok()) return report_failure(armed.error());
  const vmm::ThreadSetup thread_setup = [&config](vmm::ThreadKind kind) {
    vc::Status s = config.seccomp ? vmm::seccomp::Install(kind) : vc::Status();
    if (s.ok()) vmm::seccomp::OpenTestViolation(kind);
    return s;
  };

  // A helper thread, while the VM is built (much of which waits in KVM): asks KVM for the host's
  // CPUID and MSR lists (~0.1 ms; the vCPUs need them last) and compiles each thread's seccomp
  // filter to BPF (else on the vCPU's way to its first KVM_RUN, ~0.5 ms there). Joined before
  // anything else happens: the jail wants no other thread. Failures are left to the steps that
  // need the results, which then do the work themselves and report it.
  std::thread precompile([&config] {
    (void)vmm::kvm::Vm::PrefetchHostLists();
    if (config.seccomp) (void)vmm::seccomp::Precompile();
  });
  auto created = restore.enabled() ? vmm::kvm::Vm::Restore(restore.state, restore.memory, config)
                                   : vmm::kvm::Vm::Create(config);
  if (precompile.joinable()) precompile.join();
  if (!created.ok()) return report_failure(created.error());
  std::unique_ptr<vmm::kvm::Vm> vm = std::move(created.value());
  const uint64_t t_created = vmm::kvm::MonotonicMicros();

  std::unique_ptr<vmm::kvm::ControlServer> control;
  if (!config.control_socket.empty()) {
    control = std::make_unique<vmm::kvm::ControlServer>(vm.get());
    vmm::kvm::Status s = control->Listen(config.control_socket);
    if (!s.ok()) return report_failure(s.error());
  }
  vmm::kvm::Vm* raw = vm.get();
  int sig = sigfd.get();
  vm->loop()->add(sig, EPOLLIN, [raw, sig](uint32_t) {
    signalfd_siginfo info;
    if (::read(sig, &info, sizeof info) == sizeof info)
      raw->Stop(StopReason::kSignal, std::string("signal ") + strsignal(int(info.ssi_signo)));
  });

  // The one directory a snapshot may go to, opened while the host's paths are in reach.
  if (!restore.snapshot_dir.empty()) {
    vc::UniqueFd dir(::open(restore.snapshot_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dir.valid()) return report_failure("--snapshot-dir " + restore.snapshot_dir + ": " + std::strerror(errno));
    vm->SetSnapshotDir(restore.snapshot_dir, std::move(dir), jail.enabled());
  } else {
    vm->SetSnapshotDir("", vc::UniqueFd(), jail.enabled());
  }
  // Everything of the host the VM needs is open now; the guest has not run yet.
  if (jail.enabled()) {
    vmm::kvm::Status js = vmm::jail::EnterJail(jail);
    if (!js.ok()) return report_failure(js.error());
  }
  vmm::kvm::Status s = vm->Start(thread_setup);
  if (!s.ok()) return report_failure(s.error());
  // Before the main thread's seccomp filter, which allows neither setrlimit nor sleeping.
  if (jail.enabled()) {
    s = vmm::jail::ForbidNewProcessesOnce([raw] { return raw->first_exit_us() != 0 || raw->stop_reason() != StopReason::kNone; });
    if (!s.ok()) return report_failure(s.error());
  }
  if (!(s = thread_setup(vmm::ThreadKind::kMain)).ok()) return report_failure(s.error());
  if (ready_fd >= 0) {
    WriteAll(ready_fd, "ok " + std::to_string(host_pid) + "\n");
    ::close(ready_fd);
  }
  vm->Wait();
  vm->loop()->remove(sig);

  const StopReason reason = vm->stop_reason();
  const uint64_t first = vm->first_exit_us();
  std::fprintf(stderr, "vc-vmm: VM stopped: %s%s%s\n", vmm::kvm::StopReasonName(reason),
               vm->stop_detail().empty() ? "" : ": ", vm->stop_detail().c_str());
  // Wall-clock time of the first exit too, so a caller can measure from its own spawn() (which
  // includes exec and process setup, before t0) to the guest's first instruction that left KVM.
  timespec real;
  clock_gettime(CLOCK_REALTIME, &real);
  const uint64_t now_mono = vmm::kvm::MonotonicMicros();
  const uint64_t first_real = first ? uint64_t(real.tv_sec) * 1000000 + uint64_t(real.tv_nsec) / 1000 - (now_mono - first) : 0;
  std::fprintf(stderr, "vc-vmm: timing: main -> VM built %llu us -> first guest exit %llu us (unix %llu.%06llu)\n",
               (unsigned long long)(t_created - t0), (unsigned long long)(first ? first - t0 : 0),
               (unsigned long long)(first_real / 1000000), (unsigned long long)(first_real % 1000000));
  // Where that time went, step by step (Vm::StartPartsJson), with main -> construction (reading
  // and parsing the config) first.
  json::Value parts = vm->StartPartsJson();
  parts.set("configParse", json::Value::number(double(vm->created_us() - t0)));
  std::fprintf(stderr, "vc-vmm: timing parts (us): %s\n", json::serialize(parts).c_str());
  control.reset();
  vm.reset();
  return ExitCodeFor(reason);
}

}  // namespace

int RunVmMain(int argc, char** argv) {
  const uint64_t t0 = vmm::kvm::MonotonicMicros();
  const char* config_path = nullptr;
  const char* log_path = nullptr;
  bool detach = false;
  std::vector<std::string> cgroups;
  vmm::jail::JailOptions jail;
  std::string jail_error;
  RestoreFiles restore;
  const char* netns = nullptr;
  const bool restoring = std::strcmp(argv[0], "restore") == 0;
  if (restoring) g_command = "restore";
  for (int i = 1; i < argc; i++) {
    const std::string arg = argv[i];
    if (vmm::jail::TakeJailFlag(argc, argv, &i, &jail, &jail_error)) {
      if (!jail_error.empty()) return Usage(jail_error.c_str());
    } else if (arg == "--config" && i + 1 < argc) config_path = argv[++i];
    else if (arg == "--log" && i + 1 < argc) log_path = argv[++i];
    else if (arg == "--detach") detach = true;
    else if (arg == "--snapshot-dir" && i + 1 < argc && argv[i + 1][0] == '/') restore.snapshot_dir = argv[++i];
    else if (restoring && arg == "--state" && i + 1 < argc) restore.state = argv[++i];
    else if (restoring && arg == "--memory" && i + 1 < argc) restore.memory = argv[++i];
    else if (arg == "--cgroup" && i + 1 < argc && argv[i + 1][0] != '\0') cgroups.push_back(argv[++i]);
    else if (arg == "--netns" && i + 1 < argc && argv[i + 1][0] == '/') netns = argv[++i];
    else return Usage(("unexpected argument " + arg).c_str());
  }
  // Before anything else (the config's taps are opened by name in it): what `nsenter --net=PATH`
  // did, without its process — an exec that cost ≈ 0.1 s of a start in the nested harness's L1.
  if (netns) {
    const int ns = ::open(netns, O_RDONLY | O_CLOEXEC);
    const int rc = ns < 0 ? -1 : ::setns(ns, CLONE_NEWNET);
    const int err = errno;
    if (ns >= 0) ::close(ns);
    if (rc != 0) {
      std::fprintf(stderr, "vc-vmm %s: cannot %s network namespace %s: %s\n", g_command, ns < 0 ? "open" : "join", netns, std::strerror(err));
      return kExitFailed;
    }
  }
  if (!config_path) return Usage("--config is required");
  if (restoring && (restore.state.empty() || restore.memory.empty())) return Usage("restore needs --state and --memory");
  if (jail.enabled() && !detach) return Usage("--jail needs --detach (the VMM is forked into its own pid namespace)");

  std::string text;
  int cfd = std::strcmp(config_path, "-") == 0 ? STDIN_FILENO : ::open(config_path, O_RDONLY | O_CLOEXEC);
  if (cfd < 0 || !vc::ReadFdBounded(cfd, kMaxConfigBytes, &text)) {
    std::fprintf(stderr, "vc-vmm run: cannot read config %s: %s\n", config_path, std::strerror(errno));
    return kExitUsage;
  }
  if (cfd != STDIN_FILENO) ::close(cfd);
  auto config = vmm::kvm::ParseVmConfig(text);
  if (!config.ok()) {
    std::fprintf(stderr, "vc-vmm %s: %s\n", g_command, config.error().c_str());
    return kExitUsage;
  }
  if (!detach) {
    const std::string joined = JoinCgroups(cgroups);
    if (!joined.empty()) {
      std::fprintf(stderr, "vc-vmm run: %s\n", joined.c_str());
      return kExitFailed;
    }
    return RunVm(config.value(), t0, -1, jail, restore);
  }

  if (config->serial_output == "-")
    return Usage("config.serialOutput \"-\" (stdout) cannot be used with --detach");
  // The VM must be created in the process that runs it (KVM ties a VM to the creating mm), so
  // fork first and let the child report back through a pipe.
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) < 0) {
    std::perror("vc-vmm run: pipe");
    return kExitFailed;
  }
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("vc-vmm run: fork");
    return kExitFailed;
  }
  if (pid == 0) {
    ::close(ready[0]);
    if (jail.enabled()) {
      std::vector<int> keep{ready[1]};
      for (const auto& net : config->nets)
        if (net.tap_fd >= 0) keep.push_back(net.tap_fd);
      vmm::kvm::Status s = vmm::jail::CloseInheritedFds(keep);
      if (!s.ok()) {
        WriteAll(ready[1], s.error() + "\n");
        ::_exit(kExitFailed);
      }
    }
    ::setsid();
    int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    int log_fd = log_path ? ::open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600) : null_fd;
    if (null_fd < 0 || log_fd < 0) {
      WriteAll(ready[1], std::string("cannot open ") + (log_path ? log_path : "/dev/null") + ": " + std::strerror(errno) + "\n");
      ::_exit(kExitFailed);
    }
    ::dup2(null_fd, STDIN_FILENO);
    ::dup2(null_fd, STDOUT_FILENO);
    ::dup2(log_fd, STDERR_FILENO);
    // Only the standard fds stay: another fd to the same files would show up among the VMM's.
    if (log_fd > STDERR_FILENO && log_fd != null_fd) ::close(log_fd);
    if (null_fd > STDERR_FILENO) ::close(null_fd);
    if (jail.enabled()) {
      vmm::kvm::Status s = vmm::jail::UnsharePidNamespace();  // the VMM forked next is its pid 1
      if (!s.ok()) {
        WriteAll(ready[1], s.error() + "\n");
        ::_exit(kExitFailed);
      }
    }
    const pid_t vmm_pid = ::fork();
    if (vmm_pid == 0) {
      // First thing: nothing of the VM (guest RAM, threads) exists yet, so all of it is charged to
      // the groups (the monitor stays out). A failure is reported like any start error.
      const std::string joined = JoinCgroups(cgroups);
      if (!joined.empty()) {
        WriteAll(ready[1], joined + "\n");
        ::_exit(kExitFailed);
      }
      ::_exit(RunVm(config.value(), t0, ready[1], jail, restore));
    }
    if (vmm_pid < 0) {
      WriteAll(ready[1], std::string("fork: ") + std::strerror(errno) + "\n");
      ::_exit(kExitFailed);
    }
    // This process becomes the VMM's monitor; `ready` is close-on-exec, so the answer is the VMM's.
    const std::string pid_arg = std::to_string(vmm_pid);
    ::execl("/proc/self/exe", "vc-vmm", "monitor", "--pid", pid_arg.c_str(), static_cast<char*>(nullptr));
    std::fprintf(stderr, "vc-vmm run: cannot exec the monitor (%s): monitoring without it\n", std::strerror(errno));
    char* monitor_args[] = {const_cast<char*>("monitor"), const_cast<char*>("--pid"), const_cast<char*>(pid_arg.c_str()), nullptr};
    ::_exit(MonitorMain(3, monitor_args));
  }
  ::close(ready[1]);
  std::string answer;
  vc::ReadFdBounded(ready[0], kMaxConfigBytes, &answer);
  ::close(ready[0]);
  if (answer.rfind("ok ", 0) == 0) {
    std::printf("{\"pid\":%d}\n", std::atoi(answer.c_str() + 3));  // the VMM's, not the monitor's
    return kExitOk;
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!answer.empty() && answer.back() == '\n') answer.pop_back();
  std::fprintf(stderr, "vc-vmm %s: %s\n", g_command, answer.empty() ? "the VMM exited before the VM started" : answer.c_str());
  return kExitFailed;
}
