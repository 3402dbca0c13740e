#include "snapshot/format.h"

namespace vmm::snapshot {

const char* TagName(uint32_t tag) {
  switch (static_cast<Tag>(tag)) {
    case Tag::kVm: return "vm";
    case Tag::kMemory: return "memory";
    case Tag::kVcpu: return "vcpu";
    case Tag::kIrqchip: return "irqchip";
    case Tag::kPit: return "pit";
    case Tag::kClock: return "clock";
    case Tag::kSerial: return "serial";
    case Tag::kI8042: return "i8042";
    case Tag::kVirtioMmio: return "virtio-mmio";
    case Tag::kVirtioDevice: return "virtio-device";
  }
  return nullptr;
}

bool TagIsRepeated(Tag tag) { return tag == Tag::kVcpu || tag == Tag::kVirtioMmio || tag == Tag::kVirtioDevice; }

bool TagIsRequired(Tag tag) {
  switch (tag) {
    case Tag::kVm:
    case Tag::kMemory:
    case Tag::kVcpu:
    case Tag::kIrqchip:
    case Tag::kPit:
    case Tag::kClock:
      return true;
    default:
      return false;  // devices: present when the VM has them
  }
}

}  // namespace vmm::snapshot
