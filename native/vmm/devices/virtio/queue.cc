#include "devices/virtio/queue.h"

#include <atomic>

namespace vmm::virtio {

namespace {

constexpr uint64_t kDescSize = 16;
constexpr uint16_t kAvailFNoInterrupt = 1;

struct RawDesc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};
static_assert(sizeof(RawDesc) == kDescSize, "virtq_desc is 16 bytes");

bool is_power_of_two(uint32_t v) { return v != 0 && (v & (v - 1)) == 0; }

// Ring byte sizes (§2.7): the trailing used_event / avail_event word is always counted, since a
// driver lays the rings out the same way whether or not EVENT_IDX is negotiated.
uint64_t avail_bytes(uint16_t size) { return 6 + 2ull * size; }
uint64_t used_bytes(uint16_t size) { return 6 + 8ull * size; }

}  // namespace

bool Queue::activate(const GuestMemory& mem, bool event_idx, bool indirect) {
  mem_ = mem;
  event_idx_ = event_idx;
  indirect_ = indirect;
  next_avail_ = next_used_ = signalled_used_ = 0;
  signalled_used_valid_ = false;
  broken_ = false;
  active_ = false;
  error_.clear();
  if (size == 0 || size > max_size || !is_power_of_two(size))
    return fail_queue("queue size " + std::to_string(size) + " is not a power of two in 1.." +
                      std::to_string(max_size));
  if (desc_addr % 16 || avail_addr % 2 || used_addr % 4)
    return fail_queue("misaligned ring address");
  if (!mem.contains(desc_addr, kDescSize * size) || !mem.contains(avail_addr, avail_bytes(size)) ||
      !mem.contains(used_addr, used_bytes(size)))
    return fail_queue("ring outside guest memory");
  active_ = true;
  return true;
}

snapshot::QueueState Queue::save_state() const {
  snapshot::QueueState s;
  s.mode = !ready ? snapshot::QueueMode::kOff : active_ ? snapshot::QueueMode::kActive : snapshot::QueueMode::kBroken;
  s.size = size;
  s.desc_addr = desc_addr;
  s.avail_addr = avail_addr;
  s.used_addr = used_addr;
  if (ready) {
    s.event_idx = event_idx_;
    s.indirect = indirect_;
    s.next_avail = next_avail_;
    s.next_used = next_used_;
    s.signalled_used = signalled_used_;
    s.signalled_used_valid = signalled_used_valid_;
  }
  return s;
}

bool Queue::load_state(const GuestMemory& mem, const snapshot::QueueState& s) {
  reset();
  size = s.size;
  desc_addr = s.desc_addr;
  avail_addr = s.avail_addr;
  used_addr = s.used_addr;
  if (s.mode == snapshot::QueueMode::kOff) return true;
  ready = true;
  if (s.mode == snapshot::QueueMode::kActive) {
    if (!activate(mem, s.event_idx, s.indirect)) return false;
  } else {
    mem_ = mem;
    event_idx_ = s.event_idx;
    indirect_ = s.indirect;
    broken_ = true;
    error_ = "the queue was broken when the snapshot was taken";
  }
  next_avail_ = s.next_avail;
  next_used_ = s.next_used;
  signalled_used_ = s.signalled_used;
  signalled_used_valid_ = s.signalled_used_valid;
  return true;
}

void Queue::reset() {
  uint16_t keep_max = max_size;
  *this = Queue();
  max_size = keep_max;
}

bool Queue::fail_queue(const std::string& why) {
  broken_ = true;
  active_ = false;
  error_ = why;
  return false;
}

bool Queue::read_avail_idx(uint16_t* idx) const { return mem_.load(avail_addr + 2, idx); }

Queue::Pop Queue::pop(DescriptorChain* chain) {
  if (broken_) return Pop::kBroken;
  if (!active_) return Pop::kEmpty;
  uint16_t avail_idx;
  if (!read_avail_idx(&avail_idx)) return fail_queue("avail ring unreadable"), Pop::kBroken;
  uint16_t pending = static_cast<uint16_t>(avail_idx - next_avail_);
  if (pending == 0) return Pop::kEmpty;
  if (pending > size) {
    fail_queue("avail index " + std::to_string(avail_idx) + " is " + std::to_string(pending) +
               " entries ahead of a ring of " + std::to_string(size));
    return Pop::kBroken;
  }
  // Read the ring entry only after the index that published it.
  std::atomic_thread_fence(std::memory_order_acquire);
  uint16_t head;
  if (!mem_.load(avail_addr + 4 + 2ull * (next_avail_ % size), &head))
    return fail_queue("avail ring unreadable"), Pop::kBroken;
  next_avail_++;
  if (event_idx_) mem_.store<uint16_t>(used_addr + 4 + 8ull * size, next_avail_);
  if (head >= size) {
    fail_queue("head index " + std::to_string(head) + " out of range for a ring of " +
               std::to_string(size));
    return Pop::kBroken;
  }
  std::string why;
  if (!walk(head, chain, &why)) {
    bad_chain(head, why);
    return broken_ ? Pop::kBroken : Pop::kBadChain;
  }
  return Pop::kChain;
}

void Queue::unpop() {
  if (!active_) return;
  next_avail_--;
  if (event_idx_) mem_.store<uint16_t>(used_addr + 4 + 8ull * size, next_avail_);
}

bool Queue::bad_chain(uint16_t head, const std::string& why) {
  bad_chains_++;
  error_ = "descriptor chain " + std::to_string(head) + ": " + why;
  return push_used(head, 0);
}

bool Queue::add_segment(DescriptorChain* chain, uint64_t addr, uint32_t len, uint16_t flags,
                        std::string* why) const {
  if (len == 0) return *why = "zero-length descriptor", false;
  if (!mem_.contains(addr, len)) return *why = "buffer outside guest memory", false;
  bool writable = (flags & kDescFWrite) != 0;
  if (!writable && chain->writable_bytes > 0)
    return *why = "device-readable descriptor after a device-writable one", false;
  uint64_t total = (writable ? chain->writable_bytes : chain->readable_bytes) + uint64_t{len};
  if (total > UINT32_MAX) return *why = "chain longer than 4 GiB", false;
  (writable ? chain->writable_bytes : chain->readable_bytes) = static_cast<uint32_t>(total);
  chain->segments.push_back({addr, len, writable});
  return true;
}

bool Queue::walk(uint16_t head, DescriptorChain* chain, std::string* why) const {
  chain->head = head;
  chain->segments.clear();
  chain->readable_bytes = chain->writable_bytes = 0;
  uint16_t index = head;
  // A well-formed chain visits each descriptor at most once, so more steps than the ring has
  // entries means the driver built a loop.
  for (uint32_t steps = 1;; steps++) {
    if (steps > size) return *why = "descriptor loop", false;
    RawDesc d;
    if (!mem_.read(desc_addr + kDescSize * index, &d, sizeof(d)))
      return *why = "descriptor table unreadable", false;
    if (d.flags & kDescFIndirect) {
      if (!indirect_) return *why = "indirect descriptor without VIRTIO_F_RING_INDIRECT_DESC", false;
      if (d.flags & kDescFNext) return *why = "indirect descriptor with NEXT set", false;
      if (d.len == 0 || d.len % kDescSize)
        return *why = "indirect table length not a multiple of 16", false;
      uint32_t entries = d.len / kDescSize;
      if (entries > kMaxIndirectEntries) return *why = "indirect table too long", false;
      if (!mem_.contains(d.addr, d.len)) return *why = "indirect table outside guest memory", false;
      uint32_t j = 0;
      for (uint32_t inner = 1;; inner++) {
        if (inner > entries) return *why = "descriptor loop in indirect table", false;
        RawDesc e;
        if (!mem_.read(d.addr + kDescSize * j, &e, sizeof(e)))
          return *why = "indirect table unreadable", false;
        if (e.flags & kDescFIndirect)
          return *why = "indirect descriptor inside an indirect table", false;
        if (!add_segment(chain, e.addr, e.len, e.flags, why)) return false;
        if (!(e.flags & kDescFNext)) break;
        if (e.next >= entries) return *why = "next index out of range in indirect table", false;
        j = e.next;
      }
      return true;  // an indirect descriptor always ends the chain (it cannot carry NEXT)
    }
    if (!add_segment(chain, d.addr, d.len, d.flags, why)) return false;
    if (!(d.flags & kDescFNext)) return true;
    if (d.next >= size) return *why = "next index out of range", false;
    index = d.next;
  }
}

bool Queue::push_used(uint16_t head, uint32_t len) {
  if (!active_) return false;
  uint64_t elem = used_addr + 4 + 8ull * (next_used_ % size);
  if (!mem_.store<uint32_t>(elem, head) || !mem_.store<uint32_t>(elem + 4, len))
    return fail_queue("used ring unwritable");
  // The element must be visible before the index that publishes it.
  std::atomic_thread_fence(std::memory_order_release);
  next_used_++;
  if (!mem_.store<uint16_t>(used_addr + 2, next_used_)) return fail_queue("used ring unwritable");
  return true;
}

bool Queue::needs_interrupt() {
  if (!active_) return false;
  // Our used index store and the driver's used_event / flags store race; a full fence on both
  // sides (the driver has its own) guarantees one of us sees the other's update.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (!event_idx_) {
    uint16_t flags = 0;
    mem_.load(avail_addr, &flags);
    return !(flags & kAvailFNoInterrupt);
  }
  uint16_t used_event = 0;
  mem_.load(avail_addr + 4 + 2ull * size, &used_event);
  bool valid = signalled_used_valid_;
  uint16_t old_idx = signalled_used_, new_idx = next_used_;
  signalled_used_ = new_idx;
  signalled_used_valid_ = true;
  // vring_need_event(): interrupt when used_event lies in [old_idx, new_idx).
  return !valid ||
         static_cast<uint16_t>(new_idx - used_event - 1) < static_cast<uint16_t>(new_idx - old_idx);
}

bool Queue::notify_on_next_add() {
  if (!active_) return false;
  uint16_t avail_idx;
  if (!read_avail_idx(&avail_idx)) return false;
  // Without EVENT_IDX the driver notifies on every add: this device never sets NO_NOTIFY.
  if (event_idx_) mem_.store<uint16_t>(used_addr + 4 + 8ull * size, avail_idx);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return true;
}

bool Queue::enable_notification() {
  if (!active_) return false;
  if (event_idx_) mem_.store<uint16_t>(used_addr + 4 + 8ull * size, next_avail_);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  uint16_t avail_idx;
  if (!read_avail_idx(&avail_idx)) return false;
  return avail_idx != next_avail_;
}

}  // namespace vmm::virtio
