// Linux boot in one call: detects the kernel format (ELF vmlinux -> PVH entry, otherwise bzImage
// -> 64-bit entry), validates it, loads kernel and initrd, and writes command line, ACPI tables,
// GDT, page tables and the zero page or hvm_start_info into guest memory. Returns the boot vCPU's
// registers; the KVM core sets them on vCPU 0 and starts every vCPU (APs wait for INIT/SIPI).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "arch/x86/acpi.h"
#include "arch/x86/regs.h"
#include "common/result.h"
#include "guest_memory.h"

namespace vmm::x86 {

using vc::Format;
using vc::Result;
using vc::Status;

struct LinuxBootConfig {
  const uint8_t* kernel = nullptr;  // bzImage or ELF vmlinux bytes (untrusted)
  size_t kernel_size = 0;
  const uint8_t* initrd = nullptr;  // optional
  size_t initrd_size = 0;
  std::string cmdline;
  // Guest RAM in bytes. `mem` maps guest-physical [0, mem.size()) and must cover the low RAM
  // [0, min(ram_bytes, layout::kMmioGapStart)); RAM above that (at 4 GiB) is only described in
  // the memory map, never written.
  uint64_t ram_bytes = 0;
  AcpiConfig acpi;  // vcpus, virtio slots, legacy devices
  // Guest RAM is all zero (fresh from mmap, nothing written yet): the loader then leaves what it
  // would only zero (an ELF segment's bss) alone instead of faulting in every page of it.
  bool ram_zeroed = false;
};

enum class KernelFormat { kBzImage, kElfPvh };

struct LinuxBootInfo {
  KernelFormat format = KernelFormat::kBzImage;
  BootCpuState cpu;             // for vCPU 0
  uint64_t kernel_start = 0;    // guest-physical range the kernel occupies (incl. init_size)
  uint64_t kernel_end = 0;
  uint64_t initrd_addr = 0;     // 0 when there is no initrd
  uint64_t initrd_size = 0;
  uint64_t cmdline_addr = 0;
  uint64_t rsdp_addr = 0;
};

Result<LinuxBootInfo> LoadLinux(const GuestMemory& mem, const LinuxBootConfig& config);

// Where the initrd goes: the highest page-aligned start with start + size <= max_end and
// start >= min_start. Fails, naming the sizes, when it does not fit.
Result<uint64_t> PlaceInitrd(uint64_t size, uint64_t min_start, uint64_t max_end);

}  // namespace vmm::x86
