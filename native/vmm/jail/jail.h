// The jail vc-vmm shuts itself into after it has built its VM and before any guest code runs
// (docs/vmm.md "Jail"). Everything the VM needs from the host — /dev/kvm, the kernel and initrd
// (read into guest RAM), disks, taps, the console file, the listening sockets — is opened while
// the process is still root in the host's view; the jail then takes away everything else: the
// host's filesystem (a private mount namespace whose root is an empty read-only tmpfs holding
// only the directories named with --jail-ro), other processes (a pid namespace with the VMM as
// pid 1), SysV IPC, the hostname, inherited fds, the environment, privileges (an unprivileged
// uid/gid, no_new_privs) and headroom (rlimits).
//
// The jail's mounts exist only in the VMM's own mount namespace, made private before the first
// one: the host never sees them and they vanish with the process, so a crash leaves at most the
// empty directory --jail names, which the caller records and removes (src/hypervisor/kvm).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/result.h"

namespace vmm::jail {

struct JailOptions {
  std::string root;  // --jail DIR: the (empty) directory the new root is mounted on; empty: no jail
  uid_t uid = 65534;  // --jail-user UID:GID (default nobody:nogroup)
  gid_t gid = 65534;
  std::vector<std::string> read_only_dirs;  // --jail-ro DIR: visible in the jail at the same path
  // RLIMIT_NOFILE: vsock takes up to 1024 host connections, the control socket 16 clients, plus
  // the VM's own fds (a vCPU fd each, eventfds per interrupt line and queue).
  uint64_t max_open_files = 4096;  // --jail-nofile N
  uint64_t max_file_bytes = 1ull << 30;  // --jail-fsize BYTES: RLIMIT_FSIZE (console, log, writable disks)
  bool enabled() const { return !root.empty(); }
};

// If argv[*i] is a jail flag, consumes it (and its value, advancing *i) and returns true; a bad
// value sets *error, naming the flag and the value.
bool TakeJailFlag(int argc, char** argv, int* i, JailOptions* options, std::string* error);

extern const char kJailUsage[];  // the flags, for usage lines

// Puts the children this process forks next into a new pid namespace, the first as its pid 1.
// Called in the parent before the fork that makes the VMM process (KVM ties a VM to the process
// that creates it, so the VMM must be inside the namespace before it builds anything).
vc::Status UnsharePidNamespace();

// This process's pid as the host's /proc numbers it (the first of /proc/self/status NSpid), which
// differs from getpid() inside the jail's pid namespace; getpid() where /proc cannot tell.
pid_t HostPid();

// Closes every fd this process inherited except `keep` (and 0, 1, 2).
vc::Status CloseInheritedFds(const std::vector<int>& keep);

// Enters the jail: rlimits, an empty environment, namespaces, the new root, the uid/gid drop and
// no_new_privs, in that order. The process must still be single-threaded (unshare of a mount
// namespace, and no_new_privs applying to the threads created after it).
vc::Status EnterJail(const JailOptions& options);

// Once every thread of the VM exists: no further process or thread can be created (RLIMIT_NPROC
// 0 for the unprivileged uid).
vc::Status ForbidNewProcesses();

// ForbidNewProcesses once `vcpu_ran` says a vCPU has been through KVM_RUN (or the VM is stopping),
// polled every millisecond for at most 10 s: newer kernels make KVM's per-VM NX-huge-page
// recovery worker at the VM's first KVM_RUN, as a task forked from this process and counted
// against its RLIMIT_NPROC.
vc::Status ForbidNewProcessesOnce(const std::function<bool()>& vcpu_ran);

}  // namespace vmm::jail
