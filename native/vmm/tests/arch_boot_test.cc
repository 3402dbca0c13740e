// GDT, identity page tables, initial registers, e820, zero page, command line, initrd placement.
#include <vector>

#include "arch/x86/boot.h"
#include "arch/x86/boot_params.h"
#include "arch/x86/gdt.h"
#include "arch/x86/layout.h"
#include "arch/x86/page_tables.h"
#include "arch/x86/regs.h"
#include "tests/arch_test_util.h"
#include "tests/check.h"

using namespace vmm::x86;
using vmm::test::Contains;
using vmm::test::MemLoad;

VMM_TEST(arch_gdt_flat_descriptors) {
  const auto gdt = BootGdt();
  CHECK_EQ(gdt[0], 0ull);
  CHECK_EQ(gdt[kSelCode32 >> 3], 0x00cf9b000000ffffull);
  CHECK_EQ(gdt[kSelCode64 >> 3], 0x00af9b000000ffffull);
  CHECK_EQ(gdt[kSelData >> 3], 0x00cf93000000ffffull);
  CHECK_EQ(gdt[kSelTss >> 3], 0x00008b0000000067ull);
  CHECK_EQ(gdt[(kSelTss >> 3) + 1], 0ull);
  const Segment cs = BootSegment(kSelCode64);
  CHECK_EQ(cs.limit, 0xffffffffu);
  CHECK(cs.l == 1 && cs.db == 0 && cs.g == 1 && cs.s == 1 && cs.present == 1 && cs.type == 0xb);
  const Segment tr = BootSegment(kSelTss);
  CHECK(tr.s == 0 && tr.type == 0xb && tr.limit == 0x67 && tr.g == 0 && tr.unusable == 0);
  // Round trip of an arbitrary descriptor.
  Segment s;
  s.base = 0x12345678;
  s.limit = 0xabcde;
  s.type = 0x3;
  s.s = s.present = s.db = 1;
  s.dpl = 3;
  const Segment back = DecodeDescriptor(EncodeDescriptor(s), 0x2b);
  CHECK(back.base == s.base && back.limit == s.limit && back.dpl == 3 && back.selector == 0x2b && back.g == 0);
}

VMM_TEST(arch_gdt_in_memory_matches_segment_state) {
  vmm::test::TestRam ram(1 << 20);
  CHECK(WriteBootGdt(ram.mem()).ok());
  for (uint16_t sel : {kSelCode32, kSelCode64, kSelData, kSelTss}) {
    const uint64_t d = MemLoad<uint64_t>(ram.mem(), layout::kGdtAddr + sel);
    const Segment a = DecodeDescriptor(d, sel), b = BootSegment(sel);
    CHECK(a.base == b.base && a.limit == b.limit && a.type == b.type && a.l == b.l && a.db == b.db);
  }
  CHECK_EQ(BootGdtr().limit, uint16_t(kBootGdtEntries * 8 - 1));
  vmm::test::TestRam tiny(0x510);
  auto s = WriteBootGdt(tiny.mem());
  CHECK(!s.ok() && Contains(s.error(), "GDT"));
}

VMM_TEST(arch_page_tables_identity_map_first_4g) {
  vmm::test::TestRam ram(1 << 20);
  const auto mem = ram.mem();
  mem.store<uint64_t>(layout::kPdAddr + 8, 0xdead);  // stale data is overwritten
  CHECK(WriteIdentityPageTables(mem).ok());
  auto walk = [&](uint64_t va) -> uint64_t {
    const uint64_t pml4e = MemLoad<uint64_t>(mem, layout::kPml4Addr + ((va >> 39) & 511) * 8);
    if (!(pml4e & kPtePresent)) return ~0ull;
    const uint64_t pdpte = MemLoad<uint64_t>(mem, (pml4e & ~0xfffull) + ((va >> 30) & 511) * 8);
    if (!(pdpte & kPtePresent)) return ~0ull;
    const uint64_t pde = MemLoad<uint64_t>(mem, (pdpte & ~0xfffull) + ((va >> 21) & 511) * 8);
    if (!(pde & kPtePresent) || !(pde & kPteHuge) || !(pde & kPteWritable)) return ~0ull;
    return (pde & ~0x1fffffull) + (va & 0x1fffff);
  };
  for (uint64_t va : {0ull, 0x1234567ull, 0x40000000ull, 0xbfffffffull, 0xd0000000ull, 0xffffffffull})
    CHECK_EQ(walk(va), va);
  CHECK_EQ(walk(0x100000000ull), ~0ull);  // nothing above 4 GiB
  vmm::test::TestRam tiny(0x4000);
  CHECK(!WriteIdentityPageTables(tiny.mem()).ok());
}

VMM_TEST(arch_regs_linux_64bit_entry) {
  const BootCpuState st = Linux64BootState(0x100200, layout::kZeroPageAddr);
  CHECK_EQ(st.rip, 0x100200ull);
  CHECK_EQ(st.rsi, layout::kZeroPageAddr);
  CHECK_EQ(st.cs.selector, kSelCode64);
  CHECK(st.cs.l == 1 && st.cs.db == 0);
  CHECK(st.ds.selector == kSelData && st.es.selector == kSelData && st.ss.selector == kSelData);
  CHECK((st.cr0 & (kCr0Pe | kCr0Pg)) == (kCr0Pe | kCr0Pg));
  CHECK_EQ(st.cr3, layout::kPml4Addr);
  CHECK(st.cr4 & kCr4Pae);
  CHECK_EQ(st.efer, kEferLme | kEferLma);
  CHECK_EQ(st.rflags, 2ull);  // interrupts off
  CHECK_EQ(st.gdt.base, layout::kGdtAddr);
  CHECK_EQ(st.tr.selector, kSelTss);
}

VMM_TEST(arch_regs_pvh_32bit_entry) {
  const BootCpuState st = Pvh32BootState(0x1000850, layout::kPvhStartInfoAddr);
  CHECK_EQ(st.rip, 0x1000850ull);
  CHECK_EQ(st.rbx, layout::kPvhStartInfoAddr);
  CHECK_EQ(st.cs.selector, kSelCode32);
  CHECK(st.cs.l == 0 && st.cs.db == 1 && st.cs.limit == 0xffffffffu);
  CHECK(st.cr0 & kCr0Pe);
  CHECK_EQ(st.cr0 & kCr0Pg, 0ull);
  CHECK_EQ(st.efer, 0ull);
  CHECK_EQ(st.cr4, 0ull);
  CHECK_EQ(st.tr.type, 0xb);
}

VMM_TEST(arch_e820_describes_low_and_high_ram) {
  const auto small = GuestE820(256ull << 20);
  CHECK_EQ(small.size(), size_t(3));
  CHECK(small[0].addr == 0 && small[0].size == layout::kEbdaStart && small[0].type == kE820Ram);
  CHECK(small[1].addr == layout::kEbdaStart && small[1].type == kE820Reserved);
  CHECK(small[1].addr + small[1].size == layout::kHighMemStart);
  CHECK(small[2].addr == layout::kHighMemStart && small[2].addr + small[2].size == (256ull << 20));
  const auto big = GuestE820(4ull << 30);
  CHECK_EQ(big.size(), size_t(4));
  CHECK_EQ(big[2].addr + big[2].size, layout::kMmioGapStart);
  CHECK(big[3].addr == layout::kHighRamStart && big[3].size == (1ull << 30));
  uint64_t total = 0;
  for (const auto& e : big) total += e.type == kE820Ram ? e.size : 0;
  CHECK_EQ(total, (4ull << 30) - (layout::kHighMemStart - layout::kEbdaStart));
  // The ACPI area is inside the reserved entry.
  CHECK(layout::kAcpiStart >= small[1].addr && layout::kAcpiEnd <= small[1].addr + small[1].size);
}

VMM_TEST(arch_zero_page_fields) {
  vmm::test::TestRam ram(1 << 20);
  const auto mem = ram.mem();
  std::vector<uint8_t> header(0x26c - 0x1f1, 0);
  header[0x211 - 0x1f1] = 0x01;  // loadflags
  header[0x236 - 0x1f1] = 0x7f;  // xloadflags, copied through
  ZeroPageParams p;
  p.setup_header = header.data();
  p.setup_header_len = header.size();
  p.cmdline_addr = layout::kCmdlineAddr;
  p.initrd_addr = 0x7f00000;
  p.initrd_size = 0x12345;
  p.rsdp_addr = layout::kRsdpAddr;
  p.e820 = GuestE820(128 << 20);
  mem.store<uint32_t>(layout::kZeroPageAddr + 0x800, 0xffffffff);  // stale bytes are cleared
  CHECK(WriteZeroPage(mem, layout::kZeroPageAddr, p).ok());
  const uint64_t z = layout::kZeroPageAddr;
  CHECK_EQ(MemLoad<uint8_t>(mem, z + 0x210), 0xff);  // type_of_loader
  CHECK_EQ(MemLoad<uint8_t>(mem, z + 0x211), 0x01);
  CHECK_EQ(MemLoad<uint16_t>(mem, z + 0x236), 0x7f);
  CHECK_EQ(MemLoad<uint32_t>(mem, z + 0x228), uint32_t(layout::kCmdlineAddr));
  CHECK_EQ(MemLoad<uint32_t>(mem, z + 0x218), 0x7f00000u);
  CHECK_EQ(MemLoad<uint32_t>(mem, z + 0x21c), 0x12345u);
  CHECK_EQ(MemLoad<uint64_t>(mem, z + 0x070), layout::kRsdpAddr);
  CHECK_EQ(MemLoad<uint8_t>(mem, z + 0x1e8), 3);
  CHECK_EQ(MemLoad<uint64_t>(mem, z + 0x2d0 + 2 * 20), layout::kHighMemStart);
  CHECK_EQ(MemLoad<uint64_t>(mem, z + 0x2d0 + 2 * 20 + 8), (128ull << 20) - layout::kHighMemStart);
  CHECK_EQ(MemLoad<uint32_t>(mem, z + 0x2d0 + 2 * 20 + 16), 1u);
  CHECK_EQ(MemLoad<uint32_t>(mem, z + 0x800), 0u);
  CHECK_EQ(MemLoad<uint8_t>(mem, z + 0x1ef), 0);  // sentinel

  p.e820.resize(129);
  auto too_many = WriteZeroPage(mem, z, p);
  CHECK(!too_many.ok() && Contains(too_many.error(), "129 e820 entries"));
  vmm::test::TestRam tiny(z + 0x800);
  CHECK(!WriteZeroPage(tiny.mem(), z, ZeroPageParams{}).ok());
}

VMM_TEST(arch_cmdline_limits) {
  vmm::test::TestRam ram(1 << 20);
  CHECK(WriteCmdline(ram.mem(), layout::kCmdlineAddr, "console=ttyS0", 13).ok());
  char buf[14];
  ram.mem().read(layout::kCmdlineAddr, buf, 14);
  CHECK(std::string(buf) == "console=ttyS0");
  auto longer = WriteCmdline(ram.mem(), layout::kCmdlineAddr, "console=ttyS0", 12);
  CHECK(!longer.ok() && Contains(longer.error(), "13 bytes exceed the limit of 12"));
  auto nul = WriteCmdline(ram.mem(), layout::kCmdlineAddr, std::string("a\0b", 3), 100);
  CHECK(!nul.ok() && Contains(nul.error(), "NUL"));
  vmm::test::TestRam tiny(layout::kCmdlineAddr + 4);
  CHECK(!WriteCmdline(tiny.mem(), layout::kCmdlineAddr, "console=ttyS0", 100).ok());
}

VMM_TEST(arch_initrd_goes_as_high_as_it_fits) {
  auto a = PlaceInitrd(0x1800, 0x200000, 0x800000);
  CHECK(a.ok() && a.value() == 0x7fe000);  // page-aligned, below the end
  auto exact = PlaceInitrd(0x1000, 0x7ff000, 0x800000);
  CHECK(exact.ok() && exact.value() == 0x7ff000);
  auto no = PlaceInitrd(0x1001, 0x7ff000, 0x800000);
  CHECK(!no.ok() && Contains(no.error(), "4097 bytes do not fit"));
  auto huge = PlaceInitrd(0x900000, 0, 0x800000);
  CHECK(!huge.ok());
}
