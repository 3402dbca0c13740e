// A split virtqueue (virtio 1.2 §2.7) seen from the device side. Every index, length and guest
// address the driver wrote is checked before use: a malformed descriptor chain is returned to the
// driver with zero bytes written (that request fails, the device keeps going), and only damage the
// device cannot attribute to one request (a head index out of range, an avail index that ran
// ahead by more than the ring size, rings outside guest memory) breaks the queue, which the
// transport turns into DEVICE_NEEDS_RESET.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "guest_memory.h"
#include "snapshot/device_state.h"

namespace vmm::virtio {

// Descriptor flags (§2.7.5).
constexpr uint16_t kDescFNext = 1;
constexpr uint16_t kDescFWrite = 2;
constexpr uint16_t kDescFIndirect = 4;

// The largest split ring the spec allows, and the most entries we accept in one indirect table
// (Linux sizes indirect tables by the request's scatter list, which can exceed the ring size).
constexpr uint16_t kMaxQueueSize = 32768;
constexpr uint32_t kMaxIndirectEntries = 1024;

// One guest buffer of a chain, already checked to lie inside guest memory.
struct Segment {
  uint64_t addr;
  uint32_t len;
  bool writable;  // device-writable (VIRTQ_DESC_F_WRITE)
};

// A validated descriptor chain: all device-readable segments come before all device-writable
// ones, each segment is non-empty and inside guest memory, and the totals fit in 32 bits.
struct DescriptorChain {
  uint16_t head = 0;
  std::vector<Segment> segments;
  uint32_t readable_bytes = 0;
  uint32_t writable_bytes = 0;
};

class Queue {
 public:
  enum class Pop {
    kChain,     // *chain holds the next request
    kEmpty,     // nothing new in the avail ring
    kBadChain,  // a malformed chain was consumed and returned to the driver as used with len 0
    kBroken,    // the ring itself is corrupt; the queue stops until reset (see error())
  };

  // Driver-written configuration (the transport's QueueNum/QueueDesc/... registers).
  uint16_t max_size = 256;
  uint16_t size = 0;
  uint64_t desc_addr = 0, avail_addr = 0, used_addr = 0;
  bool ready = false;

  // Checks the configuration against guest memory; on success the queue can be used. Called by
  // the transport when the driver sets QueueReady. `event_idx` and `indirect` say whether
  // VIRTIO_F_RING_EVENT_IDX / VIRTIO_F_RING_INDIRECT_DESC were negotiated.
  bool activate(const GuestMemory& mem, bool event_idx, bool indirect);

  // Back to the reset state (configuration registers included).
  void reset();

  Pop pop(DescriptorChain* chain);

  // Gives back the chain the last pop() returned, unused (a device that popped a buffer and then
  // found it had nothing to put in it).
  void unpop();

  // Puts `head` on the used ring with `len` bytes written by the device.
  bool push_used(uint16_t head, uint32_t len);

  // After pushing used buffers: whether the driver wants an interrupt now (EVENT_IDX used_event,
  // or the avail ring's NO_INTERRUPT flag without it).
  bool needs_interrupt();

  // Asks the driver to notify when it adds buffers, then re-checks: true when buffers arrived in
  // the meantime (the caller must keep processing, or it could sleep on a full queue forever).
  bool enable_notification();

  // Asks the driver to notify when it adds its next buffer, even while buffers it added before
  // are still unconsumed (with EVENT_IDX, enable_notification() asks only past those). False when
  // the queue is inactive or its avail ring unreadable.
  bool notify_on_next_add();

  // What a snapshot keeps of the queue (snapshot/device_state.h), and putting it back: an active
  // queue is activated again against `mem` (false, with error(), if its rings fail the checks
  // activate() makes) and then continues from the saved indices; a broken one stays broken until
  // the driver resets it. max_size is the device's and is kept.
  snapshot::QueueState save_state() const;
  bool load_state(const GuestMemory& mem, const snapshot::QueueState& state);

  bool active() const { return active_; }
  bool broken() const { return broken_; }
  const std::string& error() const { return error_; }
  uint64_t bad_chains() const { return bad_chains_; }
  uint16_t next_avail() const { return next_avail_; }
  uint16_t next_used() const { return next_used_; }

 private:
  bool fail_queue(const std::string& why);
  bool bad_chain(uint16_t head, const std::string& why);
  // Walks one chain; false with *why set when the chain is malformed.
  bool walk(uint16_t head, DescriptorChain* chain, std::string* why) const;
  bool add_segment(DescriptorChain* chain, uint64_t addr, uint32_t len, uint16_t flags,
                   std::string* why) const;
  bool read_avail_idx(uint16_t* idx) const;

  GuestMemory mem_;
  bool active_ = false;
  bool broken_ = false;
  bool event_idx_ = false;
  bool indirect_ = false;
  uint16_t next_avail_ = 0;
  uint16_t next_used_ = 0;
  uint16_t signalled_used_ = 0;
  bool signalled_used_valid_ = false;
  uint64_t bad_chains_ = 0;
  std::string error_;
};

}  // namespace vmm::virtio
