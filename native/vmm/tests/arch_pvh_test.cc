// ELF vmlinux + PVH: validation of the untrusted ELF, segment loading, hvm_start_info, and the
// Debian cloud kernel's own vmlinux (unpacked from its bzImage's LZ4 payload) when it is cached.
#include <cstdio>
#include <functional>
#include <vector>

#include "arch/x86/boot.h"
#include "arch/x86/bzimage.h"
#include "arch/x86/layout.h"
#include "arch/x86/pvh.h"
#include "tests/arch_test_util.h"
#include "tests/check.h"

using namespace vmm::x86;
using vmm::test::Contains;
using vmm::test::Le;
using vmm::test::MemLoad;
using vmm::test::SetLe;

namespace {

constexpr uint64_t kPhoff = 64, kNoteOff = 0x100, kTextOff = 0x200, kDataOff = 0x1200;
constexpr uint64_t kTextPaddr = 0x1000000, kDataPaddr = 0x1200000, kEntry = kTextPaddr + 0x40;

void Phdr(std::vector<uint8_t>* b, int i, uint32_t type, uint64_t off, uint64_t paddr, uint64_t filesz, uint64_t memsz) {
  const size_t p = kPhoff + i * 56;
  SetLe<uint32_t>(b, p, type);
  SetLe<uint64_t>(b, p + 8, off);
  SetLe<uint64_t>(b, p + 16, paddr | 0xffffffff80000000ull);  // vaddr: ignored
  SetLe<uint64_t>(b, p + 24, paddr);
  SetLe<uint64_t>(b, p + 32, filesz);
  SetLe<uint64_t>(b, p + 40, memsz);
}

// ELF64 with text (0x1000 bytes), data (0x100 bytes + 0x2000 bss) and a note segment holding a
// GNU note and the Xen PHYS32_ENTRY note (8-byte descriptor, as Linux emits it).
std::vector<uint8_t> MakeElf() {
  std::vector<uint8_t> b(kDataOff + 0x100, 0);
  const uint8_t ident[] = {0x7f, 'E', 'L', 'F', 2, 1, 1};
  std::memcpy(b.data(), ident, sizeof ident);
  SetLe<uint16_t>(&b, 16, 2);
  SetLe<uint16_t>(&b, 18, 62);
  SetLe<uint32_t>(&b, 20, 1);
  SetLe<uint64_t>(&b, 24, kTextPaddr);
  SetLe<uint64_t>(&b, 32, kPhoff);
  SetLe<uint16_t>(&b, 52, 64);
  SetLe<uint16_t>(&b, 54, 56);
  SetLe<uint16_t>(&b, 56, 3);
  Phdr(&b, 0, 1, kTextOff, kTextPaddr, 0x1000, 0x1000);
  Phdr(&b, 1, 1, kDataOff, kDataPaddr, 0x100, 0x2100);
  // Notes: {namesz 4, descsz 4, type 3, "GNU\0", desc}, {4, 8, 18, "Xen\0", entry}.
  uint64_t n = kNoteOff;
  SetLe<uint32_t>(&b, n, 4), SetLe<uint32_t>(&b, n + 4, 4), SetLe<uint32_t>(&b, n + 8, 3);
  std::memcpy(&b[n + 12], "GNU", 4);
  n += 20;
  SetLe<uint32_t>(&b, n, 4), SetLe<uint32_t>(&b, n + 4, 8), SetLe<uint32_t>(&b, n + 8, 18);
  std::memcpy(&b[n + 12], "Xen", 4);
  SetLe<uint64_t>(&b, n + 16, kEntry);
  Phdr(&b, 2, 4, kNoteOff, 0, 20 + 24, 20 + 24);
  for (uint64_t i = 0; i < 0x1000; i++) b[kTextOff + i] = uint8_t(i ^ 0x5a);
  for (uint64_t i = 0; i < 0x100; i++) b[kDataOff + i] = 0xd7;
  return b;
}

}  // namespace

VMM_TEST(arch_pvh_loads_segments_and_writes_start_info) {
  const auto elf = MakeElf();
  std::vector<uint8_t> initrd(0x3000, 0x42);
  vmm::test::TestRam ram(64 << 20);
  const auto mem = ram.mem();
  std::memset(ram.host() + kDataPaddr + 0x100, 0xee, 0x2000);  // bss must be zeroed
  LinuxBootConfig c;
  c.kernel = elf.data();
  c.kernel_size = elf.size();
  c.initrd = initrd.data();
  c.initrd_size = initrd.size();
  c.cmdline = "console=ttyS0";
  c.ram_bytes = 64 << 20;
  c.acpi.vcpus = 1;
  c.acpi.virtio_slots = 1;
  auto r = LoadLinux(mem, c);
  CHECK(r.ok());
  if (!r.ok()) { vmm::test::fail(__FILE__, __LINE__, r.error()); return; }
  CHECK(r->format == KernelFormat::kElfPvh);
  CHECK(std::memcmp(ram.host() + kTextPaddr, elf.data() + kTextOff, 0x1000) == 0);
  CHECK_EQ(MemLoad<uint8_t>(mem, kDataPaddr + 0xff), 0xd7);
  CHECK_EQ(MemLoad<uint64_t>(mem, kDataPaddr + 0x100), 0ull);
  CHECK_EQ(MemLoad<uint64_t>(mem, kDataPaddr + 0x20f8), 0ull);
  CHECK_EQ(r->kernel_end, kDataPaddr + 0x2100);
  // RAM declared zero: the bss is left as it is (here deliberately not zero, to see it untouched).
  c.ram_zeroed = true;
  std::memset(ram.host() + kDataPaddr + 0x100, 0xee, 0x2000);
  CHECK(LoadLinux(mem, c).ok());
  CHECK_EQ(MemLoad<uint8_t>(mem, kDataPaddr + 0x100), 0xee);
  CHECK_EQ(MemLoad<uint8_t>(mem, kDataPaddr + 0x20ff), 0xee);
  CHECK_EQ(MemLoad<uint8_t>(mem, kDataPaddr + 0xff), 0xd7);
  c.ram_zeroed = false;
  CHECK_EQ(r->cpu.rip, kEntry);
  CHECK_EQ(r->cpu.rbx, layout::kPvhStartInfoAddr);
  CHECK_EQ(r->cpu.cs.db, 1);
  const uint64_t si = layout::kPvhStartInfoAddr;
  CHECK_EQ(MemLoad<uint32_t>(mem, si), 0x336ec578u);
  CHECK_EQ(MemLoad<uint32_t>(mem, si + 4), 1u);
  CHECK_EQ(MemLoad<uint32_t>(mem, si + 12), 1u);
  CHECK_EQ(MemLoad<uint64_t>(mem, si + 16), layout::kPvhModlistAddr);
  CHECK_EQ(MemLoad<uint64_t>(mem, layout::kPvhModlistAddr), r->initrd_addr);
  CHECK_EQ(MemLoad<uint64_t>(mem, layout::kPvhModlistAddr + 8), uint64_t(initrd.size()));
  CHECK_EQ(MemLoad<uint64_t>(mem, si + 24), layout::kCmdlineAddr);
  CHECK_EQ(MemLoad<uint64_t>(mem, si + 32), layout::kRsdpAddr);
  CHECK_EQ(MemLoad<uint64_t>(mem, si + 40), layout::kPvhMemmapAddr);
  CHECK_EQ(MemLoad<uint32_t>(mem, si + 48), 3u);
  const uint64_t last = layout::kPvhMemmapAddr + 2 * 24;
  CHECK_EQ(MemLoad<uint64_t>(mem, last), layout::kHighMemStart);
  CHECK_EQ(MemLoad<uint64_t>(mem, last + 8), (64ull << 20) - layout::kHighMemStart);
  CHECK_EQ(MemLoad<uint32_t>(mem, last + 16), 1u);
  CHECK_EQ(r->initrd_addr, (64ull << 20) - 0x3000);
  CHECK(std::memcmp(ram.host() + r->initrd_addr, initrd.data(), initrd.size()) == 0);
}

VMM_TEST(arch_pvh_rejects_each_bad_field) {
  struct Case {
    const char* expect;
    std::function<void(std::vector<uint8_t>*)> mutate;
  };
  const std::vector<Case> cases = {
      {"class 1 / data 1", [](auto* b) { (*b)[4] = 1; }},
      {"e_type 3", [](auto* b) { SetLe<uint16_t>(b, 16, 3); }},
      {"e_machine 3", [](auto* b) { SetLe<uint16_t>(b, 18, 3); }},
      {"e_phentsize 32", [](auto* b) { SetLe<uint16_t>(b, 54, 32); }},
      {"e_phnum 0", [](auto* b) { SetLe<uint16_t>(b, 56, 0); }},
      {"run past the", [](auto* b) { SetLe<uint64_t>(b, 32, b->size() - 100); }},
      {"segment 0: p_offset", [](auto* b) { SetLe<uint64_t>(b, kPhoff + 32, 0xffffffffffffff00ull); }},
      {"p_filesz 0x80 exceeds p_memsz 0x40", [](auto* b) { Phdr(b, 1, 1, kDataOff, kDataPaddr, 0x80, 0x40); }},
      {"outside 1 MiB", [](auto* b) { Phdr(b, 0, 1, kTextOff, 0x8000, 0x1000, 0x1000); }},
      {"outside 1 MiB", [](auto* b) { Phdr(b, 1, 1, kDataOff, 0xbffff000, 0x100, 0x2000); }},
      {"overlap", [](auto* b) { Phdr(b, 1, 1, kDataOff, kTextPaddr + 0x800, 0x100, 0x100); }},
      {"no XEN_ELFNOTE_PHYS32_ENTRY", [](auto* b) { SetLe<uint32_t>(b, kNoteOff + 20 + 8, 17); }},
      {"not 4 or 8", [](auto* b) { SetLe<uint32_t>(b, kNoteOff + 20 + 4, 2); }},
      {"runs past its PT_NOTE", [](auto* b) { SetLe<uint32_t>(b, kNoteOff + 20 + 4, 0x10000); }},
      {"PVH entry 0x2000000 is not inside", [](auto* b) { SetLe<uint64_t>(b, kNoteOff + 20 + 16, 0x2000000); }},
      {"no PT_LOAD", [](auto* b) { SetLe<uint32_t>(b, kPhoff, 6), SetLe<uint32_t>(b, kPhoff + 56, 6); }},
  };
  for (const auto& c : cases) {
    auto elf = MakeElf();
    c.mutate(&elf);
    auto r = ParseElfVmlinux(elf.data(), elf.size());
    CHECK(!r.ok());
    if (!Contains(r.error(), c.expect))
      vmm::test::fail(__FILE__, __LINE__, "want \"" + std::string(c.expect) + "\", got \"" + r.error() + "\"");
  }
  auto elf = MakeElf();
  vmm::test::TestRam ram(16 << 20);  // the kernel ends at 0x1202100
  auto info = ParseElfVmlinux(elf.data(), elf.size());
  auto s = LoadElfVmlinux(ram.mem(), elf.data(), elf.size(), info.value(), 16 << 20);
  CHECK(!s.ok() && Contains(s.error(), "needs guest RAM up to 0x1202100"));
}

VMM_TEST(arch_pvh_debian_cloud_vmlinux) {
  std::string why;
  const std::string path = vmm::test::FindDebianKernel(&why);
  if (path.empty()) {
    std::printf("SKIP arch_pvh_debian_cloud_vmlinux: %s\n", why.c_str());
    return;
  }
  std::vector<uint8_t> img, vmlinux;
  CHECK(vmm::test::ReadFile(path, &img));
  auto bz = ParseBzImage(img.data(), img.size());
  CHECK(bz.ok());
  if (!bz.ok()) return;
  const uint64_t off = bz->setup_size + Le<uint32_t>(img, 0x248), len = Le<uint32_t>(img, 0x24c);
  CHECK(off + len <= img.size());
  if (off + len > img.size()) return;
  if (!vmm::test::Lz4LegacyDecode(img.data() + off, len, &vmlinux)) {
    std::printf("SKIP arch_pvh_debian_cloud_vmlinux: the payload of %s is not LZ4 (legacy frame)\n", path.c_str());
    return;
  }
  auto elf = ParseElfVmlinux(vmlinux.data(), vmlinux.size());
  CHECK(elf.ok());
  if (!elf.ok()) { vmm::test::fail(__FILE__, __LINE__, elf.error()); return; }
  CHECK_EQ(elf->kernel_start, 0x1000000ull);
  CHECK(elf->pvh_entry > elf->kernel_start && elf->pvh_entry < elf->kernel_end);
  vmm::test::TestRam ram(256 << 20);
  LinuxBootConfig c;
  c.kernel = vmlinux.data();
  c.kernel_size = vmlinux.size();
  c.cmdline = "console=ttyS0";
  c.ram_bytes = 256 << 20;
  auto boot = LoadLinux(ram.mem(), c);
  CHECK(boot.ok());
  if (!boot.ok()) { vmm::test::fail(__FILE__, __LINE__, boot.error()); return; }
  CHECK_EQ(boot->cpu.rip, uint64_t(elf->pvh_entry));
  std::printf("# vmlinux from %s: %zu bytes, %zu segments, PVH entry 0x%x, kernel 0x%llx..0x%llx\n", path.c_str(),
              vmlinux.size(), elf->segments.size(), elf->pvh_entry, (unsigned long long)elf->kernel_start,
              (unsigned long long)elf->kernel_end);
}

// Untrusted images: random corruption of the headers of both formats must end in an error or a
// boot, never a crash or an out-of-bounds access (run under ASan/UBSan when developing).
VMM_TEST(arch_loaders_survive_random_corruption) {
  vmm::test::TestRam ram(40 << 20);
  uint64_t seed = 0x9e3779b97f4a7c15ull;
  auto next = [&]() { seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17; return seed; };
  std::vector<uint8_t> bz((4 + 1) * 512 + 0x1000, 0);
  bz[0x1f1] = 4, bz[0x1fe] = 0x55, bz[0x1ff] = 0xaa, bz[0x200] = 0xeb, bz[0x201] = 0x6a;
  SetLe<uint32_t>(&bz, 0x202, 0x53726448), SetLe<uint16_t>(&bz, 0x206, 0x20f), bz[0x211] = 1;
  SetLe<uint32_t>(&bz, 0x22c, 0x7fffffff), SetLe<uint32_t>(&bz, 0x230, 0x200000), bz[0x234] = 1;
  SetLe<uint16_t>(&bz, 0x236, 1), SetLe<uint32_t>(&bz, 0x238, 255), SetLe<uint32_t>(&bz, 0x260, 0x100000);
  const auto elf = MakeElf();
  int booted = 0, failed = 0;
  for (int i = 0; i < 4000; i++) {
    std::vector<uint8_t> img = (i & 1) ? elf : bz;
    const size_t region = (i & 1) ? kTextOff : 0x270;  // headers, program headers, notes
    for (uint64_t n = next() % 4 + 1; n > 0; n--) {
      const uint64_t r = next();
      const size_t at = (i & 1) ? r % region : 0x1f0 + r % (region - 0x1f0);
      img[at] = uint8_t(r >> 32);
    }
    if (next() % 8 == 0) img.resize(next() % img.size());
    LinuxBootConfig c;
    c.kernel = img.data();
    c.kernel_size = img.size();
    c.ram_bytes = 40 << 20;
    c.cmdline = "x";
    auto r = LoadLinux(ram.mem(), c);
    (r.ok() ? booted : failed)++;
    if (!r.ok()) CHECK(!r.error().empty());
  }
  CHECK(booted > 0 && failed > 0);
}
