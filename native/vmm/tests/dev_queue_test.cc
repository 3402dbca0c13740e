// The split virtqueue over plain memory: well-formed chains, and every kind of malformed chain a
// hostile guest can build.
#include <vector>

#include "devices/virtio/chain_io.h"
#include "devices/virtio/queue.h"
#include "tests/check.h"
#include "tests/virtio_driver.h"

using vmm::test::TestRam;
using vmm::test::TestRing;
using vmm::virtio::DescriptorChain;
using vmm::virtio::kDescFIndirect;
using vmm::virtio::kDescFNext;
using vmm::virtio::kDescFWrite;
using vmm::virtio::Queue;

namespace {

struct Fixture {
  explicit Fixture(uint16_t size = 8, bool event_idx = false, bool indirect = true)
      : ring(&ram, 0x10000, size) {
    ring.configure(&q);
    ok = q.activate(ram.mem, event_idx, indirect);
  }
  TestRam ram;
  TestRing ring;
  Queue q;
  DescriptorChain chain;
  bool ok;
};

}  // namespace

VMM_TEST(dev_queue_pops_a_chain_and_publishes_used) {
  Fixture f;
  CHECK(f.ok);
  f.ring.set_desc(0, 0x40000, 16, kDescFNext, 3);
  f.ring.set_desc(3, 0x41000, 512, kDescFNext | kDescFWrite, 5);
  f.ring.set_desc(5, 0x42000, 1, kDescFWrite);
  f.ring.publish(0);
  CHECK(f.q.pop(&f.chain) == Queue::Pop::kChain);
  CHECK_EQ(f.chain.head, 0);
  CHECK_EQ(f.chain.segments.size(), size_t{3});
  CHECK_EQ(f.chain.readable_bytes, 16u);
  CHECK_EQ(f.chain.writable_bytes, 513u);
  CHECK(!f.chain.segments[0].writable && f.chain.segments[1].writable);
  CHECK(f.q.pop(&f.chain) == Queue::Pop::kEmpty);
  CHECK(f.q.push_used(0, 513));
  CHECK_EQ(f.ring.used_idx(), 1);
  CHECK_EQ(f.ring.used_id(0), 0u);
  CHECK_EQ(f.ring.used_len(0), 513u);
}

VMM_TEST(dev_queue_walks_an_indirect_table) {
  Fixture f;
  uint64_t table = 0x30000;
  f.ring.write_desc(table + 0, 0x40000, 44, kDescFNext, 2);
  f.ring.write_desc(table + 32, 0x41000, 100, kDescFNext, 1);
  f.ring.write_desc(table + 16, 0x42000, 200, kDescFWrite, 0);
  f.ring.set_desc(4, table, 48, kDescFIndirect);
  f.ring.publish(4);
  CHECK(f.q.pop(&f.chain) == Queue::Pop::kChain);
  CHECK_EQ(f.chain.head, 4);
  CHECK_EQ(f.chain.segments.size(), size_t{3});
  CHECK_EQ(f.chain.readable_bytes, 144u);
  CHECK_EQ(f.chain.writable_bytes, 200u);
}

VMM_TEST(dev_queue_direct_descriptors_may_end_in_an_indirect_one) {
  Fixture f;
  f.ring.write_desc(0x30000, 0x42000, 8, kDescFWrite, 0);
  f.ring.set_desc(1, 0x40000, 16, kDescFNext, 2);
  f.ring.set_desc(2, 0x30000, 16, kDescFIndirect);
  f.ring.publish(1);
  CHECK(f.q.pop(&f.chain) == Queue::Pop::kChain);
  CHECK_EQ(f.chain.segments.size(), size_t{2});
}

// Each malformed chain is consumed and handed back with zero bytes used; the queue goes on.
static void expect_bad_chain(Fixture& f, uint16_t head, const char* what) {
  f.ring.publish(head);
  Queue::Pop r = f.q.pop(&f.chain);
  if (r != Queue::Pop::kBadChain) std::printf("# %s: pop gave %d\n", what, static_cast<int>(r));
  CHECK(r == Queue::Pop::kBadChain);
  CHECK(!f.q.broken());
  CHECK_EQ(f.ring.used_idx(), f.ring.avail_idx);
  CHECK_EQ(f.ring.used_id(static_cast<uint16_t>(f.ring.avail_idx - 1)), uint32_t{head});
  CHECK_EQ(f.ring.used_len(static_cast<uint16_t>(f.ring.avail_idx - 1)), 0u);
  // A good chain after it still works.
  f.ring.set_desc(7, 0x40000, 8);
  f.ring.publish(7);
  CHECK(f.q.pop(&f.chain) == Queue::Pop::kChain);
  f.q.push_used(7, 0);
}

VMM_TEST(dev_queue_rejects_next_index_out_of_range) {
  Fixture f;
  f.ring.set_desc(0, 0x40000, 8, kDescFNext, 8);
  expect_bad_chain(f, 0, "next out of range");
  CHECK(f.q.error().find("next index out of range") != std::string::npos);
}

VMM_TEST(dev_queue_rejects_descriptor_loops) {
  Fixture f;
  f.ring.set_desc(0, 0x40000, 8, kDescFNext, 1);
  f.ring.set_desc(1, 0x40000, 8, kDescFNext, 0);
  expect_bad_chain(f, 0, "loop");
  CHECK(f.q.error().find("loop") != std::string::npos);
  f.ring.set_desc(2, 0x40000, 8, kDescFNext, 2);  // a descriptor pointing at itself
  expect_bad_chain(f, 2, "self loop");
}

VMM_TEST(dev_queue_rejects_loops_inside_an_indirect_table) {
  Fixture f;
  f.ring.write_desc(0x30000, 0x40000, 8, kDescFNext, 1);
  f.ring.write_desc(0x30010, 0x40000, 8, kDescFNext, 0);
  f.ring.set_desc(0, 0x30000, 32, kDescFIndirect);
  expect_bad_chain(f, 0, "indirect loop");
  f.ring.write_desc(0x30010, 0x40000, 8, kDescFNext, 2);  // next past the table's end
  expect_bad_chain(f, 0, "indirect next out of range");
}

VMM_TEST(dev_queue_rejects_zero_length_descriptors) {
  Fixture f;
  f.ring.set_desc(0, 0x40000, 0);
  expect_bad_chain(f, 0, "zero length");
  f.ring.set_desc(1, 0x30000, 0, kDescFIndirect);
  expect_bad_chain(f, 1, "empty indirect table");
  f.ring.set_desc(1, 0x30000, 20, kDescFIndirect);
  expect_bad_chain(f, 1, "indirect table not a multiple of 16");
}

VMM_TEST(dev_queue_rejects_buffers_outside_guest_memory) {
  Fixture f;
  uint64_t end = f.ram.bytes.size();
  f.ring.set_desc(0, end - 8, 16);
  expect_bad_chain(f, 0, "past the end");
  f.ring.set_desc(0, end, 1);
  expect_bad_chain(f, 0, "at the end");
  f.ring.set_desc(0, UINT64_MAX - 7, 16);
  expect_bad_chain(f, 0, "address wrap");
  f.ring.set_desc(0, end - 16, 16, kDescFIndirect);  // table inside, but its entry is not
  f.ring.write_desc(end - 16, UINT64_MAX, 0xffffffffu, 0, 0);
  expect_bad_chain(f, 0, "indirect entry wraps");
  f.ring.set_desc(0, end - 8, 16, kDescFIndirect);
  expect_bad_chain(f, 0, "indirect table past the end");
}

VMM_TEST(dev_queue_rejects_indirect_inside_indirect) {
  Fixture f;
  f.ring.write_desc(0x30000, 0x31000, 16, kDescFIndirect, 0);
  f.ring.write_desc(0x31000, 0x40000, 8, 0, 0);
  f.ring.set_desc(0, 0x30000, 16, kDescFIndirect);
  expect_bad_chain(f, 0, "nested indirect");
  CHECK(f.q.error().find("inside an indirect") != std::string::npos);
}

VMM_TEST(dev_queue_rejects_indirect_with_next_or_without_the_feature) {
  Fixture f;
  f.ring.write_desc(0x30000, 0x40000, 8, 0, 0);
  f.ring.set_desc(0, 0x30000, 16, kDescFIndirect | kDescFNext, 1);
  f.ring.set_desc(1, 0x40000, 8);
  expect_bad_chain(f, 0, "indirect with next");
  Fixture g(8, false, /*indirect=*/false);
  g.ring.write_desc(0x30000, 0x40000, 8, 0, 0);
  g.ring.set_desc(0, 0x30000, 16, kDescFIndirect);
  expect_bad_chain(g, 0, "indirect not negotiated");
}

VMM_TEST(dev_queue_rejects_readable_after_writable) {
  Fixture f;
  f.ring.set_desc(0, 0x40000, 8, kDescFNext | kDescFWrite, 1);
  f.ring.set_desc(1, 0x41000, 8);
  expect_bad_chain(f, 0, "readable after writable");
  CHECK(f.q.error().find("after a device-writable") != std::string::npos);
}

VMM_TEST(dev_queue_rejects_chains_over_4_gib) {
  // Used lengths are 32-bit, so a chain's readable or writable total must fit in 32 bits. The
  // walk never touches the buffers themselves, so a memory that claims 8 GiB (backed by 1 MiB for
  // the rings) is enough to describe two buffers of 4 GiB - 1.
  TestRam ram;
  vmm::GuestMemory huge(ram.bytes.data(), 8ull << 30);
  TestRing ring(&ram, 0x10000, 8);
  Queue q;
  ring.configure(&q);
  CHECK(q.activate(huge, false, false));
  ring.set_desc(0, 0, 0xffffffffu, kDescFNext, 1);
  ring.set_desc(1, 1ull << 32, 0xffffffffu);
  ring.publish(0);
  DescriptorChain chain;
  CHECK(q.pop(&chain) == Queue::Pop::kBadChain);
  CHECK(q.error().find("4 GiB") != std::string::npos);
  ring.set_desc(1, 1ull << 32, 0xffffffffu, kDescFWrite);  // one each way is fine
  ring.publish(0);
  CHECK(q.pop(&chain) == Queue::Pop::kChain);
  CHECK_EQ(chain.readable_bytes, 0xffffffffu);
  CHECK_EQ(chain.writable_bytes, 0xffffffffu);
}

VMM_TEST(dev_queue_head_out_of_range_breaks_the_queue) {
  Fixture f;
  f.ring.publish(8);
  CHECK(f.q.pop(&f.chain) == Queue::Pop::kBroken);
  CHECK(f.q.broken());
  CHECK(f.q.error().find("head index 8") != std::string::npos);
  CHECK(f.q.pop(&f.chain) == Queue::Pop::kBroken);
  CHECK_EQ(f.ring.used_idx(), 0);
}

VMM_TEST(dev_queue_avail_index_running_ahead_breaks_the_queue) {
  Fixture f;
  f.ring.set_avail_idx(9);  // 9 new entries in a ring of 8
  CHECK(f.q.pop(&f.chain) == Queue::Pop::kBroken);
  CHECK(f.q.error().find("ahead") != std::string::npos);
}

VMM_TEST(dev_queue_activation_checks_size_alignment_and_placement) {
  TestRam ram;
  Queue q;
  TestRing ring(&ram, 0x10000, 6);  // not a power of two
  ring.configure(&q);
  CHECK(!q.activate(ram.mem, false, false));
  CHECK(q.error().find("power of two") != std::string::npos);
  q.reset();
  TestRing big(&ram, 0x10000, 512);  // above max_size (256)
  big.configure(&q);
  CHECK(!q.activate(ram.mem, false, false));
  q.reset();
  TestRing ok(&ram, 0x10000, 8);
  ok.configure(&q);
  q.desc_addr += 8;  // misaligned
  CHECK(!q.activate(ram.mem, false, false));
  q.reset();
  ok.configure(&q);
  q.used_addr = ram.bytes.size() - 16;  // used ring runs past the end of RAM
  CHECK(!q.activate(ram.mem, false, false));
  CHECK(q.error().find("outside guest memory") != std::string::npos);
  q.reset();
  ok.configure(&q);
  q.avail_addr = UINT64_MAX - 1;  // wraps
  CHECK(!q.activate(ram.mem, false, false));
  q.reset();
  ok.configure(&q);
  CHECK(q.activate(ram.mem, false, false));
}

VMM_TEST(dev_queue_event_idx_suppresses_interrupts_until_used_event) {
  Fixture f(8, /*event_idx=*/true);
  for (uint16_t i = 0; i < 4; i++) {
    f.ring.set_desc(i, 0x40000, 8, kDescFWrite);
    f.ring.publish(i);
  }
  // The device asks to be notified for the entry after the last one it took.
  CHECK(f.q.pop(&f.chain) == Queue::Pop::kChain);
  CHECK_EQ(f.ring.avail_event(), 1);
  f.q.push_used(0, 8);
  CHECK(f.q.needs_interrupt());  // the first interrupt always goes out
  f.ring.set_used_event(2);      // the driver wants an interrupt once entry 2 is used
  f.q.pop(&f.chain);
  f.q.push_used(1, 8);
  CHECK(!f.q.needs_interrupt());  // used idx 2: entry 1 used, event 2 not reached
  f.q.pop(&f.chain);
  f.q.push_used(2, 8);
  CHECK(f.q.needs_interrupt());  // entry 2 used
  f.q.pop(&f.chain);
  f.q.push_used(3, 8);
  CHECK(!f.q.needs_interrupt());  // used_event 2 is behind
}

VMM_TEST(dev_queue_no_interrupt_flag_without_event_idx) {
  Fixture f;
  f.ring.set_desc(0, 0x40000, 8);
  f.ring.publish(0);
  f.q.pop(&f.chain);
  f.q.push_used(0, 0);
  f.ring.set_avail_flags(1);  // VIRTQ_AVAIL_F_NO_INTERRUPT
  CHECK(!f.q.needs_interrupt());
  f.ring.set_avail_flags(0);
  CHECK(f.q.needs_interrupt());
}

VMM_TEST(dev_queue_enable_notification_reports_late_buffers) {
  Fixture f(8, true);
  CHECK(!f.q.enable_notification());
  f.ring.set_desc(0, 0x40000, 8);
  f.ring.publish(0);
  CHECK(f.q.enable_notification());
  CHECK(f.q.pop(&f.chain) == Queue::Pop::kChain);
  f.q.unpop();
  CHECK(f.q.pop(&f.chain) == Queue::Pop::kChain);
  CHECK_EQ(f.chain.head, 0);
  CHECK(!f.q.enable_notification());
}

VMM_TEST(dev_queue_wraps_its_16_bit_indices) {
  Fixture f(4);
  f.ring.set_desc(0, 0x40000, 8);
  for (uint32_t i = 0; i < 70000; i++) {
    f.ring.publish(0);
    if (f.q.pop(&f.chain) != Queue::Pop::kChain) {
      CHECK(false);
      break;
    }
    f.q.push_used(0, 0);
  }
  CHECK_EQ(f.ring.used_idx(), static_cast<uint16_t>(70000));
}

VMM_TEST(dev_chain_reader_and_writer_cross_segment_boundaries) {
  Fixture f;
  for (int i = 0; i < 10; i++) f.ram.bytes[0x40000 + i] = static_cast<uint8_t>(i);
  // Readable bytes 0..9 split 3 + 7 across two buffers; writable 5 + 6.
  f.ring.set_desc(0, 0x40000, 3, kDescFNext, 1);
  f.ring.set_desc(1, 0x40003, 7, kDescFNext, 2);
  f.ring.set_desc(2, 0x50000, 5, kDescFNext | kDescFWrite, 3);
  f.ring.set_desc(3, 0x60000, 6, kDescFWrite);
  f.ring.publish(0);
  CHECK(f.q.pop(&f.chain) == Queue::Pop::kChain);
  vmm::virtio::ChainReader r(f.ram.mem, f.chain);
  uint8_t buf[16];
  CHECK(r.skip(1));
  CHECK(r.read(buf, 4));
  CHECK_EQ(buf[0], 1);
  CHECK_EQ(buf[3], 4);
  CHECK(!r.read(buf, 6));  // only 5 remain, and nothing is consumed
  CHECK_EQ(r.remaining(), 5u);
  std::vector<iovec> iov;
  CHECK_EQ(r.iovecs(100, &iov), 5u);
  CHECK(r.read(buf, 5));
  CHECK_EQ(buf[4], 9);
  vmm::virtio::ChainWriter w(f.ram.mem, f.chain);
  const uint8_t out[11] = {10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20};
  CHECK(w.write(out, 11));
  CHECK(!w.write(out, 1));
  CHECK_EQ(f.ram.bytes[0x50004], 14);
  CHECK_EQ(f.ram.bytes[0x60000], 15);
  CHECK_EQ(f.ram.bytes[0x60005], 20);
  CHECK_EQ(w.written(), 11u);
}
