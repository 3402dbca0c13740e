#include "devices/virtio/chain_io.h"

#include <algorithm>
#include <cstring>

namespace vmm::virtio {

namespace {

// Advances (seg, off) over n bytes of the segments with the given direction. Segments were
// checked when the chain was popped, so ptr() cannot fail here; it is still checked, because a
// chain could be used against a different memory by mistake.
template <typename Fn>
uint32_t walk_bytes(const GuestMemory& mem, const DescriptorChain& chain, bool writable,
                    size_t* seg, uint32_t* off, uint32_t n, Fn&& fn) {
  uint32_t done = 0;
  while (done < n && *seg < chain.segments.size()) {
    const Segment& s = chain.segments[*seg];
    if (s.writable != writable) {
      ++*seg;
      *off = 0;
      continue;
    }
    uint32_t take = std::min(n - done, s.len - *off);
    uint8_t* p = mem.ptr(s.addr + *off, take);
    if (!p) break;
    fn(p, done, take);
    done += take;
    *off += take;
    if (*off == s.len) {
      ++*seg;
      *off = 0;
    }
  }
  return done;
}

}  // namespace

ChainReader::ChainReader(const GuestMemory& mem, const DescriptorChain& chain)
    : mem_(mem), chain_(chain), remaining_(chain.readable_bytes) {}

bool ChainReader::read(void* out, uint32_t n) {
  if (n > remaining_) return false;
  auto* dst = static_cast<uint8_t*>(out);
  auto copy = [&](uint8_t* p, uint32_t at, uint32_t len) { std::memcpy(dst + at, p, len); };
  uint32_t got = walk_bytes(mem_, chain_, false, &seg_, &off_, n, copy);
  remaining_ -= got;
  return got == n;
}

bool ChainReader::skip(uint32_t n) {
  if (n > remaining_) return false;
  uint32_t got = walk_bytes(mem_, chain_, false, &seg_, &off_, n, [](uint8_t*, uint32_t, uint32_t) {});
  remaining_ -= got;
  return got == n;
}

uint32_t ChainReader::iovecs(uint32_t n, std::vector<iovec>* out) const {
  size_t seg = seg_;
  uint32_t off = off_;
  return walk_bytes(mem_, chain_, false, &seg, &off, std::min(n, remaining_),
                    [&](uint8_t* p, uint32_t, uint32_t len) { out->push_back({p, len}); });
}

ChainWriter::ChainWriter(const GuestMemory& mem, const DescriptorChain& chain)
    : mem_(mem), chain_(chain), remaining_(chain.writable_bytes) {}

bool ChainWriter::write(const void* in, uint32_t n) {
  if (n > remaining_) return false;
  auto* src = static_cast<const uint8_t*>(in);
  auto copy = [&](uint8_t* p, uint32_t at, uint32_t len) { std::memcpy(p, src + at, len); };
  uint32_t put = walk_bytes(mem_, chain_, true, &seg_, &off_, n, copy);
  remaining_ -= put;
  written_ += put;
  return put == n;
}

bool ChainWriter::skip(uint32_t n) {
  if (n > remaining_) return false;
  uint32_t put = walk_bytes(mem_, chain_, true, &seg_, &off_, n, [](uint8_t*, uint32_t, uint32_t) {});
  remaining_ -= put;
  written_ += put;
  return put == n;
}

uint32_t ChainWriter::iovecs(uint32_t n, std::vector<iovec>* out) const {
  size_t seg = seg_;
  uint32_t off = off_;
  return walk_bytes(mem_, chain_, true, &seg, &off, std::min(n, remaining_),
                    [&](uint8_t* p, uint32_t, uint32_t len) { out->push_back({p, len}); });
}

}  // namespace vmm::virtio
