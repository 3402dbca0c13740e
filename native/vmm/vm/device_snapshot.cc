// The devices' part of a snapshot: the one place that calls the device models' SaveState /
// LoadState (docs/snapshots.md "What is saved"), so wiring them is one edit here.
//
// Until the device models have that API, a VM with virtio devices is refused: a restored guest
// whose driver believes its queues live while the new transport is reset would hang, and a clear
// error beats a hung pod. Serial and i8042 come back in their reset state (the guest's console
// keeps working; its interrupt-enable bits are lost).
#include "vm/vm.h"

namespace vmm::kvm {

using vc::Format;

Status Vm::SaveDevices(snapshot::StateFileBuilder* out) {
  (void)out;
  if (!slots_.empty())
    return Status::Error(Format("snapshot: this VM has %zu virtio devices, whose state this vc-vmm cannot save yet",
                                slots_.size()));
  return Status();
}

Status Vm::LoadDevices(const snapshot::SnapshotInfo& info) {
  if (!slots_.empty() || info.file.count(snapshot::Tag::kVirtioMmio) != 0)
    return Status::Error("restore: virtio device state cannot be loaded by this vc-vmm yet");
  return Status();
}

}  // namespace vmm::kvm
