#include "snapshot/snapshot.h"

#include <utility>

namespace vmm::snapshot {
namespace {

vc::Status Error(std::string message) { return vc::Status::Error("snapshot state file: " + message); }

}  // namespace

vc::Result<SnapshotInfo> ReadSnapshot(const uint8_t* data, size_t size) {
  auto file = ParseStateFile(data, size);
  if (!file.ok()) return file.status();
  SnapshotInfo info;
  info.file = file.value();
  const StateFile& f = info.file;

  for (uint32_t tag = 1; tag <= kTagCount; tag++)
    if (TagIsRequired(static_cast<Tag>(tag)) && f.count(static_cast<Tag>(tag)) == 0)
      return Error(vc::Format("the required section %s is missing", TagName(tag)));

  const Section* vm = f.find(Tag::kVm);
  auto vm_info = DecodeVmInfo(f.payload(*vm), vm->length);
  if (!vm_info.ok()) return vm_info.status();
  info.vm = vm_info.value();

  const Section* mem = f.find(Tag::kMemory);
  auto mem_info = DecodeMemoryFileInfo(f.payload(*mem), mem->length);
  if (!mem_info.ok()) return mem_info.status();
  info.memory = mem_info.value();
  if (info.memory.ram_bytes != info.vm.ram_bytes)
    return Error(vc::Format("section memory says ramBytes %llu, section vm %llu",
                            static_cast<unsigned long long>(info.memory.ram_bytes),
                            static_cast<unsigned long long>(info.vm.ram_bytes)));

  // (tag, instance) pairs are unique, so vcpus sections all below vcpus means exactly 0..vcpus-1.
  for (const Section& s : f.sections) {
    if (s.tag == Tag::kVcpu && s.instance >= info.vm.vcpus)
      return Error(vc::Format("section vcpu[%u]: the VM has %u vCPUs", s.instance, info.vm.vcpus));
    if (s.tag == Tag::kVirtioMmio || s.tag == Tag::kVirtioDevice) {
      if (s.instance >= kMaxVirtioSlots)
        return Error(vc::Format("section %s[%u]: virtio slots are 0..%u", TagName(static_cast<uint32_t>(s.tag)),
                                s.instance, kMaxVirtioSlots - 1));
      Tag other = s.tag == Tag::kVirtioMmio ? Tag::kVirtioDevice : Tag::kVirtioMmio;
      if (!f.find(other, s.instance))
        return Error(vc::Format("section %s[%u] has no %s[%u]", TagName(static_cast<uint32_t>(s.tag)), s.instance,
                                TagName(static_cast<uint32_t>(other)), s.instance));
    }
  }
  if (f.count(Tag::kVcpu) != info.vm.vcpus)
    return Error(vc::Format("%zu vcpu sections for %u vCPUs", f.count(Tag::kVcpu), info.vm.vcpus));
  for (uint32_t i = 0; i < info.vm.vcpus; i++) {
    const Section* s = f.find(Tag::kVcpu, i);
    auto vcpu = DecodeVcpuState(f.payload(*s), s->length, i);
    if (!vcpu.ok()) return vcpu.status();
    info.vcpus.push_back(std::move(vcpu.value()));
  }
  const Section* irqchip = f.find(Tag::kIrqchip);
  auto irq = DecodeIrqchipState(f.payload(*irqchip), irqchip->length);
  if (!irq.ok()) return irq.status();
  info.irqchip = irq.value();
  const Section* pit = f.find(Tag::kPit);
  auto pit_state = DecodePitState(f.payload(*pit), pit->length);
  if (!pit_state.ok()) return pit_state.status();
  info.pit = pit_state.value();
  const Section* clock = f.find(Tag::kClock);
  auto clock_state = DecodeClockState(f.payload(*clock), clock->length);
  if (!clock_state.ok()) return clock_state.status();
  info.clock = clock_state.value();

  if (const Section* s = f.find(Tag::kSerial)) {
    auto serial = DecodeSerialState(f.payload(*s), s->length);
    if (!serial.ok()) return serial.status();
    info.has_serial = true;
    info.serial = std::move(serial.value());
  }
  if (const Section* s = f.find(Tag::kI8042)) {
    auto i8042 = DecodeI8042State(f.payload(*s), s->length);
    if (!i8042.ok()) return i8042.status();
    info.has_i8042 = true;
    info.i8042 = std::move(i8042.value());
  }
  // Pairs were checked above, so each virtio-mmio section has its virtio-device.
  for (const Section& s : f.sections) {
    if (s.tag != Tag::kVirtioMmio) continue;
    auto mmio = DecodeMmioState(f.payload(s), s.length, s.instance, info.vm.ram_bytes);
    if (!mmio.ok()) return mmio.status();
    const Section* d = f.find(Tag::kVirtioDevice, s.instance);
    auto device = DecodeVirtioDeviceState(f.payload(*d), d->length, s.instance);
    if (!device.ok()) return device.status();
    vc::Status pair = CheckVirtioPair(mmio.value(), device.value(), s.instance);
    if (!pair.ok()) return pair;
    info.mmio[s.instance] = std::move(mmio.value());
    info.virtio[s.instance] = std::move(device.value());
  }
  return info;
}

}  // namespace vmm::snapshot
