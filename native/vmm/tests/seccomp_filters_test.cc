// vc-vmm's per-thread seccomp filters (seccomp/filters.cc), without KVM: each filter is installed
// in a forked child, which makes calls its list allows and then one it does not; the parent sees
// how far the child got (one byte per step through a pipe) and how it ended. The filters on real
// VMs, and the pod reported stopped: test/kvm/vmm-seccomp.test.ts, test/nested/kvm-seccomp.test.ts.
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>
#include <functional>
#include <string>

#include "seccomp/filters.h"
#include "tests/check.h"

namespace {

using vmm::ThreadKind;
using vmm::seccomp::Install;

struct ChildEnd {
  std::string steps;  // one byte per step the child passed
  int status = 0;
  bool killed_by_sigsys() const { return WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS; }
  bool exited_ok() const { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }
};

// Forks; the child installs the filter of `kind` (from Precompile's BPF when `precompiled`, as
// vc-vmm run does, else compiled by Install), writes 'i', runs `body` (which reports steps with
// `step`), and exits 0. A failed install exits 10.
ChildEnd RunFiltered(ThreadKind kind, const std::function<void(const std::function<void(char)>& step)>& body,
                     bool precompiled = false) {
  int fds[2];
  ChildEnd end;
  if (::pipe(fds) != 0) return end;
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    if (precompiled && !vmm::seccomp::Precompile().ok()) ::_exit(11);
    if (!Install(kind).ok()) ::_exit(10);
    auto step = [&](char c) { (void)!::write(fds[1], &c, 1); };
    step('i');
    body(step);
    ::_exit(0);
  }
  ::close(fds[1]);
  char buf[64];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0) end.steps.append(buf, size_t(n));
  ::close(fds[0]);
  ::waitpid(pid, &end.status, 0);
  return end;
}

void Execve() {
  char path[] = "/nonexistent/vc-vmm-seccomp-test";
  char* argv[] = {path, nullptr};
  char* envp[] = {nullptr};
  ::syscall(SYS_execve, path, argv, envp);
}

const ThreadKind kKinds[] = {ThreadKind::kMain, ThreadKind::kDevice, ThreadKind::kVcpu};

}  // namespace

VMM_TEST(seccomp_filters_each_kind_builds_and_exports) {
  for (ThreadKind kind : kKinds) {
    auto text = vmm::seccomp::Describe(kind);
    CHECK(text.ok());
    if (!text.ok()) continue;
    // libseccomp's text form: the default action kills the process, and the list allows calls.
    CHECK(text->find("# default action\n  action KILL_PROCESS;") != std::string::npos);
    CHECK(text->find("# invalid architecture action\naction KILL_PROCESS;") != std::string::npos);
    CHECK(text->find("action ALLOW;") != std::string::npos);
    // ioctl only where KVM or a device needs it, and never without a request number check.
    CHECK((text->find("\"ioctl\"") == std::string::npos) == (kind == ThreadKind::kMain));
    CHECK(text->find("\"execve\"") == std::string::npos);
    std::printf("# seccomp: the %s thread's list allows %zu system calls\n", vmm::ThreadKindName(kind),
                vmm::seccomp::AllowedSyscalls(kind));
  }
  CHECK(vmm::seccomp::AllowedSyscalls(ThreadKind::kMain) < vmm::seccomp::AllowedSyscalls(ThreadKind::kVcpu));
  CHECK(vmm::seccomp::AllowedSyscalls(ThreadKind::kVcpu) < vmm::seccomp::AllowedSyscalls(ThreadKind::kDevice));
}

VMM_TEST(seccomp_filters_every_kind_allows_its_calls_and_kills_on_execve) {
  for (ThreadKind kind : kKinds) {
    ChildEnd end = RunFiltered(kind, [](const auto& step) {
      void* p = ::mmap(nullptr, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p != MAP_FAILED && ::munmap(p, 1 << 20) == 0) step('m');
      std::string grown(1 << 16, 'x');  // malloc
      if (grown.size() == 1 << 16) step('a');
      Execve();
      step('!');  // not reached
    });
    CHECK(end.steps == "ima");
    CHECK(end.killed_by_sigsys());
  }
}

// The BPF vc-vmm compiles ahead and installs itself (no_new_privs + seccomp(2)) is the same
// filter: the allowed calls pass, execve kills, and a vCPU thread's ioctl is still checked.
VMM_TEST(seccomp_filters_precompiled_bpf_allows_the_same_and_kills_the_same) {
  for (ThreadKind kind : kKinds) {
    ChildEnd end = RunFiltered(kind, [](const auto& step) {
      std::string grown(1 << 16, 'x');
      if (grown.size() == 1 << 16) step('a');
      Execve();
      step('!');
    }, true);
    CHECK(end.steps == "ia");
    CHECK(end.killed_by_sigsys());
    ChildEnd clean = RunFiltered(kind, [](const auto& step) { step('x'); }, true);
    CHECK(clean.steps == "ix" && clean.exited_ok());
  }
  ChildEnd vcpu = RunFiltered(ThreadKind::kVcpu, [](const auto& step) {
    ::ioctl(0, KVM_GET_API_VERSION, 0);  // a KVM request the vCPU list does not have
    step('!');
  }, true);
  CHECK(vcpu.steps == "i");
  CHECK(vcpu.killed_by_sigsys());
}

// The BPF compiled at build time, with a pid written where bpf_gen.cc recorded it, is exactly
// what libseccomp compiles now for that pid: this process's and others (the jail's pid namespace
// gives vc-vmm a small one).
VMM_TEST(seccomp_filters_built_in_bpf_is_what_libseccomp_compiles_for_the_pid) {
  for (ThreadKind kind : kKinds) {
    const vmm::seccomp::BuiltInBpf* bpf = vmm::seccomp::BuiltInFilter(kind);
    CHECK(bpf != nullptr);
    if (!bpf) continue;
    CHECK(bpf->self_count >= 1);
    for (uint32_t pid : {uint32_t(::getpid()), 1u, 2u, 4194304u}) {
      std::vector<sock_filter> patched(bpf->program, bpf->program + bpf->length);
      for (size_t i = 0; i < bpf->self_count; i++) {
        CHECK(bpf->self_at[i] < bpf->length);
        if (bpf->self_at[i] < bpf->length) patched[bpf->self_at[i]].k = pid;
      }
      auto now = vmm::seccomp::Compile(kind, pid);
      CHECK(now.ok());
      if (!now.ok()) continue;
      CHECK(now->size() == patched.size());
      CHECK(now->size() == patched.size() && std::memcmp(now->data(), patched.data(), patched.size() * sizeof(sock_filter)) == 0);
    }
  }
  // What Precompile costs now against compiling all three (in a child: Precompile keeps its BPF
  // for the process, which later tests' children must not inherit).
  int fds[2];
  CHECK(::pipe(fds) == 0);
  const pid_t child = ::fork();
  if (child == 0) {
    timespec a, b, c;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (ThreadKind kind : kKinds) (void)vmm::seccomp::Compile(kind, uint32_t(::getpid()));
    clock_gettime(CLOCK_MONOTONIC, &b);
    const bool ok = vmm::seccomp::Precompile().ok();
    clock_gettime(CLOCK_MONOTONIC, &c);
    const long us[2] = {(b.tv_sec - a.tv_sec) * 1000000L + (b.tv_nsec - a.tv_nsec) / 1000,
                        (c.tv_sec - b.tv_sec) * 1000000L + (c.tv_nsec - b.tv_nsec) / 1000};
    (void)!::write(fds[1], us, sizeof us);
    ::_exit(ok ? 0 : 1);
  }
  ::close(fds[1]);
  long us[2] = {-1, -1};
  CHECK(::read(fds[0], us, sizeof us) == sizeof us);
  ::close(fds[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  std::printf("# seccomp: all three filters compiled by libseccomp %ld us, readied from the built-in BPF %ld us\n", us[0], us[1]);
}

VMM_TEST(seccomp_filters_without_a_forbidden_call_the_child_exits_normally) {
  for (ThreadKind kind : kKinds) {
    ChildEnd end = RunFiltered(kind, [](const auto& step) { step('x'); });
    CHECK(end.steps == "ix");
    CHECK(end.exited_ok());
  }
}

VMM_TEST(seccomp_filters_vcpu_ioctl_only_by_kvm_request_number) {
  ChildEnd end = RunFiltered(ThreadKind::kVcpu, [](const auto& step) {
    // KVM_RUN is on the list: on a bad fd it fails with EBADF instead of killing.
    if (::ioctl(-1, KVM_RUN, 0) < 0 && errno == EBADF) step('r');
    winsize ws;
    ::ioctl(STDIN_FILENO, TIOCGWINSZ, &ws);  // a terminal ioctl is not
    step('!');
  });
  CHECK(end.steps == "ir");
  CHECK(end.killed_by_sigsys());
}

VMM_TEST(seccomp_filters_device_opens_without_creating) {
  ChildEnd end = RunFiltered(ThreadKind::kDevice, [](const auto& step) {
    int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);  // attachBlock's open
    if (fd >= 0) step('o');
    ::open("/tmp/vc-vmm-seccomp-never-created", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    step('!');
  });
  CHECK(end.steps == "io");
  CHECK(end.killed_by_sigsys());
  CHECK(::access("/tmp/vc-vmm-seccomp-never-created", F_OK) != 0);
}

VMM_TEST(seccomp_filters_no_thread_maps_executable_memory) {
  for (ThreadKind kind : kKinds) {
    ChildEnd end = RunFiltered(kind, [](const auto& step) {
      ::mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      step('!');
    });
    CHECK(end.steps == "i");
    CHECK(end.killed_by_sigsys());
  }
}

VMM_TEST(seccomp_filters_sockets_unix_only_and_not_on_main) {
  ChildEnd device = RunFiltered(ThreadKind::kDevice, [](const auto& step) {
    if (::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0) >= 0) step('u');
    ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    step('!');
  });
  CHECK(device.steps == "iu");
  CHECK(device.killed_by_sigsys());
  ChildEnd main = RunFiltered(ThreadKind::kMain, [](const auto& step) {
    ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    step('!');
  });
  CHECK(main.steps == "i");
  CHECK(main.killed_by_sigsys());
}

// What installing costs a thread (built and loaded on the spot, as each VMM thread does).
VMM_TEST(seccomp_filters_install_cost) {
  for (ThreadKind kind : kKinds) {
    int fds[2];
    CHECK(::pipe(fds) == 0);
    const pid_t pid = ::fork();
    if (pid == 0) {
      timespec a, b;
      clock_gettime(CLOCK_MONOTONIC, &a);
      const bool ok = Install(kind).ok();
      clock_gettime(CLOCK_MONOTONIC, &b);
      const long us = (b.tv_sec - a.tv_sec) * 1000000L + (b.tv_nsec - a.tv_nsec) / 1000;
      (void)!::write(fds[1], &us, sizeof us);
      ::_exit(ok ? 0 : 1);
    }
    ::close(fds[1]);
    long us = -1;
    CHECK(::read(fds[0], &us, sizeof us) == sizeof us);
    ::close(fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    std::printf("# seccomp: installing the %s thread's filter took %ld us\n", vmm::ThreadKindName(kind), us);
  }
}
