// A fake guest for device unit tests: guest RAM is a plain vector, split rings are built by hand
// the way a driver lays them out, and MmioDriver programs a transport's registers in the order
// Linux's virtio_mmio driver does.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "devices/virtio/device.h"
#include "devices/virtio/mmio.h"
#include "devices/virtio/queue.h"
#include "guest_memory.h"

namespace vmm::test {

struct TestRam {
  explicit TestRam(size_t size = 1 << 20) : bytes(size), mem(bytes.data(), bytes.size()) {}
  std::vector<uint8_t> bytes;
  GuestMemory mem;

  template <typename T>
  T get(uint64_t gpa) const {
    T v{};
    mem.load(gpa, &v);
    return v;
  }
  template <typename T>
  void put(uint64_t gpa, T v) {
    mem.store(gpa, v);
  }
  void fill(uint64_t gpa, uint8_t byte, size_t len) { std::memset(bytes.data() + gpa, byte, len); }
};

// The driver's side of one split ring.
struct TestRing {
  TestRing(TestRam* ram, uint64_t base, uint16_t size)
      : ram(ram), desc(base), avail(base + 0x1000), used(base + 0x2000), size(size) {}

  TestRam* ram;
  uint64_t desc, avail, used;
  uint16_t size;
  uint16_t avail_idx = 0;
  uint16_t used_seen = 0;

  void set_desc(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags = 0, uint16_t next = 0) {
    write_desc(desc + 16ull * i, addr, len, flags, next);
  }
  void write_desc(uint64_t at, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
    ram->put<uint64_t>(at, addr);
    ram->put<uint32_t>(at + 8, len);
    ram->put<uint16_t>(at + 12, flags);
    ram->put<uint16_t>(at + 14, next);
  }
  void publish(uint16_t head) {
    ram->put<uint16_t>(avail + 4 + 2ull * (avail_idx % size), head);
    avail_idx++;
    ram->put<uint16_t>(avail + 2, avail_idx);
  }
  void set_avail_idx(uint16_t idx) {
    avail_idx = idx;
    ram->put<uint16_t>(avail + 2, idx);
  }
  uint16_t used_idx() const { return ram->get<uint16_t>(used + 2); }
  uint32_t used_id(uint16_t i) const { return ram->get<uint32_t>(used + 4 + 8ull * (i % size)); }
  uint32_t used_len(uint16_t i) const { return ram->get<uint32_t>(used + 8 + 8ull * (i % size)); }
  void set_used_event(uint16_t v) { ram->put<uint16_t>(avail + 4 + 2ull * size, v); }
  uint16_t avail_event() const { return ram->get<uint16_t>(used + 4 + 8ull * size); }
  void set_avail_flags(uint16_t f) { ram->put<uint16_t>(avail, f); }

  // Configures a device-side Queue for this ring.
  void configure(virtio::Queue* q) const {
    q->size = size;
    q->desc_addr = desc;
    q->avail_addr = avail;
    q->used_addr = used;
  }
};

class MmioDriver {
 public:
  explicit MmioDriver(virtio::MmioTransport* t) : t_(t) {}

  uint32_t r(uint64_t off) {
    uint32_t v = 0;
    t_->read(off, reinterpret_cast<uint8_t*>(&v), 4);
    return v;
  }
  void w(uint64_t off, uint32_t v) { t_->write(off, reinterpret_cast<const uint8_t*>(&v), 4); }

  uint64_t device_features() {
    w(0x14, 0);
    uint64_t lo = r(0x10);
    w(0x14, 1);
    return lo | (uint64_t{r(0x10)} << 32);
  }

  // ACKNOWLEDGE, DRIVER, features, FEATURES_OK; true when the device kept FEATURES_OK.
  bool negotiate(uint64_t features) {
    w(0x70, 0);
    w(0x70, virtio::kStatusAcknowledge);
    w(0x70, virtio::kStatusAcknowledge | virtio::kStatusDriver);
    w(0x24, 0);
    w(0x20, static_cast<uint32_t>(features));
    w(0x24, 1);
    w(0x20, static_cast<uint32_t>(features >> 32));
    w(0x70, virtio::kStatusAcknowledge | virtio::kStatusDriver | virtio::kStatusFeaturesOk);
    return r(0x70) & virtio::kStatusFeaturesOk;
  }

  void setup_queue(uint32_t index, const TestRing& ring) {
    w(0x30, index);
    w(0x38, ring.size);
    w(0x80, static_cast<uint32_t>(ring.desc));
    w(0x84, static_cast<uint32_t>(ring.desc >> 32));
    w(0x90, static_cast<uint32_t>(ring.avail));
    w(0x94, static_cast<uint32_t>(ring.avail >> 32));
    w(0xa0, static_cast<uint32_t>(ring.used));
    w(0xa4, static_cast<uint32_t>(ring.used >> 32));
    w(0x44, 1);
  }

  void driver_ok() { w(0x70, r(0x70) | virtio::kStatusDriverOk); }
  void kick(uint32_t index) { w(0x50, index); }
  uint32_t ack_interrupts() {
    uint32_t s = r(0x60);
    w(0x64, s);
    return s;
  }

 private:
  virtio::MmioTransport* t_;
};

// The features a modern Linux driver accepts from our devices.
constexpr uint64_t kModernRing = virtio::kFVersion1 | virtio::kFRingEventIdx | virtio::kFRingIndirectDesc;

}  // namespace vmm::test
