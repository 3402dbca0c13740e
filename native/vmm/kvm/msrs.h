// The MSR values every vCPU starts with. KVM resets most MSRs to zero already; these are the ones
// a Linux guest reads before it writes them, or expects firmware to have set: the SYSCALL and
// SYSENTER MSRs (zeroed explicitly so a reused vCPU starts clean), the TSC, fast strings in
// IA32_MISC_ENABLE, and MTRRs enabled with write-back as the default type (without that Linux
// maps all of RAM uncached and runs orders of magnitude slower).
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

namespace vmm::kvm {

namespace msr {
constexpr uint32_t kIa32Tsc = 0x10;
constexpr uint32_t kIa32SysenterCs = 0x174;
constexpr uint32_t kIa32SysenterEsp = 0x175;
constexpr uint32_t kIa32SysenterEip = 0x176;
constexpr uint32_t kIa32MiscEnable = 0x1a0;
constexpr uint32_t kIa32MtrrDefType = 0x2ff;
constexpr uint32_t kStar = 0xc0000081;
constexpr uint32_t kLstar = 0xc0000082;
constexpr uint32_t kCstar = 0xc0000083;
constexpr uint32_t kSyscallMask = 0xc0000084;
constexpr uint32_t kKernelGsBase = 0xc0000102;

constexpr uint64_t kMiscEnableFastString = 1ull << 0;
constexpr uint64_t kMtrrEnable = 1ull << 11;
constexpr uint64_t kMtrrTypeWriteBack = 6;
}  // namespace msr

// The boot MSRs, keeping only those KVM knows (its KVM_GET_MSR_INDEX_LIST) except the MTRR
// default type, which KVM emulates for every vCPU without listing it.
std::vector<kvm_msr_entry> BootMsrs(const std::vector<uint32_t>& kvm_msr_index_list);

}  // namespace vmm::kvm
