// The vcpu section: one vCPU's state as KVM hands it out, in records {kind u32, length u32, bytes}
// so each KVM structure keeps its own length and a reader can check it against the structure's
// size before copying. Every kind appears exactly once; nothing else is in the section.
#pragma once

#include <linux/kvm.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/result.h"

namespace vmm::snapshot {

enum class VcpuRecord : uint32_t {
  kRegs = 1,       // kvm_regs
  kSregs = 2,      // kvm_sregs
  kFpu = 3,        // kvm_fpu
  kXsave = 4,      // the XSAVE area: kvm_xsave (4 KiB), or larger from KVM_GET_XSAVE2
  kXcrs = 5,       // kvm_xcrs
  kMsrs = 6,       // count u32, then count × kvm_msr_entry
  kLapic = 7,      // kvm_lapic_state
  kMpState = 8,    // kvm_mp_state
  kEvents = 9,     // kvm_vcpu_events
  kDebugRegs = 10, // kvm_debugregs
  kCpuid = 11,     // count u32, then count × kvm_cpuid_entry2: what the guest was shown
  kTscKhz = 12,    // u32
};
constexpr uint32_t kVcpuRecordCount = 12;

// KVM's own bounds (KVM_MAX_CPUID_ENTRIES; the MSRs KVM saves are a few dozen) and the XSAVE
// area's (4 KiB legacy; AMX makes it about 11 KiB).
constexpr uint32_t kMaxCpuidEntries = 256;
constexpr uint32_t kMaxMsrs = 512;
// (kvm_xsave's region, not sizeof(kvm_xsave): in C++ its flexible tail adds padding.)
constexpr uint32_t kMinXsaveBytes = sizeof(kvm_xsave::region), kMaxXsaveBytes = 64 * 1024;

struct VcpuState {
  kvm_regs regs{};
  kvm_sregs sregs{};
  kvm_fpu fpu{};
  std::vector<uint8_t> xsave;  // kMinXsaveBytes..kMaxXsaveBytes, a multiple of 4
  kvm_xcrs xcrs{};
  std::vector<kvm_msr_entry> msrs;  // indices unique, reserved 0
  kvm_lapic_state lapic{};
  kvm_mp_state mp_state{};  // RUNNABLE, UNINITIALIZED, INIT_RECEIVED, HALTED or SIPI_RECEIVED
  kvm_vcpu_events events{};
  kvm_debugregs debugregs{};
  std::vector<kvm_cpuid_entry2> cpuid;
  uint32_t tsc_khz = 0;
};

std::vector<uint8_t> EncodeVcpuState(const VcpuState& vcpu);
// `index` names the section in errors ("snapshot section vcpu[1]: ...").
vc::Result<VcpuState> DecodeVcpuState(const uint8_t* data, size_t size, uint32_t index);

}  // namespace vmm::snapshot
