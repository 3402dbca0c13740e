#include "arch/x86/boot.h"

#include <algorithm>

#include "arch/x86/boot_params.h"
#include "arch/x86/bzimage.h"
#include "arch/x86/gdt.h"
#include "arch/x86/layout.h"
#include "arch/x86/page_tables.h"
#include "arch/x86/pvh.h"

namespace vmm::x86 {

namespace {
using ull = unsigned long long;
}  // namespace

Result<uint64_t> PlaceInitrd(uint64_t size, uint64_t min_start, uint64_t max_end) {
  const uint64_t start = max_end >= size ? (max_end - size) & ~(layout::kInitrdAlign - 1) : 0;
  if (max_end < size || start < min_start)
    return Status::Error(Format("initrd: %llu bytes do not fit between the kernel's end 0x%llx and 0x%llx "
                                "(%llu bytes free); give the guest more memory",
                                (ull)size, (ull)min_start, (ull)max_end,
                                (ull)(max_end > min_start ? max_end - min_start : 0)));
  return start;
}

Result<LinuxBootInfo> LoadLinux(const GuestMemory& mem, const LinuxBootConfig& c) {
  const uint64_t low_end = LowRamEnd(c.ram_bytes);
  if (c.ram_bytes < layout::kHighMemStart + layout::kPageSize)
    return Status::Error(Format("boot: ram_bytes %llu is below the minimum of 1 MiB + 4 KiB", (ull)c.ram_bytes));
  if (mem.size() < low_end)
    return Status::Error(Format("boot: ram_bytes 0x%llx needs low RAM up to 0x%llx but guest memory maps only 0x%llx",
                                (ull)c.ram_bytes, (ull)low_end, (ull)mem.size()));
  if (!c.kernel || c.kernel_size == 0) return Status::Error("boot: no kernel image");
  if (c.initrd_size && !c.initrd) return Status::Error("boot: initrd_size without initrd bytes");

  LinuxBootInfo out;
  uint64_t cmdline_max = layout::kCmdlineMaxBytes - 1, initrd_max_end = low_end;
  BzImageInfo bz;
  ElfKernelInfo elf;
  if (LooksLikeElf(c.kernel, c.kernel_size)) {
    out.format = KernelFormat::kElfPvh;
    auto parsed = ParseElfVmlinux(c.kernel, c.kernel_size);
    if (!parsed.ok()) return parsed.status();
    elf = std::move(parsed.value());
    Status s = LoadElfVmlinux(mem, c.kernel, c.kernel_size, elf, low_end, c.ram_zeroed);
    if (!s.ok()) return s;
    out.kernel_start = elf.kernel_start;
    out.kernel_end = elf.kernel_end;
  } else {
    auto parsed = ParseBzImage(c.kernel, c.kernel_size);
    if (!parsed.ok()) return Status::Error(parsed.error() + " (and not an ELF vmlinux)");
    bz = parsed.value();
    Status s = LoadBzImage(mem, c.kernel, c.kernel_size, bz, layout::kKernelLoadAddr, low_end);
    if (!s.ok()) return s;
    out.kernel_start = layout::kKernelLoadAddr;
    out.kernel_end = BzImageKernelEnd(bz, layout::kKernelLoadAddr);
    cmdline_max = std::min<uint64_t>(cmdline_max, bz.cmdline_size);
    initrd_max_end = std::min<uint64_t>(initrd_max_end, uint64_t(bz.initrd_addr_max) + 1);
  }

  if (c.initrd_size) {
    auto at = PlaceInitrd(c.initrd_size, (out.kernel_end + layout::kInitrdAlign - 1) & ~(layout::kInitrdAlign - 1),
                          initrd_max_end);
    if (!at.ok()) return at.status();
    if (!mem.write(at.value(), c.initrd, c.initrd_size))
      return Status::Error(Format("initrd: %zu bytes at 0x%llx do not fit", c.initrd_size, (ull)at.value()));
    out.initrd_addr = at.value();
    out.initrd_size = c.initrd_size;
  }

  out.cmdline_addr = layout::kCmdlineAddr;
  Status s = WriteCmdline(mem, out.cmdline_addr, c.cmdline, cmdline_max);
  if (!s.ok()) return s;

  auto acpi = BuildAcpiTables(c.acpi);
  if (!acpi.ok()) return acpi.status();
  if (!(s = WriteAcpiTables(mem, acpi.value())).ok()) return s;
  out.rsdp_addr = acpi->rsdp_addr;

  if (!(s = WriteBootGdt(mem)).ok()) return s;
  const auto e820 = GuestE820(c.ram_bytes);

  if (out.format == KernelFormat::kElfPvh) {
    PvhStartInfoParams p;
    p.cmdline_addr = out.cmdline_addr;
    p.initrd_addr = out.initrd_addr;
    p.initrd_size = out.initrd_size;
    p.rsdp_addr = out.rsdp_addr;
    p.memmap = e820;
    if (!(s = WritePvhStartInfo(mem, p)).ok()) return s;
    out.cpu = Pvh32BootState(elf.pvh_entry, layout::kPvhStartInfoAddr);
  } else {
    if (!(s = WriteIdentityPageTables(mem)).ok()) return s;
    ZeroPageParams p;
    p.setup_header = c.kernel + hdr::kSetupSects;
    p.setup_header_len = bz.header_end - hdr::kSetupSects;
    p.cmdline_addr = out.cmdline_addr;
    p.initrd_addr = out.initrd_addr;
    p.initrd_size = out.initrd_size;
    p.rsdp_addr = out.rsdp_addr;
    p.e820 = e820;
    if (!(s = WriteZeroPage(mem, layout::kZeroPageAddr, p)).ok()) return s;
    out.cpu = Linux64BootState(layout::kKernelLoadAddr + layout::kBzImage64EntryOffset, layout::kZeroPageAddr);
  }
  return out;
}

}  // namespace vmm::x86
