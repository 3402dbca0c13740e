// Reading a whole state file before a restore uses any of it: the container (state_file.h), then
// what the sections must say together. The irqchip, PIT, clock and device payloads get their
// decoders when capture and restore land (docs/snapshots.md "What is next").
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/result.h"
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
};

// ParseStateFile, then: every required section present (vm, memory, irqchip, pit, clock); vm and
// memory decode; memory's RAM size is vm's; exactly one vcpu section per vCPU, instances
// 0..vcpus-1, each decoding (vcpu_state.h); virtio-mmio and virtio-device sections in pairs, slots
// below kMaxVirtioSlots.
vc::Result<SnapshotInfo> ReadSnapshot(const uint8_t* data, size_t size);

}  // namespace vmm::snapshot
