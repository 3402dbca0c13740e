// The irqchip, pit and clock sections: KVM's in-kernel interrupt controllers, its i8254 and
// kvmclock, as KVM hands them out (KVM_GET_IRQCHIP ×3, KVM_GET_PIT2, KVM_GET_CLOCK). Their sizes
// are part of the kernel's ABI and are checked exactly; the fields a corrupt file could make
// nonsense of (flags, booleans, padding, the IOAPIC's address, the PIT's modes) are checked by
// name, and what is left (register values) is for KVM_SET_* to accept or refuse.
//
//   irqchip   records {chip u32, length u32, bytes}: master PIC (0, kvm_pic_state), slave PIC (1,
//             kvm_pic_state), IOAPIC (2, kvm_ioapic_state), each exactly once, in any order
//   pit       kvm_pit_state2
//   clock     kvm_clock_data
#pragma once

#include <linux/kvm.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/result.h"

namespace vmm::snapshot {

struct IrqchipState {
  kvm_pic_state pic_master{};
  kvm_pic_state pic_slave{};
  kvm_ioapic_state ioapic{};
};

// The IOAPIC sits where every x86 VM has it; KVM's own reset value.
constexpr uint64_t kIoapicBase = 0xfec00000;

std::vector<uint8_t> EncodeIrqchipState(const IrqchipState& s);
vc::Result<IrqchipState> DecodeIrqchipState(const uint8_t* data, size_t size);

std::vector<uint8_t> EncodePitState(const kvm_pit_state2& s);
vc::Result<kvm_pit_state2> DecodePitState(const uint8_t* data, size_t size);

std::vector<uint8_t> EncodeClockState(const kvm_clock_data& s);
vc::Result<kvm_clock_data> DecodeClockState(const uint8_t* data, size_t size);

}  // namespace vmm::snapshot
