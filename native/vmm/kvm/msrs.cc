#include "kvm/msrs.h"

#include <algorithm>

namespace vmm::kvm {

std::vector<kvm_msr_entry> BootMsrs(const std::vector<uint32_t>& known) {
  struct Want {
    uint32_t index;
    uint64_t value;
    bool always;  // set even when KVM does not list it
  };
  static const Want kWant[] = {
      {msr::kIa32SysenterCs, 0, false},
      {msr::kIa32SysenterEsp, 0, false},
      {msr::kIa32SysenterEip, 0, false},
      {msr::kStar, 0, false},
      {msr::kCstar, 0, false},
      {msr::kKernelGsBase, 0, false},
      {msr::kSyscallMask, 0, false},
      {msr::kLstar, 0, false},
      {msr::kIa32Tsc, 0, false},
      {msr::kIa32MiscEnable, msr::kMiscEnableFastString, false},
      {msr::kIa32MtrrDefType, msr::kMtrrEnable | msr::kMtrrTypeWriteBack, true},
  };
  std::vector<kvm_msr_entry> out;
  for (const Want& w : kWant) {
    if (!w.always && std::find(known.begin(), known.end(), w.index) == known.end()) continue;
    kvm_msr_entry e{};
    e.index = w.index;
    e.data = w.value;
    out.push_back(e);
  }
  return out;
}

}  // namespace vmm::kvm
