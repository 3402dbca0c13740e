#include "arch/x86/gdt.h"

#include "arch/x86/layout.h"

namespace vmm::x86 {

uint64_t EncodeDescriptor(const Segment& seg) {
  uint32_t limit = seg.limit;
  bool g = seg.g != 0;
  if (limit > 0xfffff) {
    limit >>= 12;
    g = true;
  } else if (g) {
    limit >>= 12;
  }
  const uint64_t base = seg.base & 0xffffffffu;
  const uint64_t access = (seg.type & 0xfu) | (uint64_t(seg.s & 1) << 4) | (uint64_t(seg.dpl & 3) << 5) |
                          (uint64_t(seg.present & 1) << 7);
  const uint64_t flags = (uint64_t(seg.avl & 1)) | (uint64_t(seg.l & 1) << 1) | (uint64_t(seg.db & 1) << 2) |
                         (uint64_t(g) << 3);
  return (uint64_t(limit) & 0xffff) | ((base & 0xffffff) << 16) | (access << 40) |
         ((uint64_t(limit >> 16) & 0xf) << 48) | (flags << 52) | ((base >> 24) << 56);
}

Segment DecodeDescriptor(uint64_t d, uint16_t selector) {
  Segment s;
  s.selector = selector;
  s.base = ((d >> 16) & 0xffffff) | (((d >> 56) & 0xff) << 24);
  uint32_t limit = uint32_t((d & 0xffff) | (((d >> 48) & 0xf) << 16));
  s.type = uint8_t((d >> 40) & 0xf);
  s.s = uint8_t((d >> 44) & 1);
  s.dpl = uint8_t((d >> 45) & 3);
  s.present = uint8_t((d >> 47) & 1);
  s.avl = uint8_t((d >> 52) & 1);
  s.l = uint8_t((d >> 53) & 1);
  s.db = uint8_t((d >> 54) & 1);
  s.g = uint8_t((d >> 55) & 1);
  s.limit = s.g ? (limit << 12) | 0xfff : limit;
  s.unusable = s.present ? 0 : 1;
  return s;
}

namespace {

Segment Flat(uint8_t type, bool code64) {
  Segment s;
  s.limit = 0xffffffff;
  s.type = type;
  s.s = 1;
  s.present = 1;
  s.g = 1;
  s.l = code64 ? 1 : 0;
  s.db = code64 ? 0 : 1;  // L and D/B are exclusive for 64-bit code
  return s;
}

}  // namespace

std::array<uint64_t, kBootGdtEntries> BootGdt() {
  Segment tss;
  tss.limit = 0x67;  // the minimal 104-byte TSS; never used before Linux loads its own
  tss.type = 0xb;    // busy TSS (32-bit, or 64-bit in long mode)
  tss.present = 1;
  return {
      0,                                    // 0x00 null
      EncodeDescriptor(Flat(0xb, false)),   // 0x08 code32: execute/read, accessed
      EncodeDescriptor(Flat(0xb, true)),    // 0x10 code64
      EncodeDescriptor(Flat(0x3, false)),   // 0x18 data: read/write, accessed
      EncodeDescriptor(tss),                // 0x20 TSS, low half
      0,                                    // 0x28 TSS, high half (base bits 63:32 = 0)
  };
}

Segment BootSegment(uint16_t selector) {
  const auto gdt = BootGdt();
  const size_t index = selector >> 3;
  return index < gdt.size() ? DecodeDescriptor(gdt[index], selector) : Segment{};
}

DescriptorTable BootGdtr() { return {layout::kGdtAddr, uint16_t(kBootGdtEntries * 8 - 1)}; }

Status WriteBootGdt(const GuestMemory& mem) {
  const auto gdt = BootGdt();
  if (!mem.write(layout::kGdtAddr, gdt.data(), sizeof gdt))
    return Status::Error(Format("GDT: %zu bytes at 0x%llx do not fit in guest memory of 0x%llx bytes", sizeof gdt,
                                (unsigned long long)layout::kGdtAddr, (unsigned long long)mem.size()));
  return {};
}

}  // namespace vmm::x86
