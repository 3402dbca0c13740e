// Vm::Restore: a VM built from a snapshot instead of a kernel (docs/snapshots.md "Restore").
// Everything is checked before anything is used: the whole state file (ReadSnapshot), the memory
// file's size, header page and sample, the restore's config against the snapshot's machine, and
// the host's CPU features and TSC rate against what the guest already saw.
#include "kvm/cpuid.h"
#include "vm/snapshot_files.h"
#include "vm/vm.h"

namespace vmm::kvm {

using vc::Format;
using ull = unsigned long long;

Status Vm::RestoreVcpu(Vcpu* vcpu, const std::vector<kvm_cpuid_entry2>& host_cpuid, const snapshot::VcpuState& saved) {
  Status s = CheckCpuidSubset(saved.cpuid, host_cpuid);
  if (!s.ok()) return Status::Error(Format("restore: vCPU %u: ", vcpu->index()) + s.error());
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
  // 1, 2. The whole state file and the memory file's size and header page, checked.
  OpenedSnapshot opened;
  Status s = OpenSnapshot(state_path, memory_path, &opened);
  if (!s.ok()) return Status::Error("restore: " + s.error());
  // Its sections point into `opened.state_text`, which lives until the devices are loaded below.
  snapshot::SnapshotInfo& info = opened.info;
  s = CheckSameMachine(opened.saved_config, config);
  if (!s.ok()) return s;
  if ((config.memory_mib << 20) != info.vm.ram_bytes)
    return Status::Error(Format("restore: config.memoryMiB is %llu, but the snapshot's RAM is %llu MiB", (ull)config.memory_mib,
                                (ull)info.vm.ram_bytes >> 20));

  // 3, 4. Build on the mapped file; no kernel. A file mapping is never hugetlb-backed.
  VmConfig built = config;
  built.hugepages = false;
  std::unique_ptr<Vm> vm(new Vm(built));
  vm->created_us_ = t0;
  vm->restore_ = &info;
  vm->restore_memory_fd_ = opened.memory.get();
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
