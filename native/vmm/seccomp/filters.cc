// The allow-lists of vc-vmm's threads. Every entry says why that thread makes the call; argument
// checks narrow a call where the arguments say what it is for (an ioctl's request number, mmap
// without PROT_EXEC, open without O_CREAT). Anything not listed ends the whole process with
// SIGSYS (SCMP_ACT_KILL_PROCESS), as does a call of another architecture (i386 `int 0x80`, x32).
//
// What the lists leave out, on purpose: execve and fork/clone (no thread or process is made after
// the filters are on: all threads exist by then), open of anything but an attached disk, ptrace,
// mount and namespace calls, setuid and friends, KVM ioctls that change the VM (memory slots,
// irqchip, new vCPUs), socket families other than AF_UNIX, executable mappings.
//
// To change a list: add the entry with its reason here, run the unit tests (seccomp_*) and the
// built-in VMM's pod tests (test/nested), and update the counts in docs/vmm.md.
#include "seccomp/filters.h"

#include <linux/filter.h>
#include <linux/fs.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <vector>

#include "common/fd.h"
#include "kvm/kvm.h"

namespace vmm::seccomp {

namespace {

using vc::Format;
using vc::Result;
using vc::Status;

// One allowed call. `rules` empty: any arguments; otherwise the call is allowed when all the
// comparisons of any one rule hold.
struct Allow {
  int nr;
  std::vector<std::vector<scmp_arg_cmp>> rules;
  const char* why;
};

Allow Any(int nr, const char* why) { return {nr, {}, why}; }

// The low 32 bits of args[arg] are one of `values` (ioctl request numbers are 32-bit to the
// kernel, whatever the upper half holds).
Allow OneOf(int nr, unsigned arg, std::vector<uint64_t> values, const char* why) {
  Allow a{nr, {}, why};
  for (uint64_t v : values) a.rules.push_back({SCMP_CMP(arg, SCMP_CMP_MASKED_EQ, 0xffffffffu, v)});
  return a;
}

// No bit of `mask` is set in args[arg].
Allow Without(int nr, unsigned arg, uint64_t mask, const char* why) {
  return {nr, {{SCMP_CMP(arg, SCMP_CMP_MASKED_EQ, mask, 0)}}, why};
}

// What the C and C++ runtime needs on every thread: locks, memory, logging, thread and process
// exit, and the vCPU kick.
std::vector<Allow> Common(uint64_t self) {
  return {
      Any(SCMP_SYS(futex), "mutexes and condition variables (RunControl, device locks), thread join"),
      Any(SCMP_SYS(restart_syscall), "a futex wait interrupted by the kick signal carries on"),
      Without(SCMP_SYS(mmap), 2, PROT_EXEC, "malloc's large blocks and thread arenas; never executable"),
      Without(SCMP_SYS(mprotect), 2, PROT_EXEC, "malloc makes reserved arena pages usable; never executable"),
      Any(SCMP_SYS(munmap), "malloc returns large blocks"),
      Any(SCMP_SYS(mremap), "realloc of a large block"),
      Any(SCMP_SYS(madvise), "malloc trims freed memory; a thread's stack is released as it ends"),
      Any(SCMP_SYS(brk), "malloc's main heap"),
      Any(SCMP_SYS(write), "log lines to stderr; interrupt and stop eventfds; the serial console file"),
      Any(SCMP_SYS(close), "the fds of connections, disks and taps a thread ends"),
      Any(SCMP_SYS(epoll_ctl), "EventLoop add/modify/remove, called from any thread"),
      Any(SCMP_SYS(clock_gettime), "timestamps (rate limiters, first exit) when the vDSO is not used"),
      Any(SCMP_SYS(rt_sigreturn), "return from the vCPU kick handler"),
      Any(SCMP_SYS(rt_sigprocmask), "pthread_kill blocks signals around its tgkill"),
      Any(SCMP_SYS(getpid), "pthread_kill names this process to tgkill"),
      Any(SCMP_SYS(gettid), "pthread_kill of the calling thread (a vCPU stopping the VM kicks itself too)"),
      {SCMP_SYS(tgkill),
       {{SCMP_A0(SCMP_CMP_EQ, self), SCMP_A2(SCMP_CMP_EQ, uint64_t(SIGRTMIN))},
        {SCMP_A0(SCMP_CMP_EQ, self), SCMP_A2(SCMP_CMP_EQ, uint64_t(SIGABRT))}},
       "only this process: the kick that takes a vCPU out of KVM_RUN (Stop, Pause from any thread), abort"},
      Any(SCMP_SYS(exit), "a thread ends"),
      Any(SCMP_SYS(exit_group), "the process ends"),
  };
}

// Moving bytes between guest buffers and fds opened before the filters: virtio-blk disks, taps,
// vsock connections, timers. The device thread does this for queue notifications; a vCPU thread
// does it too when the guest's DRIVER_OK write makes the device look at buffers it queued earlier
// (devices/virtio/mmio.cc write_status), and for rx the guest refills.
std::vector<Allow> DeviceIo() {
  return {
      Any(SCMP_SYS(readv), "a tap's frames and a vsock connection's bytes into guest buffers"),
      Any(SCMP_SYS(writev), "guest frames to a tap"),
      Any(SCMP_SYS(preadv), "virtio-blk reads of the disk file"),
      Any(SCMP_SYS(pwritev), "virtio-blk writes of the disk file"),
      Any(SCMP_SYS(fdatasync), "virtio-blk flush"),
      Any(SCMP_SYS(sendto), "vsock bytes to a host connection (send)"),
      Any(SCMP_SYS(sendmsg), "vsock bytes from several guest buffers in one call"),
      Any(SCMP_SYS(recvfrom), "a vsock host connection's bytes (recv)"),
      Any(SCMP_SYS(shutdown), "a vsock half-close (the guest's SHUTDOWN)"),
      OneOf(SCMP_SYS(socket), 0, {AF_UNIX}, "a guest connection to host port P connects to <uds>_P: Unix sockets only"),
      Any(SCMP_SYS(connect), "that connection"),
      Any(SCMP_SYS(timerfd_settime), "the net rate limiter's and the vsock backend's timers"),
      Any(SCMP_SYS(getrandom), "virtio-rng fills the guest's buffers"),
  };
}

std::vector<Allow> ListFor(ThreadKind kind, uint64_t self = uint64_t(::getpid())) {
  std::vector<Allow> list = Common(self);
  auto add = [&list](std::vector<Allow> more) { list.insert(list.end(), more.begin(), more.end()); };
  switch (kind) {
    case ThreadKind::kMain:
      // After Start it only waits for the VM to stop, then logs why and tears the VM down.
      add({
          Any(SCMP_SYS(unlink), "the control and vsock sockets are removed at teardown"),
          Any(SCMP_SYS(timerfd_settime), "the vsock backend's reset at teardown re-arms its timer"),
      });
      break;
    case ThreadKind::kDevice:
      add(DeviceIo());
      add({
          Any(SCMP_SYS(epoll_wait), "the event loop waits for its fds"),
          Any(SCMP_SYS(epoll_pwait), "the same, as some libcs issue it"),
          Any(SCMP_SYS(read), "eventfds (queue notify, stop), the signalfd, timerfds, control requests"),
          Any(SCMP_SYS(accept4), "control-socket clients and host connections to the vsock socket"),
          Without(SCMP_SYS(openat), 2, O_CREAT | O_TMPFILE, "attachBlock opens the disk file it is given; never creates one"),
          Any(SCMP_SYS(newfstatat), "attachBlock checks the disk is a file or a block device, and its size"),
          Any(SCMP_SYS(fstat), "the same, as older libcs issue it"),
          OneOf(SCMP_SYS(ioctl), 1, {TUNSETOFFLOAD, BLKGETSIZE64},
                "a tap's offloads follow the features the guest accepted; an attached block device's size"),
          // The `snapshot` control op (vm/snapshot.cc) runs here, with the vCPUs parked.
          OneOf(SCMP_SYS(ioctl), 1, {KVM_GET_IRQCHIP, KVM_GET_PIT2, KVM_GET_CLOCK, KVM_CHECK_EXTENSION},
                "snapshot: the VM's irqchip, PIT and kvmclock; the XSAVE area's size for the vCPUs"),
          {SCMP_SYS(openat), {{SCMP_A2(SCMP_CMP_MASKED_EQ, uint64_t(O_CREAT | O_EXCL | O_TMPFILE), uint64_t(O_CREAT | O_EXCL))}},
           "snapshot: creates the state and memory files in the caller's empty dir (O_EXCL: never an existing file)"},
          Any(SCMP_SYS(getdents64), "snapshot: the dir must be empty"),
          Any(SCMP_SYS(fsync), "snapshot: both files and the dir are synced before the reply says they are written"),
          Any(SCMP_SYS(unlinkat), "snapshot: a failed snapshot removes what it wrote"),
      });
      break;
    case ThreadKind::kVcpu:
      add(DeviceIo());
      add({
          OneOf(SCMP_SYS(ioctl), 1, {KVM_RUN, KVM_GET_REGS, KVM_GET_SREGS, TUNSETOFFLOAD},
                "run the vCPU; its registers for a failure's message; tap offloads at the guest's DRIVER_OK or reset"),
          OneOf(SCMP_SYS(ioctl), 1,
                {KVM_GET_FPU, kvm::kKvmGetXsave, kvm::kKvmGetXsave2, KVM_GET_XCRS, kvm::kKvmGetMsrs, KVM_GET_LAPIC,
                 KVM_GET_MP_STATE, KVM_GET_VCPU_EVENTS, KVM_GET_DEBUGREGS, KVM_GET_TSC_KHZ},
                "snapshot: each vCPU reads its own state while parked (vm/snapshot.cc)"),
      });
      break;
  }
  return list;
}

// libseccomp returns -errno.
Status Failed(const char* what, ThreadKind kind, int rc) {
  return Status::Error(Format("seccomp filter of the %s thread: %s: %s", ThreadKindName(kind), what, std::strerror(-rc)));
}

// The filter of `kind`, ready to load or export; the caller releases it.
Result<scmp_filter_ctx> Build(ThreadKind kind, uint64_t self = uint64_t(::getpid())) {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
  if (!ctx) return Status::Error(Format("seccomp filter of the %s thread: seccomp_init failed", ThreadKindName(kind)));
  int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
  if (rc < 0) {
    seccomp_release(ctx);
    return Failed("bad-architecture action", kind, rc);
  }
  for (const Allow& a : ListFor(kind, self)) {
    if (a.rules.empty()) rc = seccomp_rule_add_exact_array(ctx, SCMP_ACT_ALLOW, a.nr, 0, nullptr);
    for (const auto& rule : a.rules) {
      rc = seccomp_rule_add_exact_array(ctx, SCMP_ACT_ALLOW, a.nr, unsigned(rule.size()), rule.data());
      if (rc < 0) break;
    }
    if (rc < 0) {
      char* name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, a.nr);
      Status s = Failed(name ? name : "rule", kind, rc);
      free(name);
      seccomp_release(ctx);
      return s;
    }
  }
  return ctx;
}

}  // namespace

namespace {

// Each kind's filter as compiled BPF (Precompile), or empty: compiled at Install then.
std::vector<sock_filter> g_compiled[3];

std::vector<sock_filter>& CompiledFor(ThreadKind kind) { return g_compiled[size_t(kind)]; }

// The built-in BPF of `kind` with this process's pid written where the tgkill check wants it.
std::vector<sock_filter> FromBuiltIn(const BuiltInBpf& bpf, uint32_t self) {
  std::vector<sock_filter> prog(bpf.program, bpf.program + bpf.length);
  for (size_t i = 0; i < bpf.self_count; i++) prog[bpf.self_at[i]].k = self;
  return prog;
}

}  // namespace

// The BPF libseccomp would load for `kind`, through a memfd (libseccomp 2.5 exports only to an fd).
Result<std::vector<sock_filter>> Compile(ThreadKind kind, uint64_t self) {
  auto ctx = Build(kind, self);
  if (!ctx.ok()) return ctx.status();
  vc::UniqueFd fd(::memfd_create("vc-vmm-seccomp", MFD_CLOEXEC));
  int rc = fd.valid() ? seccomp_export_bpf(ctx.value(), fd.get()) : -errno;
  seccomp_release(ctx.value());
  if (rc < 0) return Failed("export", kind, rc);
  const off_t bytes = ::lseek(fd.get(), 0, SEEK_END);
  if (bytes <= 0 || bytes % off_t(sizeof(sock_filter)) != 0 || bytes > 65536)
    return Status::Error(Format("seccomp filter of the %s thread: exported %lld bytes of BPF", ThreadKindName(kind), (long long)bytes));
  std::vector<sock_filter> prog(size_t(bytes) / sizeof(sock_filter));
  if (::pread(fd.get(), prog.data(), size_t(bytes), 0) != bytes) return Failed("read back", kind, -EIO);
  return prog;
}

Status Precompile() {
  const uint64_t self = uint64_t(::getpid());
  for (ThreadKind kind : {ThreadKind::kMain, ThreadKind::kDevice, ThreadKind::kVcpu}) {
    if (const BuiltInBpf* bpf = BuiltInFilter(kind)) {
      CompiledFor(kind) = FromBuiltIn(*bpf, uint32_t(self));
      continue;
    }
    auto prog = Compile(kind, self);
    if (!prog.ok()) return prog.status();
    CompiledFor(kind) = std::move(prog.value());
  }
  return Status();
}

Status Install(ThreadKind kind) {
  std::vector<sock_filter>& prog = CompiledFor(kind);
  if (prog.empty()) {
    auto ctx = Build(kind);
    if (!ctx.ok()) return ctx.status();
    const int rc = seccomp_load(ctx.value());
    seccomp_release(ctx.value());
    return rc < 0 ? Failed("load", kind, rc) : Status();
  }
  // What seccomp_load does with libseccomp's default attributes: no_new_privs, then the filter
  // on this thread alone (no flags).
  sock_fprog fprog{uint16_t(prog.size()), prog.data()};
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return Failed("no_new_privs", kind, -errno);
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) < 0) return Failed("load", kind, -errno);
  return Status();
}

Result<std::string> Describe(ThreadKind kind) {
  auto ctx = Build(kind);
  if (!ctx.ok()) return ctx.status();
  FILE* out = tmpfile();
  int rc = out ? seccomp_export_pfc(ctx.value(), fileno(out)) : -errno;
  seccomp_release(ctx.value());
  if (rc < 0) {
    if (out) fclose(out);
    return Failed("export", kind, rc);
  }
  std::string text;
  rewind(out);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, out)) > 0) text.append(buf, n);
  fclose(out);
  return text;
}

size_t AllowedSyscalls(ThreadKind kind) {
  std::set<int> calls;
  for (const Allow& a : ListFor(kind)) calls.insert(a.nr);
  return calls.size();
}

}  // namespace vmm::seccomp
