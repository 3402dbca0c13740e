#include "arch/x86/page_tables.h"

#include "arch/x86/layout.h"

namespace vmm::x86 {

Status WriteIdentityPageTables(const GuestMemory& mem) {
  using namespace layout;
  const uint64_t end = kPdAddr + kPdCount * kPageSize;
  if (!mem.contains(kPml4Addr, end - kPml4Addr))
    return Status::Error(Format("page tables: 0x%llx..0x%llx do not fit in guest memory of 0x%llx bytes",
                                (unsigned long long)kPml4Addr, (unsigned long long)end, (unsigned long long)mem.size()));
  uint8_t* tables = mem.ptr(kPml4Addr, end - kPml4Addr);
  for (uint64_t i = 0; i < end - kPml4Addr; i++) tables[i] = 0;
  mem.store<uint64_t>(kPml4Addr, kPdptAddr | kPtePresent | kPteWritable);
  for (uint64_t pd = 0; pd < kPdCount; pd++) {
    const uint64_t pd_addr = kPdAddr + pd * kPageSize;
    mem.store<uint64_t>(kPdptAddr + pd * 8, pd_addr | kPtePresent | kPteWritable);
    for (uint64_t e = 0; e < 512; e++) {
      const uint64_t phys = ((pd << 9) + e) << 21;
      mem.store<uint64_t>(pd_addr + e * 8, phys | kPtePresent | kPteWritable | kPteHuge);
    }
  }
  return {};
}

}  // namespace vmm::x86
