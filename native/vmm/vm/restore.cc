// Vm::Restore: a VM built from a snapshot instead of a kernel (docs/snapshots.md "Restore").
// Everything is checked before anything is used: the whole state file (ReadSnapshot), the memory
// file's size, header page and sample, the restore's config against the snapshot's machine, and
// the host's CPU features and TSC rate against what the guest already saw.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "common/read_file.h"
#include "vm/vm.h"

namespace vmm::kvm {

using vc::Format;
using ull = unsigned long long;

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

Status CheckCpuid(uint32_t vcpu, const std::vector<kvm_cpuid_entry2>& saved, const std::vector<kvm_cpuid_entry2>& host) {
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
    return Status::Error(Format("restore: vCPU %u: the snapshot's guest saw CPUID leaf 0x%x.%u %s bit %d%s%s%s, which this "
                                "host's KVM does not offer (a guest that chose code paths by it cannot run here)",
                                vcpu, w.function, w.index, kRegNames[w.reg], bit, *name ? " (" : "", name, *name ? ")" : ""));
  }
  return Status();
}

}  // namespace

Status Vm::RestoreVcpu(Vcpu* vcpu, const std::vector<kvm_cpuid_entry2>& host_cpuid, const snapshot::VcpuState& saved) {
  Status s = CheckCpuid(vcpu->index(), saved.cpuid, host_cpuid);
  if (!s.ok()) return s;
  auto khz = vcpu->fd().GetTscKhz();
  if (!khz.ok()) return khz.status();
  if (khz.value() != saved.tsc_khz) {
    // The guest calibrated its clocks by the snapshot's rate: KVM must scale this host's TSC to
    // it, or the guest's time runs at the wrong speed.
    if (vm_fd_.CheckExtension(KVM_CAP_TSC_CONTROL) <= 0)
      return Status::Error(Format("restore: vCPU %u: the snapshot's TSC runs at %u kHz, this host's at %u kHz, and this "
                                  "host's KVM cannot scale it (no KVM_CAP_TSC_CONTROL)",
                                  vcpu->index(), saved.tsc_khz, khz.value()));
    s = vcpu->fd().SetTscKhz(saved.tsc_khz);
    if (!s.ok())
      return Status::Error(Format("restore: vCPU %u: scaling this host's %u kHz TSC to the snapshot's %u kHz: %s",
                                  vcpu->index(), khz.value(), saved.tsc_khz, s.error().c_str()));
  }
  s = vcpu->RestoreState(saved);
  return s.ok() ? s : Status::Error("restore: " + s.error());
}

Status Vm::LoadMachineState(const snapshot::SnapshotInfo& info) {
  struct {
    uint32_t id;
    const char* name;
  } chips[] = {{KVM_IRQCHIP_PIC_MASTER, "picMaster"}, {KVM_IRQCHIP_PIC_SLAVE, "picSlave"}, {KVM_IRQCHIP_IOAPIC, "ioapic"}};
  for (const auto& c : chips) {
    kvm_irqchip chip{};
    chip.chip_id = c.id;
    if (c.id == KVM_IRQCHIP_PIC_MASTER) chip.chip.pic = info.irqchip.pic_master;
    if (c.id == KVM_IRQCHIP_PIC_SLAVE) chip.chip.pic = info.irqchip.pic_slave;
    if (c.id == KVM_IRQCHIP_IOAPIC) chip.chip.ioapic = info.irqchip.ioapic;
    Status s = vm_fd_.SetIrqchip(chip);
    if (!s.ok()) return Status::Error(Format("restore: irqchip %s: %s", c.name, s.error().c_str()));
  }
  Status s = vm_fd_.SetPit2(info.pit);
  if (!s.ok()) return Status::Error("restore: pit: " + s.error());
  // Only the value: the guest's monotonic clock goes on from the snapshot's moment, however long
  // ago that was (its wall clock is the agent's to fix).
  kvm_clock_data clock{};
  clock.clock = info.clock.clock;
  s = vm_fd_.SetClock(clock);
  if (!s.ok()) return Status::Error("restore: clock: " + s.error());
  return Status();
}

Result<std::unique_ptr<Vm>> Vm::Restore(const std::string& state_path, const std::string& memory_path,
                                        const VmConfig& config) {
  const uint64_t t0 = MonotonicMicros();
  // 1. The whole state file, checked.
  UniqueFd sfd(::open(state_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!sfd.valid()) return ErrnoStatus(("restore: state file " + state_path).c_str());
  std::string text;
  if (!vc::ReadFdBounded(sfd.get(), snapshot::kMaxStateFileSize, &text))
    return Status::Error(Format("restore: state file %s: unreadable or over the %llu-byte limit", state_path.c_str(),
                                (ull)snapshot::kMaxStateFileSize));
  auto read = snapshot::ReadSnapshot(reinterpret_cast<const uint8_t*>(text.data()), text.size());
  if (!read.ok()) return Status::Error("restore: " + state_path + ": " + read.error());
  // Its sections point into `text`, which lives until the devices are loaded below.
  snapshot::SnapshotInfo info = std::move(read.value());
  auto saved = ParseVmConfig(info.vm.config_json);
  if (!saved.ok()) return Status::Error("restore: " + state_path + ": the snapshot's own config: " + saved.error());
  Status s = CheckSameMachine(saved.value(), config);
  if (!s.ok()) return s;
  if ((config.memory_mib << 20) != info.vm.ram_bytes)
    return Status::Error(Format("restore: config.memoryMiB is %llu, but the snapshot's RAM is %llu MiB", (ull)config.memory_mib,
                                (ull)info.vm.ram_bytes >> 20));

  // 2. The memory file: size and header page against the state file's record.
  UniqueFd mfd(::open(memory_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!mfd.valid()) return ErrnoStatus(("restore: memory file " + memory_path).c_str());
  struct stat st;
  if (::fstat(mfd.get(), &st) < 0) return ErrnoStatus(("restore: memory file " + memory_path).c_str());
  if (!S_ISREG(st.st_mode)) return Status::Error("restore: memory file " + memory_path + " is not a regular file");
  std::vector<uint8_t> header(snapshot::kMemoryHeaderSize);
  ssize_t got = ::pread(mfd.get(), header.data(), header.size(), 0);
  if (got < 0) return ErrnoStatus(("restore: memory file " + memory_path).c_str());
  s = snapshot::CheckMemoryFileHeader(info.memory, uint64_t(st.st_size), header.data(), size_t(got));
  if (!s.ok()) return Status::Error("restore: " + memory_path + ": " + s.error());

  // 3, 4. Build on the mapped file; no kernel. A file mapping is never hugetlb-backed.
  VmConfig built = config;
  built.hugepages = false;
  std::unique_ptr<Vm> vm(new Vm(built));
  vm->created_us_ = t0;
  vm->restore_ = &info;
  vm->restore_memory_fd_ = mfd.get();
  vm->restored_from_ = state_path;
  s = vm->Build();
  vm->restore_ = nullptr;
  vm->restore_memory_fd_ = -1;
  if (!s.ok()) return s;
  s = snapshot::CheckMemorySample(info.memory, vm->ram_->host());
  if (!s.ok()) return Status::Error("restore: " + memory_path + ": " + s.error());
  vm->Mark("memorySample");
  if (!(s = vm->LoadMachineState(info)).ok()) return s;
  vm->Mark("irqchipPitClock");
  if (!(s = vm->LoadDevices(info)).ok()) return s;
  vm->Mark("devices");
  return vm;
}

}  // namespace vmm::kvm
