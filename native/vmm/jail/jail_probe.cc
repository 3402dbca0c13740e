// vc-vmm jail-probe --jail DIR [jail flags]: the jail step of `vc-vmm run --detach --jail` without
// a VM, so that the jail can be tested (test/native/vmm-jail.test.ts) on a host without KVM. It
// forks into a new pid namespace as `run --detach` does; the child closes what it inherited,
// enters the jail and reports back; the parent prints {"pid":N,"inside":{...}} — the child's host
// pid and what the child saw from inside — and exits. The child then waits for SIGTERM (as pid 1
// of its namespace it gets only signals it waits for) and exits 0.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "common/read_file.h"
#include "common/result.h"
#include "common/write_all.h"
#include "jail/jail.h"

namespace {

using vc::WriteAll;

// What the jailed child sees, as a JSON object: its ids, whether it can still make a process, and
// whether a host path outside the jail resolves.
std::string InsideView() {
  const pid_t child = ::fork();
  const int fork_errno = errno;
  if (child == 0) ::_exit(0);
  if (child > 0) ::waitpid(child, nullptr, 0);
  char host[65] = {};
  ::gethostname(host, sizeof host - 1);
  const bool etc = ::access("/etc", F_OK) == 0;
  return vc::Format("{\"pid\":%d,\"uid\":%u,\"gid\":%u,\"fork\":\"%s\",\"hostname\":\"%s\",\"etcVisible\":%s}", int(::getpid()),
                    unsigned(::getuid()), unsigned(::getgid()), child < 0 ? std::strerror(fork_errno) : "allowed", host,
                    etc ? "true" : "false");
}

}  // namespace

int JailProbeMain(int argc, char** argv) {
  vmm::jail::JailOptions jail;
  std::string error;
  for (int i = 1; i < argc; i++) {
    if (!vmm::jail::TakeJailFlag(argc, argv, &i, &jail, &error)) error = std::string("unexpected argument ") + argv[i];
    if (!error.empty()) break;
  }
  if (error.empty() && !jail.enabled()) error = "--jail is required";
  if (!error.empty()) {
    std::fprintf(stderr, "vc-vmm jail-probe: %s\nusage: vc-vmm jail-probe %s\n", error.c_str(), vmm::jail::kJailUsage);
    return 2;
  }
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  sigprocmask(SIG_BLOCK, &term, nullptr);  // before the fork: no SIGTERM is lost in between
  int ready[2];
  if (::pipe2(ready, O_CLOEXEC) < 0) return std::perror("vc-vmm jail-probe: pipe"), 1;
  vc::Status s = vmm::jail::UnsharePidNamespace();
  if (!s.ok()) return std::fprintf(stderr, "vc-vmm jail-probe: %s\n", s.error().c_str()), 1;
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) return std::perror("vc-vmm jail-probe: fork"), 1;
  if (pid == 0) {
    ::close(ready[0]);
    s = vmm::jail::CloseInheritedFds({ready[1]});
    if (s.ok()) s = vmm::jail::EnterJail(jail);
    if (s.ok()) s = vmm::jail::ForbidNewProcesses();
    if (!s.ok()) {
      WriteAll(ready[1], s.error());
      ::_exit(1);
    }
    WriteAll(ready[1], "ok " + InsideView());
    ::close(ready[1]);
    int sig = 0;
    while (sigwait(&term, &sig) != 0) {
    }
    ::_exit(0);
  }
  ::close(ready[1]);
  std::string answer;
  vc::ReadFdBounded(ready[0], 1 << 16, &answer);
  if (answer.rfind("ok ", 0) != 0) {
    ::waitpid(pid, nullptr, 0);
    std::fprintf(stderr, "vc-vmm jail-probe: %s\n", answer.empty() ? "the child exited before it was jailed" : answer.c_str());
    return 1;
  }
  std::printf("{\"pid\":%d,\"inside\":%s}\n", int(pid), answer.c_str() + 3);
  return 0;
}
