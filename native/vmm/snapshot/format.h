// The snapshot state file's layout (docs/snapshots.md "The state file"): every number little-endian.
//
//   header, 64 bytes      magic "VCSNAPST", format version, header size, total length,
//                         CRC-32C of the whole file (this field read as 0), section count,
//                         the writing vc-vmm's version string (32 bytes, NUL-padded)
//   section table         section count × {tag u32, instance u32, offset u64, length u64}
//   section payloads      each at an 8-byte-aligned offset, in table order, zero padding between
//
// The first 64 bytes keep this meaning in every format version, so a reader can always say which
// version (and which vc-vmm) wrote a file it cannot read.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vmm::snapshot {

constexpr char kStateMagic[8] = {'V', 'C', 'S', 'N', 'A', 'P', 'S', 'T'};
constexpr uint32_t kFormatVersion = 1;

constexpr size_t kHeaderSize = 64;
namespace header {
constexpr size_t kMagic = 0;          // 8 bytes
constexpr size_t kVersion = 8;        // u32
constexpr size_t kHeaderSize = 12;    // u32
constexpr size_t kTotalLength = 16;   // u64
constexpr size_t kCrc = 24;           // u32
constexpr size_t kSectionCount = 28;  // u32
constexpr size_t kVmmVersion = 32;    // 32 bytes, printable ASCII, NUL-padded
constexpr size_t kVmmVersionSize = 32;
}  // namespace header

constexpr size_t kTableEntrySize = 24;
constexpr size_t kSectionAlignment = 8;

// Bounds that only a corrupt or hostile file reaches: 254 vCPUs with a few KiB each, 20 virtio
// slots, a config of at most 64 KiB come to well under 4 MiB.
constexpr uint64_t kMaxStateFileSize = 64ull << 20;
constexpr uint32_t kMaxSections = 1024;

// What a section holds. `instance` tells repeated sections apart: the vCPU index for kVcpu, the
// virtio-mmio slot for kVirtioMmio and kVirtioDevice, 0 for the rest.
enum class Tag : uint32_t {
  kVm = 1,             // VmInfo (sections.h): vCPU count, RAM size, the config the VM was built from
  kMemory = 2,         // MemoryFileInfo (memory_file.h): what the memory file must be
  kVcpu = 3,           // one vCPU: regs, sregs, fpu, xsave, xcrs, MSRs, LAPIC, mp_state, events, debugregs
  kIrqchip = 4,        // KVM's PIC (master, slave) and IOAPIC
  kPit = 5,            // KVM's PIT (kvm_pit_state2)
  kClock = 6,          // kvmclock (kvm_clock_data)
  kSerial = 7,         // COM1's registers
  kI8042 = 8,          // the i8042's command byte and output buffer
  kVirtioMmio = 9,     // a slot's transport: status, features, queue registers, ring indices
  kVirtioDevice = 10,  // a slot's device model: blk / net / vsock / rng state
};
constexpr uint32_t kTagCount = 10;  // tags are 1..kTagCount

// "vm", "vcpu", ...; nullptr for a tag this version does not know.
const char* TagName(uint32_t tag);
// Whether the tag may appear with instances other than 0.
bool TagIsRepeated(Tag tag);
// Whether every snapshot has it (kVcpu: one per vCPU, checked against kVm's count).
bool TagIsRequired(Tag tag);

}  // namespace vmm::snapshot
