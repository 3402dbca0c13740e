#include "seccomp/test_hook.h"

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace vmm::seccomp {

namespace {

bool armed = false;
ThreadKind armed_kind = ThreadKind::kMain;

void Violate(int) {
  // Not on any list: the filter of the thread this runs on ends the process here.
  static char path[] = "/nonexistent/vc-vmm-seccomp-test";
  char* argv[] = {path, nullptr};
  char* envp[] = {nullptr};
  ::syscall(SYS_execve, path, argv, envp);
  static const char kSurvived[] = "vc-vmm: seccomp test hook: execve was not stopped (filters off)\n";
  (void)!::write(STDERR_FILENO, kSurvived, sizeof kSurvived - 1);
}

}  // namespace

vc::Status ArmTestViolation() {
  const char* value = std::getenv(kTestViolationEnv);
  if (!value) return vc::Status();
  const ThreadKind kinds[] = {ThreadKind::kMain, ThreadKind::kDevice, ThreadKind::kVcpu};
  bool known = false;
  for (ThreadKind k : kinds)
    if (std::strcmp(value, ThreadKindName(k)) == 0) armed_kind = k, known = true;
  if (!known)
    return vc::Status::Error(std::string(kTestViolationEnv) + " \"" + value + "\" is not main, device or vcpu");
  sigset_t usr2;
  sigemptyset(&usr2);
  sigaddset(&usr2, SIGUSR2);
  pthread_sigmask(SIG_BLOCK, &usr2, nullptr);
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_handler = Violate;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR2, &sa, nullptr);
  armed = true;
  return vc::Status();
}

void OpenTestViolation(ThreadKind kind) {
  if (!armed || kind != armed_kind) return;
  sigset_t usr2;
  sigemptyset(&usr2);
  sigaddset(&usr2, SIGUSR2);
  pthread_sigmask(SIG_UNBLOCK, &usr2, nullptr);
}

}  // namespace vmm::seccomp
