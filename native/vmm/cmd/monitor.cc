// vc-vmm monitor --pid PID (internal: run --detach starts it, nobody else should)
//
// The parent of a detached VMM, so that how the VMM ended is known: a VMM killed by a signal
// cannot say so itself (a seccomp filter's SIGSYS ends the whole process at once), and only its
// parent can wait for it. `run --detach` forks this process, which forks the VMM and then execs
// itself as `vc-vmm monitor` (so its command line no longer names the pod's config, and it stays
// outside the pod's cgroup, which only the VMM joins). It writes one line to its stderr, the VMM's
// log, and reaps the VMM only after that line is written: once the VMM's pid is gone, the line is
// there (src/hypervisor/kvm/kvm.ts exitDetail reads it).
#include <signal.h>
#include <sys/wait.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

int MonitorMain(int argc, char** argv) {
  char* end = nullptr;
  const long pid = argc == 3 && std::strcmp(argv[1], "--pid") == 0 ? std::strtol(argv[2], &end, 10) : 0;
  if (pid <= 0 || !end || *end != '\0') {
    std::fprintf(stderr, "usage: vc-vmm monitor --pid PID (internal to vc-vmm run --detach)\n");
    return 2;
  }
  siginfo_t info;
  std::memset(&info, 0, sizeof info);
  while (::waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) < 0) {
    if (errno == EINTR) continue;
    std::fprintf(stderr, "vc-vmm monitor: cannot wait for the VMM (pid %ld): %s\n", pid, std::strerror(errno));
    return 1;
  }
  if (info.si_code == CLD_KILLED || info.si_code == CLD_DUMPED) {
    const int sig = info.si_status;
    std::fprintf(stderr, "vc-vmm monitor: the VMM (pid %ld) was killed by signal %d (SIG%s)%s\n", pid, sig,
                 sigabbrev_np(sig) ? sigabbrev_np(sig) : "?",
                 sig == SIGSYS ? ": a system call its seccomp filter does not allow" : "");
  } else {
    std::fprintf(stderr, "vc-vmm monitor: the VMM (pid %ld) exited with code %d\n", pid, info.si_status);
  }
  int status;
  while (::waitpid(pid_t(pid), &status, 0) < 0 && errno == EINTR) {
  }
  return 0;
}
