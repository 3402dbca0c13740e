// bzImage (Linux boot protocol >= 2.12 with the 64-bit entry): parse and validate the setup header
// of an untrusted image, and place its protected-mode kernel in guest memory.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/result.h"
#include "guest_memory.h"

namespace vmm::x86 {

using vc::Format;
using vc::Result;
using vc::Status;

struct BzImageInfo {
  uint16_t version = 0;
  uint8_t loadflags = 0;
  uint16_t xloadflags = 0;
  uint64_t setup_size = 0;    // bytes before the protected-mode kernel: (setup_sects + 1) * 512
  uint64_t header_end = 0;    // the setup header is image[0x1f1, header_end)
  uint64_t kernel_size = 0;   // protected-mode kernel: image[setup_size, end)
  uint32_t initrd_addr_max = 0;
  uint32_t kernel_alignment = 0;
  bool relocatable = false;
  uint32_t cmdline_size = 0;  // longest command line, without the NUL
  uint64_t pref_address = 0;
  uint32_t init_size = 0;     // bytes the kernel needs from where it runs, while decompressing
};

Result<BzImageInfo> ParseBzImage(const uint8_t* image, size_t size);

// The first byte past everything the kernel touches before it reads the e820 map when loaded at
// load_addr: the loaded image itself, and init_size bytes from the address it decompresses to
// (max(load_addr aligned up to kernel_alignment, pref_address) when relocatable, else
// pref_address). The initrd must start at or above this.
uint64_t BzImageKernelEnd(const BzImageInfo& info, uint64_t load_addr);

// Copies the protected-mode kernel to load_addr after checking that its whole footprint
// [load_addr, BzImageKernelEnd) lies in guest RAM below ram_end.
Status LoadBzImage(const GuestMemory& mem, const uint8_t* image, size_t size, const BzImageInfo& info,
                   uint64_t load_addr, uint64_t ram_end);

}  // namespace vmm::x86
