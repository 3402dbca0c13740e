// Identity page tables for the 64-bit Linux entry: the first layout::kIdentityMapBytes (4 GiB)
// mapped 1:1 with 2 MiB pages, PML4 at layout::kPml4Addr (CR3).
#pragma once

#include <cstdint>

#include "common/result.h"
#include "guest_memory.h"

namespace vmm::x86 {

using vc::Format;
using vc::Result;
using vc::Status;

constexpr uint64_t kPtePresent = 1ull << 0;
constexpr uint64_t kPteWritable = 1ull << 1;
constexpr uint64_t kPteHuge = 1ull << 7;  // PS: a 2 MiB page in a page directory

Status WriteIdentityPageTables(const GuestMemory& mem);

}  // namespace vmm::x86
