#include "kvm/cpuid.h"

#include <cstring>

namespace vmm::kvm {

namespace {

// "AuthenticAMD" / "HygonGenuine" put the vendor in leaf 0 EBX:EDX:ECX.
bool IsAmdLike(const std::vector<kvm_cpuid_entry2>& entries) {
  const kvm_cpuid_entry2* leaf0 = FindCpuid(entries, 0);
  if (!leaf0) return false;
  return leaf0->ebx == 0x68747541 /* "Auth" */ || leaf0->ebx == 0x6f677948 /* "Hygo" */;
}

kvm_cpuid_entry2 TopologyLeaf(uint32_t function, uint32_t subleaf, uint32_t apic_id, const CpuTopology& t) {
  kvm_cpuid_entry2 e{};
  e.function = function;
  e.index = subleaf;
  e.flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
  e.edx = apic_id;  // x2APIC id of this vCPU, in every subleaf
  e.ecx = subleaf & 0xff;
  if (subleaf == 0) {  // SMT level: one thread per core, so no APIC id bits for it
    e.eax = 0;
    e.ebx = 1;
    e.ecx |= 1u << 8;
  } else if (subleaf == 1) {  // core level: every vCPU is a core of the one package
    e.eax = BitsFor(t.vcpus);
    e.ebx = t.vcpus;
    e.ecx |= 2u << 8;
  }  // subleaf 2: level type 0 ends the enumeration
  return e;
}

}  // namespace

uint32_t BitsFor(uint32_t n) {
  uint32_t bits = 0;
  while ((1u << bits) < n) bits++;
  return bits;
}

const kvm_cpuid_entry2* FindCpuid(const std::vector<kvm_cpuid_entry2>& entries, uint32_t function, uint32_t index) {
  for (const auto& e : entries)
    if (e.function == function && ((e.flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) == 0 || e.index == index)) return &e;
  return nullptr;
}

std::vector<kvm_cpuid_entry2> VcpuCpuid(const std::vector<kvm_cpuid_entry2>& supported, uint32_t index,
                                        const CpuTopology& topo) {
  const uint32_t apic_id = index;
  const uint32_t vcpus = topo.vcpus ? topo.vcpus : 1;
  const bool amd = IsAmdLike(supported);
  std::vector<kvm_cpuid_entry2> out;
  out.reserve(supported.size() + 3);
  bool have_leaf_b = false, have_leaf_1f = false;
  for (kvm_cpuid_entry2 e : supported) {
    switch (e.function) {
      case 0x1:
        // EBX[31:24] initial APIC id, EBX[23:16] addressable logical CPUs in the package;
        // EDX bit 28 (HTT) says the latter field is valid.
        e.ebx = (e.ebx & 0x0000ffff) | (apic_id << 24) | ((1u << BitsFor(vcpus)) & 0xff) << 16;
        if (vcpus > 1) e.edx |= 1u << 28;
        else e.edx &= ~(1u << 28);
        e.ecx |= kCpuidHypervisorBit;
        break;
      case 0x4:
        // Intel deterministic cache parameters: EAX[31:26] cores per package - 1, and each cache
        // is private to one core (EAX[25:14] = 0: one thread shares it).
        if (!amd) e.eax = (e.eax & 0x00003fff) | ((vcpus - 1) & 0x3f) << 26;
        break;
      case 0xb:
      case 0x1f:
        // Generated below for every subleaf (KVM reports only subleaf 0, with host values).
        (e.function == 0xb ? have_leaf_b : have_leaf_1f) = true;
        continue;
      case 0x80000001:
        // AMD CmpLegacy: set when the package has more than one core.
        if (amd) {
          if (vcpus > 1) e.ecx |= 1u << 1;
          else e.ecx &= ~(1u << 1);
        }
        break;
      case 0x80000008:
        // AMD: ECX[7:0] cores per package - 1, ECX[15:12] APIC id bits that number them.
        if (amd) e.ecx = (e.ecx & ~0xf0ffu) | ((vcpus - 1) & 0xff) | (BitsFor(vcpus) & 0xf) << 12;
        break;
      case 0x8000001e:
        // AMD extended APIC id, compute unit (= core) id, node 0 with one node per package.
        if (amd) {
          e.eax = apic_id;
          e.ebx = apic_id & 0xff;
          e.ecx = 0;
        }
        break;
      default:
        break;
    }
    out.push_back(e);
  }
  // Leaf 0xB is how Linux (and x2APIC-aware guests) learn the topology; offer it whenever the
  // maximum basic leaf reaches it.
  const kvm_cpuid_entry2* leaf0 = FindCpuid(supported, 0);
  if (have_leaf_b || (leaf0 && leaf0->eax >= 0xb))
    for (uint32_t sub = 0; sub < 3; sub++) out.push_back(TopologyLeaf(0xb, sub, apic_id, topo));
  // Leaf 0x1F (V2 extended topology) takes precedence in Linux when present: keep it consistent.
  if (have_leaf_1f)
    for (uint32_t sub = 0; sub < 3; sub++) out.push_back(TopologyLeaf(0x1f, sub, apic_id, topo));
  return out;
}

namespace {

// The CPUID registers that list features a guest may have chosen code paths by. The bits the
// kernel sets for itself (OSXSAVE, OSPKE: they follow CR4) are not features of the host.
struct FeatureWord {
  uint32_t function, index;
  int reg;  // 0 eax, 1 ebx, 2 ecx, 3 edx
  uint32_t ignore;
};
constexpr FeatureWord kFeatureWords[] = {
    {1, 0, 2, 1u << 27},       {1, 0, 3, 0},          {7, 0, 1, 0},          {7, 0, 2, 1u << 4},
    {7, 0, 3, 0},              {7, 1, 0, 0},          {0xd, 1, 0, 0},        {0x80000001, 0, 2, 0},
    {0x80000001, 0, 3, 0},
};
const char* kRegNames[] = {"EAX", "EBX", "ECX", "EDX"};

uint32_t Reg(const kvm_cpuid_entry2& e, int reg) {
  switch (reg) {
    case 0: return e.eax;
    case 1: return e.ebx;
    case 2: return e.ecx;
    default: return e.edx;
  }
}

// A few names people know a missing feature by; the leaf and bit are always given.
const char* FeatureName(uint32_t function, uint32_t index, int reg, int bit) {
  struct Name {
    uint32_t function, index;
    int reg, bit;
    const char* name;
  } static const names[] = {
      {1, 0, 2, 0, "sse3"},   {1, 0, 2, 19, "sse4.1"}, {1, 0, 2, 20, "sse4.2"},  {1, 0, 2, 26, "xsave"},
      {1, 0, 2, 28, "avx"},   {1, 0, 2, 12, "fma"},    {1, 0, 2, 30, "rdrand"},  {7, 0, 1, 5, "avx2"},
      {7, 0, 1, 16, "avx512f"}, {7, 0, 1, 3, "bmi1"},  {7, 0, 1, 8, "bmi2"},     {7, 0, 1, 18, "rdseed"},
      {7, 0, 1, 29, "sha"},   {7, 0, 2, 11, "avx512vnni"}, {7, 0, 3, 24, "amx-tile"}, {0xd, 1, 0, 1, "xsavec"},
  };
  for (const Name& n : names)
    if (n.function == function && n.index == index && n.reg == reg && n.bit == bit) return n.name;
  return "";
}

}  // namespace

vc::Status CheckCpuidSubset(const std::vector<kvm_cpuid_entry2>& saved, const std::vector<kvm_cpuid_entry2>& host) {
  auto find = [](const std::vector<kvm_cpuid_entry2>& list, uint32_t f, uint32_t i) -> const kvm_cpuid_entry2* {
    for (const auto& e : list)
      if (e.function == f && (e.index == i || !(e.flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX))) return &e;
    return nullptr;
  };
  for (const FeatureWord& w : kFeatureWords) {
    const kvm_cpuid_entry2* s = find(saved, w.function, w.index);
    if (!s) continue;
    const kvm_cpuid_entry2* h = find(host, w.function, w.index);
    const uint32_t missing = (Reg(*s, w.reg) & ~w.ignore) & ~(h ? Reg(*h, w.reg) : 0);
    if (!missing) continue;
    const int bit = __builtin_ctz(missing);
    const char* name = FeatureName(w.function, w.index, w.reg, bit);
    return vc::Status::Error(vc::Format("the snapshot's guest saw CPUID leaf 0x%x.%u %s bit %d%s%s%s, which this "
                                        "host's KVM does not offer (a guest that chose code paths by it cannot run here)",
                                        w.function, w.index, kRegNames[w.reg], bit, *name ? " (" : "", name, *name ? ")" : ""));
  }
  return vc::Status();
}


}  // namespace vmm::kvm
