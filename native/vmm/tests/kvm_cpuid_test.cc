// CPUID and boot MSRs as pure functions over made-up KVM answers (no /dev/kvm needed).
#include <vector>

#include "kvm/cpuid.h"
#include "kvm/msrs.h"
#include "tests/check.h"

namespace {

kvm_cpuid_entry2 Leaf(uint32_t function, uint32_t eax, uint32_t ebx, uint32_t ecx, uint32_t edx, uint32_t index = 0,
                      uint32_t flags = 0) {
  kvm_cpuid_entry2 e{};
  e.function = function;
  e.index = index;
  e.flags = flags;
  e.eax = eax, e.ebx = ebx, e.ecx = ecx, e.edx = edx;
  return e;
}

// An AMD-like host as this machine's KVM reports it (leaf 0 vendor "AuthenticAMD", max leaf 0xd).
std::vector<kvm_cpuid_entry2> AmdHost() {
  return {Leaf(0, 0xd, 0x68747541, 0x444d4163, 0x69746e65),
          Leaf(1, 0x00a00f11, 0x01020800, 0x81202000, 0x078bfbff),
          Leaf(0xb, 0, 0, 0, 1, 0, KVM_CPUID_FLAG_SIGNIFCANT_INDEX),
          Leaf(0x80000001, 0x00a00f11, 0x40000000, 0x00400391, 0x23d3fbff),
          Leaf(0x80000008, 0x3030, 0x10000005, 0x7001, 0),
          Leaf(0x8000001e, 0, 0, 0, 0)};
}

std::vector<kvm_cpuid_entry2> IntelHost() {
  return {Leaf(0, 0x16, 0x756e6547, 0x6c65746e, 0x49656e69), Leaf(1, 0x906ea, 0x00100800, 0x7ffafbbf, 0xbfebfbff),
          Leaf(4, 0x1c004121, 0x01c0003f, 0x3f, 0, 0, KVM_CPUID_FLAG_SIGNIFCANT_INDEX)};
}

}  // namespace

VMM_TEST(kvm_cpuid_leaf1_carries_apic_id_count_and_hypervisor_bit) {
  const auto host = AmdHost();
  for (uint32_t i = 0; i < 3; i++) {
    const auto out = vmm::kvm::VcpuCpuid(host, i, {3});
    const kvm_cpuid_entry2* l1 = vmm::kvm::FindCpuid(out, 1);
    CHECK(l1 != nullptr);
    if (!l1) return;
    CHECK_EQ(l1->ebx >> 24, i);
    CHECK_EQ((l1->ebx >> 16) & 0xff, 4u);   // 3 vCPUs need 2 bits of APIC id: 4 addressable
    CHECK_EQ(l1->ebx & 0xffff, 0x0800u);    // CLFLUSH size and brand index untouched
    CHECK(l1->edx & (1u << 28));            // HTT: the count field is valid
    CHECK(l1->ecx & vmm::kvm::kCpuidHypervisorBit);
  }
  const kvm_cpuid_entry2* single = vmm::kvm::FindCpuid(vmm::kvm::VcpuCpuid(host, 0, {1}), 1);
  CHECK(single && !(single->edx & (1u << 28)));
}

VMM_TEST(kvm_cpuid_leaf_b_describes_one_package_of_cores) {
  const auto out = vmm::kvm::VcpuCpuid(AmdHost(), 5, {6});
  const kvm_cpuid_entry2* smt = vmm::kvm::FindCpuid(out, 0xb, 0);
  const kvm_cpuid_entry2* core = vmm::kvm::FindCpuid(out, 0xb, 1);
  const kvm_cpuid_entry2* end = vmm::kvm::FindCpuid(out, 0xb, 2);
  CHECK(smt && core && end);
  if (!smt || !core || !end) return;
  CHECK_EQ(smt->eax, 0u);  // one thread per core
  CHECK_EQ(smt->ebx, 1u);
  CHECK_EQ(smt->ecx, 0x100u);
  CHECK_EQ(core->eax, 3u);  // 6 cores need 3 bits
  CHECK_EQ(core->ebx, 6u);
  CHECK_EQ(core->ecx, 0x201u);
  CHECK_EQ(end->ecx & 0xff00, 0u);  // level type 0 ends the enumeration
  for (const kvm_cpuid_entry2* e : {smt, core, end}) {
    CHECK_EQ(e->edx, 5u);  // x2APIC id in every subleaf
    CHECK(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
  }
  size_t leaf_b = 0;
  for (const auto& e : out) leaf_b += e.function == 0xb;
  CHECK_EQ(leaf_b, size_t(3));  // the host's own leaf 0xB was replaced, not kept beside ours
}

VMM_TEST(kvm_cpuid_amd_core_count_and_extended_apic_id) {
  const auto out = vmm::kvm::VcpuCpuid(AmdHost(), 2, {4});
  const kvm_cpuid_entry2* l88 = vmm::kvm::FindCpuid(out, 0x80000008);
  const kvm_cpuid_entry2* l1e = vmm::kvm::FindCpuid(out, 0x8000001e);
  const kvm_cpuid_entry2* l81 = vmm::kvm::FindCpuid(out, 0x80000001);
  CHECK(l88 && l1e && l81);
  if (!l88 || !l1e || !l81) return;
  CHECK_EQ(l88->ecx & 0xff, 3u);         // NC = cores - 1
  CHECK_EQ((l88->ecx >> 12) & 0xf, 2u);  // ApicIdCoreIdSize
  CHECK_EQ(l88->ecx & 0xffff0000u, 0u);
  CHECK_EQ(l1e->eax, 2u);
  CHECK_EQ(l1e->ebx & 0xff, 2u);
  CHECK(l81->ecx & 2u);  // CmpLegacy with more than one core
}

VMM_TEST(kvm_cpuid_intel_leaf4_core_count) {
  const auto out = vmm::kvm::VcpuCpuid(IntelHost(), 0, {2});
  const kvm_cpuid_entry2* l4 = vmm::kvm::FindCpuid(out, 4, 0);
  CHECK(l4 != nullptr);
  if (l4) {
    CHECK_EQ(l4->eax >> 26, 1u);            // cores per package - 1
    CHECK_EQ((l4->eax >> 14) & 0xfff, 0u);  // each cache private to one thread
    CHECK_EQ(l4->eax & 0x3fff, 0x121u);     // cache type/level untouched
  }
  // Max basic leaf 0x16 >= 0xB: topology leaves are offered even though KVM listed none.
  CHECK(vmm::kvm::FindCpuid(out, 0xb, 1) != nullptr);
}

VMM_TEST(kvm_cpuid_bits_for) {
  CHECK_EQ(vmm::kvm::BitsFor(0), 0u);
  CHECK_EQ(vmm::kvm::BitsFor(1), 0u);
  CHECK_EQ(vmm::kvm::BitsFor(2), 1u);
  CHECK_EQ(vmm::kvm::BitsFor(3), 2u);
  CHECK_EQ(vmm::kvm::BitsFor(4), 2u);
  CHECK_EQ(vmm::kvm::BitsFor(254), 8u);
}

VMM_TEST(kvm_boot_msrs_keep_what_kvm_knows_and_enable_mtrrs) {
  namespace msr = vmm::kvm::msr;
  const auto all = vmm::kvm::BootMsrs({msr::kIa32SysenterCs, msr::kIa32SysenterEsp, msr::kIa32SysenterEip, msr::kStar,
                                       msr::kCstar, msr::kKernelGsBase, msr::kSyscallMask, msr::kLstar,
                                       msr::kIa32Tsc, msr::kIa32MiscEnable});
  CHECK_EQ(all.size(), size_t(11));
  bool mtrr = false, misc = false;
  for (const auto& e : all) {
    if (e.index == msr::kIa32MtrrDefType) mtrr = e.data == (msr::kMtrrEnable | msr::kMtrrTypeWriteBack);
    if (e.index == msr::kIa32MiscEnable) misc = e.data == msr::kMiscEnableFastString;
  }
  CHECK(mtrr);
  CHECK(misc);
  // An MSR KVM does not list is not set (KVM_SET_MSRS would stop at it), except the MTRR type.
  const auto few = vmm::kvm::BootMsrs({msr::kStar});
  CHECK_EQ(few.size(), size_t(2));
}

VMM_TEST(kvm_cpuid_restore_refuses_a_feature_the_host_lacks) {
  using vmm::kvm::CheckCpuidSubset;
  const std::vector<kvm_cpuid_entry2> host = {Leaf(1, 0, 0, 0x10000000, 0x1), Leaf(7, 0, 0x20, 0, 0, 0, KVM_CPUID_FLAG_SIGNIFCANT_INDEX)};
  // What the guest saw: the same, less, or OSXSAVE on top (it follows the guest's CR4).
  CHECK(CheckCpuidSubset(host, host).ok());
  CHECK(CheckCpuidSubset({Leaf(1, 0, 0, 0, 0x1)}, host).ok());
  CHECK(CheckCpuidSubset({Leaf(1, 0, 0, 0x18000000, 0x1)}, host).ok());
  auto s = CheckCpuidSubset({Leaf(7, 0, 0x10020, 0, 0, 0, KVM_CPUID_FLAG_SIGNIFCANT_INDEX)}, host);
  CHECK(!s.ok());
  CHECK(s.error() == "the snapshot's guest saw CPUID leaf 0x7.0 EBX bit 16 (avx512f), which this host's KVM does not "
                     "offer (a guest that chose code paths by it cannot run here)");
  // A leaf the host does not have at all, a bit without a well-known name.
  s = CheckCpuidSubset({Leaf(0x80000001, 0, 0, 0x4, 0)}, host);
  CHECK(!s.ok() && s.error().find("leaf 0x80000001.0 ECX bit 2, which") != std::string::npos);
}
