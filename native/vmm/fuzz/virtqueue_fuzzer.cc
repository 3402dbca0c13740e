// libFuzzer entry point: the split virtqueue's chain walker and the chain reader/writer, against
// guest memory whose rings and descriptors are entirely fuzzer-controlled.
//
// Input: 4 bytes of setup (ring size, negotiated features, memory size), then the initial
// contents of guest memory, laid out so the bytes that matter come first: the avail ring at 0
// (its index at offset 2), the descriptor table at 0x240, the used ring at 0x1240, buffers and
// indirect tables anywhere (including off the end of memory, or overlapping the rings).
#include <cstdint>
#include <cstring>
#include <vector>

#include "devices/virtio/chain_io.h"
#include "devices/virtio/queue.h"
#include "guest_memory.h"

using vmm::virtio::ChainReader;
using vmm::virtio::ChainWriter;
using vmm::virtio::DescriptorChain;
using vmm::virtio::Queue;

namespace {

constexpr size_t kMaxMemory = 64 * 1024;
constexpr uint64_t kAvail = 0, kDesc = 0x240, kUsed = 0x1240;
constexpr size_t kMinMemory = 0x2000;  // the largest rings (256 entries) fit below this

// An invariant the queue promises its devices; breaking one is a bug even without a crash.
void require(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  uint16_t ring_size = static_cast<uint16_t>(1u << (data[0] % 9));  // 1 .. 256
  bool event_idx = data[1] & 1, indirect = data[1] & 2;
  // Memory from 8 KiB (rings only) to 64 KiB, so buffers and tables can run off its end.
  size_t mem_choice = static_cast<size_t>(data[2] | (data[3] << 8));
  size_t mem_size = kMinMemory + mem_choice % (kMaxMemory - kMinMemory + 1);
  data += 4;
  size -= 4;

  std::vector<uint8_t> ram(mem_size, 0);
  std::memcpy(ram.data(), data, std::min(size, mem_size));
  vmm::GuestMemory mem(ram.data(), ram.size());

  Queue q;
  q.size = ring_size;
  q.desc_addr = kDesc;
  q.avail_addr = kAvail;
  q.used_addr = kUsed;
  if (!q.activate(mem, event_idx, indirect)) return 0;

  DescriptorChain chain;
  std::vector<uint8_t> scratch;
  // Each avail entry is consumed once, so 2 * ring_size + 2 pops always reach Empty or Broken.
  for (int i = 0; i < 2 * ring_size + 2; i++) {
    Queue::Pop r = q.pop(&chain);
    if (r == Queue::Pop::kEmpty || r == Queue::Pop::kBroken) break;
    if (r == Queue::Pop::kBadChain) continue;
    require(chain.head < ring_size);
    uint64_t readable = 0, writable = 0;
    bool seen_writable = false;
    for (const auto& s : chain.segments) {
      require(s.len > 0 && mem.contains(s.addr, s.len));
      require(!(seen_writable && !s.writable));
      seen_writable |= s.writable;
      (s.writable ? writable : readable) += s.len;
    }
    require(readable == chain.readable_bytes && writable == chain.writable_bytes);

    // Read everything readable in odd-sized steps, then write everything writable.
    ChainReader reader(mem, chain);
    scratch.resize(97);
    while (reader.remaining() >= 97) require(reader.read(scratch.data(), 97));
    uint32_t rest = reader.remaining();
    scratch.resize(rest);
    require(reader.read(scratch.data(), rest));
    require(reader.remaining() == 0 && !reader.read(scratch.data(), 1));
    ChainWriter writer(mem, chain);
    std::vector<iovec> iov;
    uint32_t covered = writer.iovecs(UINT32_MAX, &iov);
    require(covered == chain.writable_bytes);
    for (const iovec& v : iov) std::memset(v.iov_base, 0x5a, v.iov_len);
    require(writer.skip(covered));
    q.push_used(chain.head, writer.written());
    if (i % 3 == 0) q.needs_interrupt();
    if (i % 5 == 0) q.enable_notification();
  }
  q.needs_interrupt();
  return 0;
}
