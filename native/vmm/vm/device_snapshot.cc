// The devices' part of a snapshot: the one place that calls the device models' SaveState /
// LoadState (docs/snapshots.md "What is saved"; the codecs are snapshot/device_state.h).
#include "vm/vm.h"

namespace vmm::kvm {

using vc::Format;

Status Vm::SaveDevices(snapshot::StateFileBuilder* out) {
  // The device thread is parked (or is this thread), the vCPUs too: nothing changes under us.
  out->add(snapshot::Tag::kSerial, 0, serial_->SaveState());
  if (i8042_) out->add(snapshot::Tag::kI8042, 0, i8042_->SaveState());
  std::lock_guard lock(mutex_);
  for (const auto& slot : slots_) {
    out->add(snapshot::Tag::kVirtioDevice, slot->index, slot->device->SaveState());
    out->add(snapshot::Tag::kVirtioMmio, slot->index, slot->transport->SaveState());
  }
  return Status();
}

Status Vm::LoadDevices(const snapshot::SnapshotInfo& info) {
  const snapshot::StateFile& f = info.file;
  auto payload = [&](snapshot::Tag tag, uint32_t instance) { return f.find(tag, instance); };
  Status s;
  if (const snapshot::Section* serial = payload(snapshot::Tag::kSerial, 0)) {
    s = serial_->LoadState(f.payload(*serial), serial->length);
    if (!s.ok()) return Status::Error("restore: serial: " + s.error());
  }
  if (const snapshot::Section* i8042 = payload(snapshot::Tag::kI8042, 0)) {
    if (!i8042_) return Status::Error("restore: the snapshot has an i8042 section, but config.i8042 is false");
    s = i8042_->LoadState(f.payload(*i8042), i8042->length);
    if (!s.ok()) return Status::Error("restore: i8042: " + s.error());
  }
  if (f.count(snapshot::Tag::kVirtioDevice) != slots_.size())
    return Status::Error(Format("restore: the snapshot has %zu virtio devices, the config %zu",
                                f.count(snapshot::Tag::kVirtioDevice), slots_.size()));
  for (const auto& slot : slots_) {
    const snapshot::Section* device = payload(snapshot::Tag::kVirtioDevice, slot->index);
    const snapshot::Section* mmio = payload(snapshot::Tag::kVirtioMmio, slot->index);
    if (!device || !mmio)
      return Status::Error(Format("restore: the snapshot has no virtio device in slot %u, where the config has %s",
                                  slot->index, slot->kind.c_str()));
    // The device first: its transport's LoadState then activates it.
    s = slot->device->LoadState(f.payload(*device), device->length, slot->index);
    if (s.ok()) s = slot->transport->LoadState(f.payload(*mmio), mmio->length, ram_->bytes(), slot->index);
    if (!s.ok()) return Status::Error(Format("restore: virtio slot %u (%s): ", slot->index, slot->kind.c_str()) + s.error());
  }
  // Every connection the guest had died with the old VMM: the guest hears so before it runs.
  for (const auto& slot : slots_)
    if (slot->kind == "vsock") static_cast<virtio::VsockDevice*>(slot->device.get())->QueueTransportReset();
  return Status();
}

}  // namespace vmm::kvm
