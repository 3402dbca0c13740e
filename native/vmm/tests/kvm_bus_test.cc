// The bus: one address map, offsets relative to each device, no overlaps, unclaimed accesses
// read as all ones.
#include <cstring>
#include <string>
#include <vector>

#include "bus.h"
#include "tests/check.h"

namespace {

struct Recorder final : vmm::BusDevice {
  struct Access {
    bool write;
    uint64_t offset;
    uint32_t len;
    uint64_t value;
  };
  std::vector<Access> log;
  void read(uint64_t offset, uint8_t* data, uint32_t len) override {
    log.push_back({false, offset, len, 0});
    for (uint32_t i = 0; i < len; i++) data[i] = uint8_t(0x10 + offset + i);
  }
  void write(uint64_t offset, const uint8_t* data, uint32_t len) override {
    uint64_t v = 0;
    std::memcpy(&v, data, len);
    log.push_back({true, offset, len, v});
  }
};

}  // namespace

VMM_TEST(kvm_bus_dispatches_by_range_with_relative_offsets) {
  vmm::Bus bus("test");
  Recorder a, b;
  std::string error;
  CHECK(bus.insert(&a, 0x3f8, 8, &error));
  CHECK(bus.insert(&b, 0x60, 5, &error));
  uint8_t data[4] = {};
  CHECK(bus.read(0x3fd, data, 1));
  CHECK_EQ(data[0], 0x15);
  const uint8_t v[2] = {0x34, 0x12};
  CHECK(bus.write(0x64, v, 2) == false);  // 0x64..0x65 straddles the end of b's range (0x60..0x64)
  CHECK(bus.write(0x63, v, 2));
  CHECK_EQ(a.log.size(), size_t(1));
  CHECK_EQ(a.log[0].offset, 5u);
  CHECK_EQ(b.log.size(), size_t(1));
  CHECK_EQ(b.log[0].offset, 3u);
  CHECK_EQ(b.log[0].value, 0x1234u);
  CHECK(bus.find(0x3ff) == &a);
  CHECK(bus.find(0x400) == nullptr);
}

VMM_TEST(kvm_bus_unclaimed_reads_all_ones_and_are_counted) {
  vmm::Bus bus("test");
  uint8_t data[4] = {1, 2, 3, 4};
  CHECK(!bus.read(0x1234, data, 4));
  CHECK_EQ(data[0], 0xff);
  CHECK_EQ(data[3], 0xff);
  const uint8_t v = 7;
  CHECK(!bus.write(0x1234, &v, 1));
  CHECK_EQ(bus.unclaimed(), 2u);
}

VMM_TEST(kvm_bus_refuses_overlaps_and_bad_ranges) {
  vmm::Bus bus("mmio");
  Recorder a, b;
  std::string error;
  CHECK(bus.insert(&a, 0xd0000000, 0x1000, &error));
  CHECK(!bus.insert(&b, 0xd0000800, 0x1000, &error));
  CHECK(error.find("overlaps [0xd0000000, 0xd0001000)") != std::string::npos);
  CHECK(!bus.insert(&b, 0xcffff800, 0x1000, &error));  // overlaps from below
  CHECK(!bus.insert(&b, 0x10, 0, &error));
  CHECK(!bus.insert(&b, UINT64_MAX - 4, 0x10, &error));  // wraps
  CHECK(bus.insert(&b, 0xd0001000, 0x1000, &error));     // adjacent is fine
  CHECK_EQ(bus.size(), size_t(2));
  CHECK(bus.remove(0xd0000000));
  CHECK(!bus.remove(0xd0000000));
  uint8_t data[8];
  CHECK(!bus.read(0xd0000000, data, 8));
  CHECK(bus.read(0xd0001ff8, data, 8));
  CHECK(!bus.read(0xd0001ffc, data, 8));  // past the end of b
}
