// Reading a whole state file before a restore uses any of it: the container (state_file.h), then
// what the sections must say together, and every section's payload decoded (machine_state.h for
// irqchip, pit and clock).
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/result.h"
#include "snapshot/machine_state.h"
#include "snapshot/memory_file.h"
#include "snapshot/sections.h"
#include "snapshot/state_file.h"
#include "snapshot/vcpu_state.h"

namespace vmm::snapshot {

// The largest virtio-mmio slot count a VM has (vm/config.cc allows 20 virtio devices).
constexpr uint32_t kMaxVirtioSlots = 20;

struct SnapshotInfo {
  StateFile file;
  VmInfo vm;
  MemoryFileInfo memory;
  std::vector<VcpuState> vcpus;  // by index
  IrqchipState irqchip;
  kvm_pit_state2 pit{};
  kvm_clock_data clock{};
};

// ParseStateFile, then: every required section present (vm, memory, irqchip, pit, clock); vm and
// memory decode; memory's RAM size is vm's; exactly one vcpu section per vCPU, instances
// 0..vcpus-1, each decoding (vcpu_state.h); virtio-mmio and virtio-device sections in pairs, slots
// below kMaxVirtioSlots; irqchip, pit and clock decoding.
vc::Result<SnapshotInfo> ReadSnapshot(const uint8_t* data, size_t size);

}  // namespace vmm::snapshot
