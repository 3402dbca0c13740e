#include "snapshot/sections.h"

#include "snapshot/byte_io.h"

namespace vmm::snapshot {

// Layout: vcpus u32, flags u32 (0: none defined), ram_bytes u64, config (u32 length + bytes).
std::vector<uint8_t> EncodeVmInfo(const VmInfo& vm) {
  ByteWriter w;
  w.u32(vm.vcpus);
  w.u32(0);
  w.u64(vm.ram_bytes);
  w.blob(vm.config_json);
  return std::move(w.data());
}

vc::Result<VmInfo> DecodeVmInfo(const uint8_t* data, size_t size) {
  ByteReader r(data, size, "snapshot section vm");
  VmInfo vm;
  vm.vcpus = r.u32("vcpus");
  uint32_t flags = r.u32("flags");
  vm.ram_bytes = r.u64("ramBytes");
  vm.config_json = r.blob("config", kMaxConfigBytes);
  r.expect_end();
  if (!r.ok()) return r.status();
  if (vm.vcpus < 1 || vm.vcpus > kMaxVcpus)
    return vc::Status::Error(vc::Format("snapshot section vm: vcpus must be 1..%u, not %u", kMaxVcpus, vm.vcpus));
  if (flags) return vc::Status::Error(vc::Format("snapshot section vm: flags 0x%x: no flags are defined", flags));
  if (vm.ram_bytes < kMinRamBytes || vm.ram_bytes > kMaxRamBytes || vm.ram_bytes % 4096)
    return vc::Status::Error(vc::Format("snapshot section vm: ramBytes must be whole 4 KiB pages in %llu..%llu, not %llu",
                                        static_cast<unsigned long long>(kMinRamBytes),
                                        static_cast<unsigned long long>(kMaxRamBytes),
                                        static_cast<unsigned long long>(vm.ram_bytes)));
  if (vm.config_json.empty()) return vc::Status::Error("snapshot section vm: config is empty");
  return vm;
}

}  // namespace vmm::snapshot
