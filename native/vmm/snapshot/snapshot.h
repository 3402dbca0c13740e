// Reading a whole state file before a restore uses any of it: the container (state_file.h), then
// what the sections must say together, and every section's payload decoded (machine_state.h for
// irqchip, pit and clock; device_state.h for the devices).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>

#include "common/result.h"
#include "snapshot/machine_state.h"
#include "snapshot/device_state.h"
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
  // The devices the VM had: serial and i8042 when their sections are present, virtio by slot.
  bool has_serial = false, has_i8042 = false;
  SerialState serial;
  I8042State i8042;
  std::map<uint32_t, MmioState> mmio;
  std::map<uint32_t, VirtioDeviceState> virtio;
};

// ParseStateFile, then: every required section present (vm, memory, irqchip, pit, clock); vm and
// memory decode; memory's RAM size is vm's; exactly one vcpu section per vCPU, instances
// 0..vcpus-1, each decoding (vcpu_state.h); virtio-mmio and virtio-device sections in pairs, slots
// below kMaxVirtioSlots, each pair decoding (ring addresses inside vm's RAM) and agreeing
// (CheckVirtioPair); irqchip, pit and clock decoding; serial and i8042 decoding when present.
vc::Result<SnapshotInfo> ReadSnapshot(const uint8_t* data, size_t size);

}  // namespace vmm::snapshot
