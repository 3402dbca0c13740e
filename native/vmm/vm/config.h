// What one VM is made of, and its JSON form (the file `vc-vmm run --config` reads; docs/vmm.md
// has the reference). Parsing is strict: an unknown field, a wrong type or a value out of range is
// an error naming the field and the value, so a typo never silently becomes a default.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace vmm::kvm {

struct BlockConfig {
  std::string path;  // empty: a free slot, filled later by attachBlock
  bool read_only = false;
  std::string serial;  // up to 20 bytes (virtio-blk GET_ID)
};

struct VsockConfig {
  bool enabled = false;
  uint64_t guest_cid = 3;
  std::string uds_path;  // hybrid vsock: host connects here; guest connections go to <uds>_<port>
};

// One direction's token buckets (0: unlimited); a burst of 0 means one second's worth.
struct NetRateConfig {
  uint64_t bytes_per_sec = 0, bytes_burst = 0;
  uint64_t packets_per_sec = 0, packets_burst = 0;
};

// A virtio-net device on a tap: opened by name in the VMM's network namespace, or an inherited fd
// already attached to a tap (IFF_TAP|IFF_NO_PI|IFF_VNET_HDR). Exactly one of the two.
struct NetConfig {
  std::string tap;
  int tap_fd = -1;
  std::array<uint8_t, 6> mac{};
  uint16_t mtu = 1500;
  NetRateConfig rx, tx;
};

struct VmConfig {
  std::string kernel_path;  // bzImage or ELF (PVH) vmlinux
  std::string initrd_path;  // optional
  std::string cmdline;
  uint32_t vcpus = 1;
  uint64_t memory_mib = 128;
  bool hugepages = false;
  // Where the guest's serial console goes: a file path (created or appended), "-" for the VMM's
  // stdout, empty to discard.
  std::string serial_output;
  std::string control_socket;  // empty: no control socket (in-process use)
  VsockConfig vsock;
  bool rng = false;
  std::vector<BlockConfig> blocks;
  std::vector<NetConfig> nets;
  bool i8042 = true;       // i8042 reset line: Linux `reboot=k` ends the VM
  bool acpi_poweroff = true;  // ACPI sleep register at layout::kAcpiSleepPort: `poweroff` ends it
  // vc-vmm: each thread installs its seccomp allow-list (seccomp/filters.cc) before it serves the
  // guest. The addon's in-process VMs never install one (they share Node's process).
  bool seccomp = true;
};

// The virtio-mmio slot order the config implies: vsock, rng, the blocks in order, then the nets. Slot i
// sits at layout::VirtioMmioSlotAddr(i).
uint32_t VirtioSlotCount(const VmConfig& c);

vc::Result<VmConfig> ParseVmConfig(std::string_view json_text);

// The config as ParseVmConfig reads it (vm/config_json.cc), kept in a snapshot.
std::string VmConfigJson(const VmConfig& c);
// Whether `config` builds the machine `saved` describes (vCPUs, memory, the devices and their
// slots), so a snapshot of one loads into the other; the error names the field and both values.
vc::Status CheckSameMachine(const VmConfig& saved, const VmConfig& config);

}  // namespace vmm::kvm
