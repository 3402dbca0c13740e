// The Linux zero page (struct boot_params) and the e820 memory map. Field offsets are written from
// Documentation/arch/x86/boot.rst and zero-page.rst (no Linux headers): the setup header sits at the
// same offsets in the bzImage file and in the zero page.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"
#include "guest_memory.h"

namespace vmm::x86 {

using vc::Format;
using vc::Result;
using vc::Status;

// Setup header fields: offset from the start of the bzImage file, equally of the zero page.
namespace hdr {
constexpr uint64_t kSetupSects = 0x1f1;      // u8, 0 means 4
constexpr uint64_t kSyssize = 0x1f4;         // u32, protected-mode size in 16-byte paragraphs
constexpr uint64_t kBootFlag = 0x1fe;        // u16, 0xaa55
constexpr uint64_t kJump = 0x200;            // u16: 0xeb, offset; header ends at 0x202 + offset
constexpr uint64_t kHeader = 0x202;          // u32, "HdrS"
constexpr uint64_t kVersion = 0x206;         // u16
constexpr uint64_t kTypeOfLoader = 0x210;    // u8, 0xff = undefined boot loader
constexpr uint64_t kLoadflags = 0x211;       // u8
constexpr uint64_t kCode32Start = 0x214;     // u32
constexpr uint64_t kRamdiskImage = 0x218;    // u32
constexpr uint64_t kRamdiskSize = 0x21c;     // u32
constexpr uint64_t kCmdLinePtr = 0x228;      // u32
constexpr uint64_t kInitrdAddrMax = 0x22c;   // u32
constexpr uint64_t kKernelAlignment = 0x230; // u32
constexpr uint64_t kRelocatable = 0x234;     // u8
constexpr uint64_t kXloadflags = 0x236;      // u16
constexpr uint64_t kCmdlineSize = 0x238;     // u32, without the terminating NUL
constexpr uint64_t kSetupData = 0x250;       // u64
constexpr uint64_t kPrefAddress = 0x258;     // u64
constexpr uint64_t kInitSize = 0x260;        // u32
constexpr uint64_t kMinEnd = 0x264;          // the fields above all lie before this offset

constexpr uint16_t kBootFlagMagic = 0xaa55;
constexpr uint32_t kHeaderMagic = 0x53726448;  // "HdrS" little-endian
constexpr uint16_t kMinVersion = 0x020c;       // 2.12: xloadflags, 64-bit entry flag
constexpr uint8_t kLoadedHigh = 1 << 0;        // loadflags: protected-mode code at 1 MiB
constexpr uint8_t kCanUseHeap = 1 << 7;
constexpr uint16_t kXlfKernel64 = 1 << 0;      // xloadflags: has the 64-bit entry at +0x200
constexpr uint16_t kXlfCanBeLoadedAbove4g = 1 << 1;
}  // namespace hdr

// Other zero-page fields.
namespace zp {
constexpr uint64_t kSize = 0x1000;
constexpr uint64_t kAcpiRsdpAddr = 0x070;    // u64 (protocol 2.14)
constexpr uint64_t kExtRamdiskImage = 0x0c0; // u32, bits 63:32 of ramdisk_image
constexpr uint64_t kExtRamdiskSize = 0x0c4;  // u32
constexpr uint64_t kExtCmdLinePtr = 0x0c8;   // u32
constexpr uint64_t kE820Entries = 0x1e8;     // u8
constexpr uint64_t kSentinel = 0x1ef;        // u8, must stay 0
constexpr uint64_t kE820Table = 0x2d0;       // 128 x {u64 addr, u64 size, u32 type}, packed
constexpr uint32_t kE820MaxEntries = 128;
constexpr uint64_t kE820EntrySize = 20;
}  // namespace zp

enum E820Type : uint32_t { kE820Ram = 1, kE820Reserved = 2, kE820Acpi = 3, kE820Nvs = 4, kE820Unusable = 5 };

struct E820Entry {
  uint64_t addr = 0;
  uint64_t size = 0;
  uint32_t type = 0;
};

// End of RAM below the MMIO gap for a guest with ram_bytes of RAM.
uint64_t LowRamEnd(uint64_t ram_bytes);

// The guest's memory map: conventional RAM below the EBDA, the reserved EBDA/VGA/BIOS/ACPI area up
// to 1 MiB, RAM from 1 MiB to the MMIO gap, and RAM above 4 GiB for what does not fit below it.
// Sorted, non-overlapping. ram_bytes must be at least 1 MiB + 1 page (checked by the loaders).
std::vector<E820Entry> GuestE820(uint64_t ram_bytes);

struct ZeroPageParams {
  const uint8_t* setup_header = nullptr;  // the image's bytes [0x1f1, header_end)
  uint64_t setup_header_len = 0;
  uint64_t cmdline_addr = 0;
  uint64_t initrd_addr = 0;  // 0 with initrd_size 0: no initrd
  uint64_t initrd_size = 0;
  uint64_t rsdp_addr = 0;    // 0: the kernel scans 0xe0000..0xfffff itself
  std::vector<E820Entry> e820;
};

// Writes a zeroed zero page at `addr` with the image's setup header copied in and the loader's
// fields filled: type_of_loader, cmd_line_ptr, ramdisk, acpi_rsdp_addr, e820 table.
Status WriteZeroPage(const GuestMemory& mem, uint64_t addr, const ZeroPageParams& p);

// Writes the NUL-terminated command line at `addr`; `max_len` excludes the NUL.
Status WriteCmdline(const GuestMemory& mem, uint64_t addr, const std::string& cmdline, uint64_t max_len);

}  // namespace vmm::x86
