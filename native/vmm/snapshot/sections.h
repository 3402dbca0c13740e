// The kVm section: what a restore must know before it can build anything (format.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"

namespace vmm::snapshot {

// The VM as it was built: vCPU count, RAM size, and the vc-vmm JSON config (vm/config.h) it was
// built from. A restore rebuilds the devices from the config, then loads their state; what must
// differ per pod (socket paths, taps, disks' host paths) comes from the restore's own config.
struct VmInfo {
  uint32_t vcpus = 0;
  uint64_t ram_bytes = 0;
  std::string config_json;
};

// Bounds, as vm/config.cc has them (memoryMiB 2..3072, vcpus 1..254), and the largest config kept.
constexpr uint32_t kMaxVcpus = 254;
constexpr uint64_t kMinRamBytes = 2ull << 20, kMaxRamBytes = 3072ull << 20;
constexpr uint32_t kMaxConfigBytes = 64 * 1024;

std::vector<uint8_t> EncodeVmInfo(const VmInfo& vm);
// Checks every field: vcpus 1..254, RAM 2 MiB..3 GiB in whole 4 KiB pages, flags 0, a config of at
// most 64 KiB, and nothing after it.
vc::Result<VmInfo> DecodeVmInfo(const uint8_t* data, size_t size);

}  // namespace vmm::snapshot
