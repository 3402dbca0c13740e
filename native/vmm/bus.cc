#include "bus.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <mutex>

namespace vmm {

namespace {
std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}
}  // namespace

bool Bus::insert(BusDevice* device, uint64_t base, uint64_t len, std::string* error) {
  if (!device || len == 0 || base + len < base) {
    if (error) *error = std::string(name_) + " bus: bad range " + Hex(base) + " + " + Hex(len);
    return false;
  }
  std::unique_lock lock(mutex_);
  auto at = std::lower_bound(ranges_.begin(), ranges_.end(), base,
                             [](const Range& r, uint64_t b) { return r.base < b; });
  // Overlap with the range after (starts before our end) or the one before (ends after our base).
  const Range* clash = nullptr;
  if (at != ranges_.end() && at->base < base + len) clash = &*at;
  if (at != ranges_.begin() && (at - 1)->base + (at - 1)->len > base) clash = &*(at - 1);
  if (clash) {
    if (error)
      *error = std::string(name_) + " bus: [" + Hex(base) + ", " + Hex(base + len) + ") overlaps [" +
               Hex(clash->base) + ", " + Hex(clash->base + clash->len) + ")";
    return false;
  }
  ranges_.insert(at, Range{base, len, device});
  return true;
}

bool Bus::remove(uint64_t base) {
  std::unique_lock lock(mutex_);
  for (auto it = ranges_.begin(); it != ranges_.end(); ++it) {
    if (it->base == base) {
      ranges_.erase(it);
      return true;
    }
  }
  return false;
}

long Bus::lookup(uint64_t addr, uint64_t len) const {
  // The last range starting at or below addr is the only candidate.
  auto at = std::upper_bound(ranges_.begin(), ranges_.end(), addr,
                             [](uint64_t a, const Range& r) { return a < r.base; });
  if (at == ranges_.begin()) return -1;
  const Range& r = *(at - 1);
  const uint64_t offset = addr - r.base;
  if (offset >= r.len || len > r.len - offset) return -1;
  return long(at - 1 - ranges_.begin());
}

BusDevice* Bus::find(uint64_t addr, uint64_t* offset) const {
  std::shared_lock lock(mutex_);
  long i = lookup(addr, 1);
  if (i < 0) return nullptr;
  if (offset) *offset = addr - ranges_[i].base;
  return ranges_[i].device;
}

size_t Bus::size() const {
  std::shared_lock lock(mutex_);
  return ranges_.size();
}

bool Bus::read(uint64_t addr, uint8_t* data, uint32_t len) {
  {
    std::shared_lock lock(mutex_);
    long i = lookup(addr, len);
    if (i >= 0 && len >= 1 && len <= 8) {
      // The call happens under the shared lock so a concurrent remove() cannot free the device's
      // mapping mid-access; devices never call back into the bus, so this cannot deadlock.
      ranges_[i].device->read(addr - ranges_[i].base, data, len);
      return true;
    }
  }
  std::memset(data, 0xff, len);
  unclaimed_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

bool Bus::write(uint64_t addr, const uint8_t* data, uint32_t len) {
  {
    std::shared_lock lock(mutex_);
    long i = lookup(addr, len);
    if (i >= 0 && len >= 1 && len <= 8) {
      ranges_[i].device->write(addr - ranges_[i].base, data, len);
      return true;
    }
  }
  unclaimed_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

}  // namespace vmm
