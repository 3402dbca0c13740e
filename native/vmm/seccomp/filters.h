// vc-vmm's per-thread seccomp filters: one allow-list per thread kind (filters.cc, the one file to
// review), anything else kills the whole process with SIGSYS. Each thread installs its own filter
// on itself (Install) once its setup is done and before it serves the guest, so what the VMM
// needs only while building the VM (opening /dev/kvm, mapping guest RAM, creating vCPUs) is never
// on a list. Linked only into vc-vmm and the unit tests, never into the addon.
#pragma once

#include <cstddef>
#include <string>

#include "common/result.h"
#include "vm/thread_kind.h"

namespace vmm::seccomp {

// Installs the filter of `kind` on the calling thread (not its siblings: no TSYNC): the BPF from
// Precompile if it ran, else compiled now.
vc::Status Install(ThreadKind kind);

// Compiles every kind's filter to BPF ahead of Install (~0.2 ms of CPU each here), so that vc-vmm
// can do it on a helper thread while the VM is built instead of on each thread's way to serving
// the guest. Call it before any thread may Install, and not concurrently with Install.
vc::Status Precompile();

// The filter of `kind` in libseccomp's pseudo-filter-code text form, for review and tests.
vc::Result<std::string> Describe(ThreadKind kind);

// How many distinct system calls the list of `kind` allows (with or without argument checks).
size_t AllowedSyscalls(ThreadKind kind);

}  // namespace vmm::seccomp
