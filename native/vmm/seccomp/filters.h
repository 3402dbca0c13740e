// vc-vmm's per-thread seccomp filters: one allow-list per thread kind (filters.cc, the one file to
// review), anything else kills the whole process with SIGSYS. Each thread installs its own filter
// on itself (Install) once its setup is done and before it serves the guest, so what the VMM
// needs only while building the VM (opening /dev/kvm, mapping guest RAM, creating vCPUs) is never
// on a list. Linked only into vc-vmm and the unit tests, never into the addon.
#pragma once

#include <linux/filter.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"
#include "vm/thread_kind.h"

namespace vmm::seccomp {

// Installs the filter of `kind` on the calling thread (not its siblings: no TSYNC): the BPF from
// Precompile if it ran, else compiled now.
vc::Status Install(ThreadKind kind);

// Readies every kind's filter as BPF ahead of Install, so that no thread compiles on its way to
// serving the guest: the built-in BPF where the binary has it (compiled at build time, below;
// ~2 us), else compiled now by libseccomp (~0.4 ms of CPU each here, which vc-vmm spends on a
// helper thread while the VM is built). Call it before any thread may Install, and not
// concurrently with Install.
vc::Status Precompile();

// The BPF libseccomp makes for `kind`, with `self` as the process the tgkill entry may signal.
vc::Result<std::vector<sock_filter>> Compile(ThreadKind kind, uint64_t self);

// A kind's filter compiled when vc-vmm was built (seccomp/bpf_gen.cc writes them from the lists
// in filters.cc; seccomp/built_in.cc holds them). The pid in the tgkill check is known only at
// run time: `self_at` lists the instructions whose constant is that pid.
struct BuiltInBpf {
  const sock_filter* program;
  size_t length;
  const uint16_t* self_at;
  size_t self_count;
};
// nullptr where the binary has none (the generator itself).
const BuiltInBpf* BuiltInFilter(ThreadKind kind);

// The filter of `kind` in libseccomp's pseudo-filter-code text form, for review and tests.
vc::Result<std::string> Describe(ThreadKind kind);

// How many distinct system calls the list of `kind` allows (with or without argument checks).
size_t AllowedSyscalls(ThreadKind kind);

}  // namespace vmm::seccomp
