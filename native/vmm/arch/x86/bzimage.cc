#include "arch/x86/bzimage.h"

#include <algorithm>
#include <cstring>

#include "arch/x86/boot_params.h"
#include "arch/x86/layout.h"

namespace vmm::x86 {

namespace {

template <typename T>
T Get(const uint8_t* image, uint64_t off) {
  T v;
  std::memcpy(&v, image + off, sizeof v);
  return v;
}

using ull = unsigned long long;

}  // namespace

Result<BzImageInfo> ParseBzImage(const uint8_t* image, size_t size) {
  if (!image || size < hdr::kMinEnd)
    return Status::Error(Format("bzImage: %zu bytes is too small to hold a setup header (0x%llx)", size,
                                (ull)hdr::kMinEnd));
  const uint16_t boot_flag = Get<uint16_t>(image, hdr::kBootFlag);
  if (boot_flag != hdr::kBootFlagMagic)
    return Status::Error(Format("bzImage: boot_flag 0x%04x at 0x1fe is not 0xaa55", boot_flag));
  const uint32_t magic = Get<uint32_t>(image, hdr::kHeader);
  if (magic != hdr::kHeaderMagic)
    return Status::Error(Format("bzImage: header magic 0x%08x at 0x202 is not \"HdrS\" (boot protocol < 2.00?)", magic));
  BzImageInfo info;
  info.version = Get<uint16_t>(image, hdr::kVersion);
  if (info.version < hdr::kMinVersion)
    return Status::Error(Format("bzImage: boot protocol version 0x%04x is older than 2.12 (0x020c)", info.version));
  info.header_end = 0x202 + uint64_t(image[hdr::kJump + 1]);
  if (image[hdr::kJump] != 0xeb || info.header_end < hdr::kMinEnd)
    return Status::Error(Format("bzImage: jump 0x%04x at 0x200 ends the setup header at 0x%llx, before 0x%llx",
                                Get<uint16_t>(image, hdr::kJump), (ull)info.header_end, (ull)hdr::kMinEnd));
  const uint8_t setup_sects = image[hdr::kSetupSects];
  info.setup_size = (uint64_t(setup_sects ? setup_sects : 4) + 1) * 512;
  if (info.header_end > info.setup_size)
    return Status::Error(Format("bzImage: setup header end 0x%llx lies beyond the setup code (setup_sects %u)",
                                (ull)info.header_end, setup_sects));
  if (info.setup_size >= size)
    return Status::Error(Format("bzImage: setup_sects %u (0x%llx bytes) leaves no kernel in a %zu-byte image",
                                setup_sects, (ull)info.setup_size, size));
  info.kernel_size = size - info.setup_size;
  const uint64_t syssize = Get<uint32_t>(image, hdr::kSyssize);
  if (syssize * 16 > info.kernel_size + 15)
    return Status::Error(Format("bzImage: syssize 0x%llx paragraphs exceeds the 0x%llx bytes after the setup code",
                                (ull)syssize, (ull)info.kernel_size));
  info.loadflags = image[hdr::kLoadflags];
  if (!(info.loadflags & hdr::kLoadedHigh))
    return Status::Error(Format("bzImage: loadflags 0x%02x lack LOADED_HIGH: a zImage, not supported", info.loadflags));
  info.xloadflags = Get<uint16_t>(image, hdr::kXloadflags);
  if (!(info.xloadflags & hdr::kXlfKernel64))
    return Status::Error(Format("bzImage: xloadflags 0x%04x lack XLF_KERNEL_64: no 64-bit entry point", info.xloadflags));
  info.initrd_addr_max = Get<uint32_t>(image, hdr::kInitrdAddrMax);
  info.kernel_alignment = Get<uint32_t>(image, hdr::kKernelAlignment);
  info.relocatable = image[hdr::kRelocatable] != 0;
  if (info.relocatable && (info.kernel_alignment == 0 || (info.kernel_alignment & (info.kernel_alignment - 1))))
    return Status::Error(Format("bzImage: kernel_alignment 0x%x is not a power of two", info.kernel_alignment));
  info.cmdline_size = Get<uint32_t>(image, hdr::kCmdlineSize);
  if (info.cmdline_size == 0)
    return Status::Error("bzImage: cmdline_size is 0");
  info.pref_address = Get<uint64_t>(image, hdr::kPrefAddress);
  if (info.pref_address >= layout::kMmioGapStart)
    return Status::Error(Format("bzImage: pref_address 0x%llx is not below the MMIO gap at 0x%llx",
                                (ull)info.pref_address, (ull)layout::kMmioGapStart));
  info.init_size = Get<uint32_t>(image, hdr::kInitSize);
  if (info.init_size == 0)
    return Status::Error("bzImage: init_size is 0");
  return info;
}

uint64_t BzImageKernelEnd(const BzImageInfo& info, uint64_t load_addr) {
  uint64_t run = info.pref_address ? info.pref_address : load_addr;
  if (info.relocatable) {
    const uint64_t a = info.kernel_alignment;
    run = std::max((load_addr + a - 1) & ~(a - 1), info.pref_address);
  }
  return std::max(load_addr + info.kernel_size, run + info.init_size);
}

Status LoadBzImage(const GuestMemory& mem, const uint8_t* image, size_t size, const BzImageInfo& info,
                   uint64_t load_addr, uint64_t ram_end) {
  if (info.setup_size + info.kernel_size != size)
    return Status::Error(Format("bzImage: %zu bytes do not match the parsed header (0x%llx + 0x%llx)", size,
                                (ull)info.setup_size, (ull)info.kernel_size));
  const uint64_t end = BzImageKernelEnd(info, load_addr);
  const uint64_t limit = std::min(ram_end, mem.size());
  if (end > limit)
    return Status::Error(Format("bzImage: the kernel needs guest RAM up to 0x%llx (%llu MiB; init_size 0x%x from "
                                "0x%llx) but RAM ends at 0x%llx",
                                (ull)end, (ull)((end + (1 << 20) - 1) >> 20), info.init_size,
                                (ull)std::max(load_addr, info.pref_address), (ull)limit));
  if (!mem.write(load_addr, image + info.setup_size, info.kernel_size))
    return Status::Error(Format("bzImage: kernel of 0x%llx bytes at 0x%llx does not fit", (ull)info.kernel_size,
                                (ull)load_addr));
  return {};
}

}  // namespace vmm::x86
