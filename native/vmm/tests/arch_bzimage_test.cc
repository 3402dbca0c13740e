// bzImage: header validation field by field on synthetic images, the whole Linux boot layout via
// LoadLinux, and the Debian cloud kernel's real header when it is in the cache.
#include <cstdio>
#include <functional>
#include <vector>

#include "arch/x86/acpi.h"
#include "arch/x86/boot.h"
#include "arch/x86/bzimage.h"
#include "arch/x86/layout.h"
#include "tests/arch_test_util.h"
#include "tests/check.h"

using namespace vmm::x86;
using vmm::test::Contains;
using vmm::test::MemLoad;
using vmm::test::SetLe;

namespace {

constexpr uint32_t kSetupSects = 4;
constexpr uint32_t kPayload = 0x3000;  // protected-mode bytes

// A minimal well-formed bzImage (protocol 2.15, relocatable, 64-bit) with a recognizable payload.
std::vector<uint8_t> MakeBzImage() {
  std::vector<uint8_t> img((kSetupSects + 1) * 512 + kPayload, 0);
  img[0x1f1] = kSetupSects;
  SetLe<uint32_t>(&img, 0x1f4, kPayload / 16);
  SetLe<uint16_t>(&img, 0x1fe, 0xaa55);
  img[0x200] = 0xeb;
  img[0x201] = 0x6a;  // header ends at 0x26c
  SetLe<uint32_t>(&img, 0x202, 0x53726448);
  SetLe<uint16_t>(&img, 0x206, 0x020f);
  img[0x211] = 0x01;
  SetLe<uint32_t>(&img, 0x214, 0x100000);
  SetLe<uint32_t>(&img, 0x22c, 0x7fffffff);
  SetLe<uint32_t>(&img, 0x230, 0x200000);
  img[0x234] = 1;
  SetLe<uint16_t>(&img, 0x236, 0x3);
  SetLe<uint32_t>(&img, 0x238, 2047);
  SetLe<uint64_t>(&img, 0x258, 0x1000000);
  SetLe<uint32_t>(&img, 0x260, 0x400000);
  for (uint32_t i = 0; i < kPayload; i++) img[(kSetupSects + 1) * 512 + i] = uint8_t(i * 7 + 1);
  return img;
}

LinuxBootConfig Config(const std::vector<uint8_t>& kernel, uint64_t ram) {
  LinuxBootConfig c;
  c.kernel = kernel.data();
  c.kernel_size = kernel.size();
  c.ram_bytes = ram;
  c.cmdline = "console=ttyS0 reboot=k panic=-1";
  c.acpi.vcpus = 2;
  c.acpi.virtio_slots = 3;
  return c;
}

}  // namespace

VMM_TEST(arch_bzimage_parses_a_valid_header) {
  const auto img = MakeBzImage();
  auto r = ParseBzImage(img.data(), img.size());
  CHECK(r.ok());
  if (!r.ok()) return;
  CHECK_EQ(r->version, 0x020f);
  CHECK_EQ(r->setup_size, uint64_t(5 * 512));
  CHECK_EQ(r->kernel_size, uint64_t(kPayload));
  CHECK_EQ(r->header_end, uint64_t(0x26c));
  CHECK(r->relocatable);
  // Runs at max(align_up(1 MiB, 2 MiB), pref 16 MiB) = 16 MiB, needs init_size from there.
  CHECK_EQ(BzImageKernelEnd(r.value(), layout::kKernelLoadAddr), 0x1000000ull + 0x400000);
}

VMM_TEST(arch_bzimage_rejects_each_bad_field) {
  struct Case {
    const char* expect;
    std::function<void(std::vector<uint8_t>*)> mutate;
  };
  const std::vector<Case> cases = {
      {"too small", [](auto* b) { b->resize(0x200); }},
      {"boot_flag 0x0000", [](auto* b) { SetLe<uint16_t>(b, 0x1fe, 0); }},
      {"not \"HdrS\"", [](auto* b) { (*b)[0x202] = 'X'; }},
      {"version 0x020b is older than 2.12", [](auto* b) { SetLe<uint16_t>(b, 0x206, 0x020b); }},
      {"ends the setup header at 0x262", [](auto* b) { (*b)[0x201] = 0x60; }},
      {"leaves no kernel", [](auto* b) { (*b)[0x1f1] = 200; }},
      {"syssize 0x400 paragraphs", [](auto* b) { SetLe<uint32_t>(b, 0x1f4, 0x400); }},
      {"lack LOADED_HIGH", [](auto* b) { (*b)[0x211] = 0; }},
      {"lack XLF_KERNEL_64", [](auto* b) { SetLe<uint16_t>(b, 0x236, 2); }},
      {"kernel_alignment 0x3000", [](auto* b) { SetLe<uint32_t>(b, 0x230, 0x3000); }},
      {"cmdline_size is 0", [](auto* b) { SetLe<uint32_t>(b, 0x238, 0); }},
      {"pref_address 0xd0000000", [](auto* b) { SetLe<uint64_t>(b, 0x258, 0xd0000000); }},
      {"init_size is 0", [](auto* b) { SetLe<uint32_t>(b, 0x260, 0); }},
  };
  for (const auto& c : cases) {
    auto img = MakeBzImage();
    c.mutate(&img);
    auto r = ParseBzImage(img.data(), img.size());
    CHECK(!r.ok());
    if (!Contains(r.error(), c.expect)) vmm::test::fail(__FILE__, __LINE__, "want \"" + std::string(c.expect) + "\", got \"" + r.error() + "\"");
  }
  CHECK(!ParseBzImage(nullptr, 0).ok());
}

VMM_TEST(arch_bzimage_boot_layout) {
  const auto img = MakeBzImage();
  std::vector<uint8_t> initrd(0x2345, 0x5a);
  auto c = Config(img, 64 << 20);
  c.initrd = initrd.data();
  c.initrd_size = initrd.size();
  vmm::test::TestRam ram(64 << 20);
  const auto mem = ram.mem();
  auto r = LoadLinux(mem, c);
  CHECK(r.ok());
  if (!r.ok()) { vmm::test::fail(__FILE__, __LINE__, r.error()); return; }
  CHECK(r->format == KernelFormat::kBzImage);
  // Kernel bytes at 1 MiB, entry at +0x200, zero page in RSI.
  CHECK(std::memcmp(ram.host() + layout::kKernelLoadAddr, img.data() + 5 * 512, kPayload) == 0);
  CHECK_EQ(r->cpu.rip, layout::kKernelLoadAddr + 0x200);
  CHECK_EQ(r->cpu.rsi, layout::kZeroPageAddr);
  CHECK_EQ(r->cpu.cr3, layout::kPml4Addr);
  // Initrd: highest page-aligned spot below the end of RAM, above the kernel's footprint.
  CHECK_EQ(r->initrd_addr, ((64ull << 20) - initrd.size()) & ~0xfffull);
  CHECK(r->initrd_addr >= r->kernel_end);
  CHECK(std::memcmp(ram.host() + r->initrd_addr, initrd.data(), initrd.size()) == 0);
  // Zero page: header copied, loader fields set.
  const uint64_t z = layout::kZeroPageAddr;
  CHECK_EQ(MemLoad<uint16_t>(mem, z + 0x1fe), 0xaa55);
  CHECK_EQ(MemLoad<uint32_t>(mem, z + 0x202), 0x53726448u);
  CHECK_EQ(MemLoad<uint32_t>(mem, z + 0x218), uint32_t(r->initrd_addr));
  CHECK_EQ(MemLoad<uint32_t>(mem, z + 0x21c), uint32_t(initrd.size()));
  CHECK_EQ(MemLoad<uint32_t>(mem, z + 0x228), uint32_t(layout::kCmdlineAddr));
  CHECK_EQ(MemLoad<uint64_t>(mem, z + 0x070), layout::kRsdpAddr);
  CHECK_EQ(MemLoad<uint8_t>(mem, z + 0x1e8), 3);
  char cmdline[64] = {};
  mem.read(layout::kCmdlineAddr, cmdline, sizeof cmdline - 1);
  CHECK(std::string(cmdline) == c.cmdline);
  // ACPI and the identity map are there.
  uint8_t rsdp[36];
  mem.read(layout::kRsdpAddr, rsdp, 36);
  CHECK(std::memcmp(rsdp, "RSD PTR ", 8) == 0 && AcpiSum(rsdp, 20) == 0 && AcpiSum(rsdp, 36) == 0);
  CHECK_EQ(MemLoad<uint64_t>(mem, layout::kPml4Addr), layout::kPdptAddr | 3);
}

VMM_TEST(arch_bzimage_boot_errors_name_the_problem) {
  const auto img = MakeBzImage();
  {
    vmm::test::TestRam ram(16 << 20);
    auto r = LoadLinux(ram.mem(), Config(img, 16 << 20));  // init_size needs RAM up to 20 MiB
    CHECK(!r.ok() && Contains(r.error(), "needs guest RAM up to 0x1400000 (20 MiB"));
  }
  vmm::test::TestRam ram(32 << 20);
  {
    std::vector<uint8_t> initrd(13 << 20);  // 12 MiB free above the kernel
    auto c = Config(img, 32 << 20);
    c.initrd = initrd.data();
    c.initrd_size = initrd.size();
    auto r = LoadLinux(ram.mem(), c);
    CHECK(!r.ok() && Contains(r.error(), "initrd: 13631488 bytes do not fit"));
  }
  {
    auto small = img;
    SetLe<uint32_t>(&small, 0x238, 10);
    auto r = LoadLinux(ram.mem(), Config(small, 32 << 20));
    CHECK(!r.ok() && Contains(r.error(), "exceed the limit of 10"));
  }
  {
    auto r = LoadLinux(ram.mem(), Config(img, 64 << 20));  // claims more RAM than is mapped
    CHECK(!r.ok() && Contains(r.error(), "guest memory maps only"));
  }
  {
    std::vector<uint8_t> junk(4096, 0x90);
    auto r = LoadLinux(ram.mem(), Config(junk, 32 << 20));
    CHECK(!r.ok() && Contains(r.error(), "boot_flag") && Contains(r.error(), "not an ELF"));
  }
  {
    auto low = img;
    SetLe<uint32_t>(&low, 0x22c, 0x13fffff);  // initrd_addr_max + 1 = the kernel's end
    std::vector<uint8_t> initrd(0x1000);
    auto c = Config(low, 32 << 20);
    c.initrd = initrd.data();
    c.initrd_size = initrd.size();
    auto r = LoadLinux(ram.mem(), c);
    CHECK(!r.ok() && Contains(r.error(), "and 0x1400000 (0 bytes free)"));
  }
}

VMM_TEST(arch_bzimage_debian_cloud_kernel) {
  std::string why;
  const std::string path = vmm::test::FindDebianKernel(&why);
  if (path.empty()) {
    std::printf("SKIP arch_bzimage_debian_cloud_kernel: %s\n", why.c_str());
    return;
  }
  std::vector<uint8_t> img;
  CHECK(vmm::test::ReadFile(path, &img));
  auto r = ParseBzImage(img.data(), img.size());
  CHECK(r.ok());
  if (!r.ok()) { vmm::test::fail(__FILE__, __LINE__, path + ": " + r.error()); return; }
  CHECK(r->version >= 0x020c);
  CHECK(r->xloadflags & 1);
  CHECK(r->relocatable);
  CHECK_EQ(r->kernel_alignment, 0x200000u);
  CHECK(r->cmdline_size >= 255);
  CHECK(r->init_size > r->kernel_size);
  vmm::test::TestRam ram(256 << 20);
  std::vector<uint8_t> initrd(1 << 20, 0x11);
  auto c = Config(img, 256 << 20);
  c.initrd = initrd.data();
  c.initrd_size = initrd.size();
  auto boot = LoadLinux(ram.mem(), c);
  CHECK(boot.ok());
  if (!boot.ok()) { vmm::test::fail(__FILE__, __LINE__, boot.error()); return; }
  CHECK(boot->kernel_end > 0x1000000);
  CHECK(boot->initrd_addr >= boot->kernel_end);
  CHECK_EQ(boot->cpu.rip, 0x100200ull);
  std::printf("# %s: protocol %x.%02x, init_size 0x%x, kernel ends 0x%llx, initrd at 0x%llx\n", path.c_str(),
              r->version >> 8, r->version & 0xff, r->init_size, (unsigned long long)boot->kernel_end,
              (unsigned long long)boot->initrd_addr);
}
