// The boot GDT: written into guest memory at layout::kGdtAddr, and decoded into the Segment values
// the boot vCPU starts with, so the hidden segment state always matches the table in memory.
#pragma once

#include <array>
#include <cstdint>

#include "arch/x86/regs.h"
#include "common/result.h"
#include "guest_memory.h"

namespace vmm::x86 {

using vc::Format;
using vc::Result;
using vc::Status;

constexpr uint16_t kSelCode32 = 0x08;  // flat 32-bit code (PVH entry)
constexpr uint16_t kSelCode64 = 0x10;  // 64-bit code: Linux's __BOOT_CS
constexpr uint16_t kSelData = 0x18;    // flat read/write data: Linux's __BOOT_DS
constexpr uint16_t kSelTss = 0x20;     // busy TSS, base 0, limit 0x67 (16 bytes in long mode)

constexpr size_t kBootGdtEntries = 6;  // null, code32, code64, data, TSS (low, high)

// One 8-byte descriptor from a segment (base and limit truncated to what a descriptor holds; a
// limit above 0xfffff is stored with 4 KiB granularity).
uint64_t EncodeDescriptor(const Segment& seg);
// The segment a selector loads from a descriptor (limit expanded to bytes when G is set).
Segment DecodeDescriptor(uint64_t descriptor, uint16_t selector);

std::array<uint64_t, kBootGdtEntries> BootGdt();
// The segment state for one of the selectors above, decoded from BootGdt().
Segment BootSegment(uint16_t selector);
DescriptorTable BootGdtr();

// Writes BootGdt() at layout::kGdtAddr.
Status WriteBootGdt(const GuestMemory& mem);

}  // namespace vmm::x86
