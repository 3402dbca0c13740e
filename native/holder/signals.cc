#include "signals.h"

#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace holder {

namespace {

// Not forwarded: SIGCHLD (the holder has no children; its own business), SIGPIPE (a write to a
// closed stdout), SIGWINCH (a resize, sent as RESIZE); the synchronous faults, which mean the
// holder itself crashed and must still kill it; and SIGKILL/SIGSTOP, which cannot be caught.
bool Forwarded(int sig) {
  switch (sig) {
    case SIGCHLD: case SIGPIPE: case SIGWINCH:
    case SIGSEGV: case SIGBUS: case SIGFPE: case SIGILL: case SIGTRAP: case SIGSYS:
    case SIGKILL: case SIGSTOP:
      return false;
    default:
      return true;
  }
}

// Whether the default action of `sig` ends the process (rather than ignoring it or stopping it).
bool DefaultTerminates(int sig) {
  switch (sig) {
    case SIGCHLD: case SIGCONT: case SIGURG: case SIGWINCH:
    case SIGSTOP: case SIGTSTP: case SIGTTIN: case SIGTTOU:
      return false;
    default:
      return sig >= 1 && sig <= SIGRTMAX;
  }
}

}  // namespace

vc::Result<int> TakeOverSignals(bool tty) {
  signal(SIGPIPE, SIG_IGN);
  sigset_t set;
  sigemptyset(&set);
  // sigaddset refuses the C library's internal real-time signals; those stay unforwarded.
  for (int sig = 1; sig <= SIGRTMAX; sig++) {
    if (Forwarded(sig)) sigaddset(&set, sig);
  }
  if (tty) sigaddset(&set, SIGWINCH);
  if (sigprocmask(SIG_BLOCK, &set, nullptr) != 0) {
    return vc::Status::Error(vc::Format("sigprocmask: %s", std::strerror(errno)));
  }
  int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) return vc::Status::Error(vc::Format("signalfd: %s", std::strerror(errno)));
  return fd;
}

void DieBySignal(int sig) {
  if (DefaultTerminates(sig)) {
    // The container dumped core (perhaps); the holder has nothing worth a core file.
    rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    signal(sig, SIG_DFL);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, sig);
    sigprocmask(SIG_UNBLOCK, &one, nullptr);
    raise(sig);
  }
  _exit(128 + sig);
}

}  // namespace holder
