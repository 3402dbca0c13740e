#include <vector>

#include "guest_memory.h"
#include "tests/check.h"

VMM_TEST(guest_memory_rejects_out_of_range_and_wrapping_accesses) {
  std::vector<uint8_t> ram(4096);
  vmm::GuestMemory mem(ram.data(), ram.size());
  uint32_t v = 0;
  CHECK(mem.store<uint32_t>(4092, 0xdeadbeef));
  CHECK(mem.load<uint32_t>(4092, &v));
  CHECK_EQ(v, 0xdeadbeefu);
  CHECK(!mem.load<uint32_t>(4093, &v));
  CHECK(mem.ptr(4096, 0) != nullptr);
  CHECK(mem.ptr(4097, 0) == nullptr);
  CHECK(mem.ptr(UINT64_MAX - 1, 4) == nullptr);
  CHECK(mem.ptr(8, UINT64_MAX) == nullptr);
}
