// Uncompressed ELF64 vmlinux booted through the PVH entry: validate the untrusted ELF (header,
// program headers, PT_LOAD segments, the XEN_ELFNOTE_PHYS32_ENTRY note), load its segments by
// physical address, and write struct hvm_start_info (version 1, with a memory map) for EBX.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "arch/x86/boot_params.h"
#include "common/result.h"
#include "guest_memory.h"

namespace vmm::x86 {

using vc::Format;
using vc::Result;
using vc::Status;

constexpr uint32_t kXenElfNotePhys32Entry = 18;
constexpr uint32_t kHvmStartMagic = 0x336ec578;  // "xEn3" with bit 7 of 'E' set

// hvm_start_info layout (Xen public/arch-x86/hvm/start_info.h, version 1).
namespace hvm {
constexpr uint64_t kMagic = 0;          // u32
constexpr uint64_t kVersion = 4;        // u32
constexpr uint64_t kFlags = 8;          // u32
constexpr uint64_t kNrModules = 12;     // u32
constexpr uint64_t kModlistPaddr = 16;  // u64
constexpr uint64_t kCmdlinePaddr = 24;  // u64
constexpr uint64_t kRsdpPaddr = 32;     // u64
constexpr uint64_t kMemmapPaddr = 40;   // u64
constexpr uint64_t kMemmapEntries = 48; // u32
constexpr uint64_t kStartInfoSize = 56;
constexpr uint64_t kModlistEntrySize = 32;  // u64 paddr, size, cmdline_paddr, reserved
constexpr uint64_t kMemmapEntrySize = 24;   // u64 addr, size, u32 type, reserved
}  // namespace hvm

struct ElfSegment {
  uint64_t file_offset = 0;
  uint64_t paddr = 0;
  uint64_t filesz = 0;
  uint64_t memsz = 0;
};

struct ElfKernelInfo {
  uint32_t pvh_entry = 0;
  std::vector<ElfSegment> segments;  // PT_LOAD with memsz > 0, sorted by paddr
  uint64_t kernel_start = 0;         // lowest paddr
  uint64_t kernel_end = 0;           // highest paddr + memsz
};

// True when the image starts with the ELF magic (to choose between the two boot paths).
bool LooksLikeElf(const uint8_t* image, size_t size);

// Checks an ELF64 x86-64 executable: every offset and size inside the file, segments at or above
// 1 MiB (below that are the boot structures), below the MMIO gap, not overlapping each other, and a
// PVH entry note whose address lies inside a loaded segment.
Result<ElfKernelInfo> ParseElfVmlinux(const uint8_t* image, size_t size);

// Copies each segment's file bytes to its paddr and zeroes the rest up to memsz (unless
// `ram_zeroed`: RAM known to be zero already), after checking that every segment ends at or
// below ram_end.
Status LoadElfVmlinux(const GuestMemory& mem, const uint8_t* image, size_t size, const ElfKernelInfo& info,
                      uint64_t ram_end, bool ram_zeroed = false);

struct PvhStartInfoParams {
  uint64_t cmdline_addr = 0;  // 0: none
  uint64_t initrd_addr = 0;   // initrd_size 0: no module
  uint64_t initrd_size = 0;
  uint64_t rsdp_addr = 0;
  std::vector<E820Entry> memmap;
};

// Writes hvm_start_info at layout::kPvhStartInfoAddr, the initrd module entry at
// layout::kPvhModlistAddr and the memory map at layout::kPvhMemmapAddr.
Status WritePvhStartInfo(const GuestMemory& mem, const PvhStartInfoParams& p);

}  // namespace vmm::x86
