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

// Installs the filter of `kind` on the calling thread (not its siblings: no TSYNC).
vc::Status Install(ThreadKind kind);

// The filter of `kind` in libseccomp's pseudo-filter-code text form, for review and tests.
vc::Result<std::string> Describe(ThreadKind kind);

// How many distinct system calls the list of `kind` allows (with or without argument checks).
size_t AllowedSyscalls(ThreadKind kind);

}  // namespace vmm::seccomp
