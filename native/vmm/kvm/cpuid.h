// The CPUID each vCPU sees: KVM_GET_SUPPORTED_CPUID (what host and KVM can offer), with the
// per-vCPU and topology fields a guest kernel reads to enumerate its CPUs filled in. Pure
// functions over entry lists, so they unit-test without /dev/kvm.
//
// Topology: `vcpus` cores in one package, one thread per core, vCPU i has (x2)APIC id i. That is
// what the MADT says too (arch/x86/acpi.h: local APIC id i), and the two must agree or Linux
// warns about (and may ignore) CPUs whose APIC ids it cannot place.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

#include "common/result.h"

namespace vmm::kvm {

// Leaf 1 ECX bit 31: "running under a hypervisor"; Linux then looks at 0x40000000 for KVM.
constexpr uint32_t kCpuidHypervisorBit = 1u << 31;

struct CpuTopology {
  uint32_t vcpus = 1;  // 1..254
};

// Bits needed to number `n` things (ceil(log2(n)), 0 for n <= 1).
uint32_t BitsFor(uint32_t n);

// The entries for vCPU `index` built from `supported`. Leaves and subleaves KVM did not report
// are left out except the topology subleaves of 0xB, which are generated.
std::vector<kvm_cpuid_entry2> VcpuCpuid(const std::vector<kvm_cpuid_entry2>& supported, uint32_t index,
                                        const CpuTopology& topo);

// The entry for (function, index), or nullptr.
const kvm_cpuid_entry2* FindCpuid(const std::vector<kvm_cpuid_entry2>& entries, uint32_t function,
                                  uint32_t index = 0);

// On restore: the feature words (leaf 1 ECX/EDX, 7.0 EBX/ECX/EDX, 7.1 EAX, 0xD.1 EAX, 0x80000001
// ECX/EDX) of `saved`, what the snapshot's guest saw, must all be set in `host` (what this host's
// VcpuCpuid gives), else the error names the leaf, register, bit and, for well-known ones, the
// feature. OSXSAVE and OSPKE are left out: they follow the guest's CR4, not the host.
vc::Status CheckCpuidSubset(const std::vector<kvm_cpuid_entry2>& saved, const std::vector<kvm_cpuid_entry2>& host);

}  // namespace vmm::kvm
