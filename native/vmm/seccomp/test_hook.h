// TEST ONLY. VC_VMM_TEST_SECCOMP_VIOLATION=main|device|vcpu in vc-vmm's environment makes a thread
// of that kind attempt a call no list allows (execve of a path that does not exist) when the
// process gets SIGUSR2, so tests can watch the filters end the VMM with SIGSYS on a running VM
// (test/kvm/vmm-seccomp.test.ts, test/nested/kvm-seccomp.test.ts). With the filters off the call
// fails with ENOENT, the thread logs that it was not stopped, and the VM runs on. Unset (always,
// outside tests), SIGUSR2 keeps its default action and nothing here runs.
#pragma once

#include <string>

#include "common/result.h"
#include "vm/thread_kind.h"

namespace vmm::seccomp {

inline constexpr char kTestViolationEnv[] = "VC_VMM_TEST_SECCOMP_VIOLATION";

// Reads the variable; when set, blocks SIGUSR2 on the calling thread (so on every thread created
// after) and installs the handler. Call before any VM thread exists. Error: an unknown kind.
vc::Status ArmTestViolation();

// On the thread of `kind`, after its filter: lets SIGUSR2 in if the hook is armed for `kind`.
void OpenTestViolation(ThreadKind kind);

}  // namespace vmm::seccomp
