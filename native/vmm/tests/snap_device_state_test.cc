// The device sections' codecs (native/vmm/snapshot/device_state.h): each round trip, the bytes of
// each layout as docs/snapshots.md gives them, every field check with its message, and
// ReadSnapshot refusing a state file whose device section does not decode.
#include <cstring>
#include <string>
#include <vector>

#include "snapshot/device_state.h"
#include "snapshot/snapshot.h"
#include "tests/check.h"

using namespace vmm::snapshot;

namespace {



constexpr uint64_t kRam = 4 << 20;
constexpr uint64_t kEventIdx = 1ull << 29, kIndirect = 1ull << 28, kVersion1 = 1ull << 32;

auto Serial(const std::vector<uint8_t>& b) { return DecodeSerialState(b.data(), b.size()); }
auto I8042(const std::vector<uint8_t>& b) { return DecodeI8042State(b.data(), b.size()); }
auto Mmio(const std::vector<uint8_t>& b, uint64_t ram = kRam) { return DecodeMmioState(b.data(), b.size(), 3, ram); }
auto Device(const std::vector<uint8_t>& b) { return DecodeVirtioDeviceState(b.data(), b.size(), 3); }

SerialState TestSerial() {
  SerialState s;
  s.ier = 0x03;
  s.lcr = 0x03;
  s.mcr = 0x0b;
  s.scr = 0x5a;
  s.fcr = 0xc7;
  s.dll = 0x01;
  s.dlm = 0x00;
  s.thr_empty_pending = true;
  s.rx = {'l', 's', '\n'};
  return s;
}

// A vsock transport with its driver running: rx and tx active, the event queue broken.
MmioState TestMmio() {
  MmioState s;
  s.device_id = kVirtioVsock;
  s.status = 1 | 2 | 8 | 4;
  s.device_features_sel = 1;
  s.driver_features_sel = 1;
  s.driver_features = kVersion1 | kEventIdx | kIndirect;
  s.queue_sel = 2;
  s.interrupt_status = 1;
  s.config_generation = 7;
  for (uint16_t i = 0; i < 3; i++) {
    QueueState q;
    q.mode = i == 2 ? QueueMode::kBroken : QueueMode::kActive;
    q.event_idx = q.indirect = true;
    q.size = 256;
    q.next_avail = static_cast<uint16_t>(1000 + i);
    q.next_used = static_cast<uint16_t>(1000 + i);
    q.signalled_used = static_cast<uint16_t>(990 + i);
    q.signalled_used_valid = true;
    q.desc_addr = 0x10000 + 0x10000ull * i;
    q.avail_addr = q.desc_addr + 0x1000;
    q.used_addr = q.desc_addr + 0x2000;
    s.queues.push_back(q);
  }
  s.queues[2].desc_addr = 0xfffffffffff0ull;  // why it broke: it is outside RAM
  return s;
}

bool SameQueue(const QueueState& a, const QueueState& b) {
  return a.mode == b.mode && a.event_idx == b.event_idx && a.indirect == b.indirect && a.size == b.size &&
         a.next_avail == b.next_avail && a.next_used == b.next_used && a.signalled_used == b.signalled_used &&
         a.signalled_used_valid == b.signalled_used_valid && a.desc_addr == b.desc_addr &&
         a.avail_addr == b.avail_addr && a.used_addr == b.used_addr;
}

// Byte offsets of queue i's fields in an mmio payload (docs/snapshots.md).
constexpr size_t kQueues = 40, kQueueBytes = 34;
size_t QueueAt(size_t i) { return kQueues + i * kQueueBytes; }

// An mmio payload changed by `edit`.
template <typename F>
std::vector<uint8_t> MmioWith(F edit) {
  MmioState s = TestMmio();
  edit(&s);
  return EncodeMmioState(s);
}

}  // namespace

VMM_TEST(snap_serial_section_round_trip_and_layout) {
  SerialState s = TestSerial();
  std::vector<uint8_t> b = EncodeSerialState(s);
  const uint8_t want[] = {0x03, 0x03, 0x0b, 0x5a, 0xc7, 0x01, 0x00, 0x01, 3, 0, 0, 0, 'l', 's', '\n'};
  CHECK(b == std::vector<uint8_t>(want, want + sizeof want));
  auto r = Serial(b);
  CHECK(r.ok());
  if (!r.ok()) return (void)std::printf("# %s\n", r.error().c_str());
  CHECK(EncodeSerialState(r.value()) == b);
  CHECK(r->rx == s.rx && r->thr_empty_pending && r->fcr == 0xc7 && r->scr == 0x5a);
  s.rx.assign(kSerialRxCapacity, 'x');  // a full FIFO
  CHECK(Serial(EncodeSerialState(s)).ok());
}

VMM_TEST(snap_serial_section_rejects_each_field) {
  auto with = [](void (*edit)(SerialState*)) {
    SerialState s = TestSerial();
    edit(&s);
    return EncodeSerialState(s);
  };
  CHECK_ERROR(Serial(with([](SerialState* s) { s->ier = 0x13; })), "snapshot section serial: ier 0x13 has bits outside 0x0f");
  CHECK_ERROR(Serial(with([](SerialState* s) { s->mcr = 0x2b; })), "snapshot section serial: mcr 0x2b has bits outside 0x1f");
  CHECK_ERROR(Serial(with([](SerialState* s) { s->rx.assign(kSerialRxCapacity + 1, 'x'); })),
              "snapshot section serial: rx is 4097 bytes, more than the 4096 allowed");
  std::vector<uint8_t> b = EncodeSerialState(TestSerial());
  b[7] = 2;
  CHECK_ERROR(Serial(b), "snapshot section serial: pending 0x02 has bits outside 0x01 (THR empty)");
  b = EncodeSerialState(TestSerial());
  CHECK_ERROR(Serial(std::vector<uint8_t>(b.begin(), b.begin() + 10)),
              "snapshot section serial: rx needs 4 bytes at offset 8, but only 2 are left (truncated)");
  CHECK_ERROR(Serial(std::vector<uint8_t>(b.begin(), b.end() - 1)),
              "snapshot section serial: rx needs 3 bytes at offset 12, but only 2 are left (truncated)");
  b.push_back(0);
  CHECK_ERROR(Serial(b), "snapshot section serial: 1 bytes left over after the last field");
}

VMM_TEST(snap_i8042_section_round_trip_and_rejections) {
  I8042State s;
  s.control = 0x47;
  s.pending_command = 0xd1;
  s.output = {0xfa, 0xaa};
  std::vector<uint8_t> b = EncodeI8042State(s);
  const uint8_t want[] = {0x47, 0xd1, 2, 0, 0, 0, 0xfa, 0xaa};
  CHECK(b == std::vector<uint8_t>(want, want + sizeof want));
  auto r = I8042(b);
  CHECK(r.ok() && EncodeI8042State(r.value()) == b);
  for (uint8_t c : {0x00, 0x60, 0xd4}) {
    s.pending_command = c;
    CHECK(I8042(EncodeI8042State(s)).ok());
  }
  s.pending_command = 0x61;
  CHECK_ERROR(I8042(EncodeI8042State(s)),
              "snapshot section i8042: pendingCommand 0x61 is not one that waits for data (0, 0x60, 0xd1, 0xd4)");
  s.pending_command = 0;
  s.output.assign(kI8042OutputCapacity + 1, 0xfa);
  CHECK_ERROR(I8042(EncodeI8042State(s)), "snapshot section i8042: output is 17 bytes, more than the 16 allowed");
  CHECK_ERROR(I8042(std::vector<uint8_t>{0x47}), "snapshot section i8042: pendingCommand needs 1 bytes at offset 1");
}

VMM_TEST(snap_mmio_section_round_trip_and_layout) {
  MmioState s = TestMmio();
  std::vector<uint8_t> b = EncodeMmioState(s);
  CHECK_EQ(b.size(), kQueues + 3 * kQueueBytes);
  // Spot checks of the documented offsets.
  CHECK_EQ(b[0], 19);                             // deviceId
  CHECK_EQ(b[4], 15);                             // status
  CHECK_EQ(b[20], 1);                             // driverFeatures' VERSION_1 (bit 32)
  CHECK_EQ(b[32], 7);                             // configGeneration
  CHECK_EQ(b[36], 3);                             // queueCount
  CHECK_EQ(b[QueueAt(2)], 2);                     // queue 2's mode: broken
  CHECK_EQ(b[QueueAt(0) + 1], 7);                 // flags: EVENT_IDX, INDIRECT, signalled
  CHECK_EQ(b[QueueAt(0) + 3], 1);                 // size 256
  CHECK_EQ(b[QueueAt(1) + 4] | b[QueueAt(1) + 5] << 8, 1001);  // nextAvail
  CHECK_EQ(b[QueueAt(0) + 10 + 2], 1);            // descAddr 0x10000
  auto r = Mmio(b);
  CHECK(r.ok());
  if (!r.ok()) return (void)std::printf("# %s\n", r.error().c_str());
  CHECK(EncodeMmioState(r.value()) == b);
  CHECK_EQ(r->queues.size(), size_t(3));
  for (size_t i = 0; i < 3 && i < r->queues.size(); i++) CHECK(SameQueue(r->queues[i], s.queues[i]));
  CHECK_EQ(r->driver_features, s.driver_features);
  // A transport the driver never touched: every queue off, everything zero.
  MmioState fresh;
  fresh.device_id = kVirtioNet;
  fresh.queues.resize(2);
  CHECK(Mmio(EncodeMmioState(fresh)).ok());
  // A queue that is not ready keeps what the driver wrote into it, whatever that was.
  fresh.queues[1].size = 3;
  fresh.queues[1].desc_addr = 0xdeadbeef1;
  CHECK(Mmio(EncodeMmioState(fresh)).ok());
}

VMM_TEST(snap_mmio_section_rejects_each_field) {
  const char* at = "snapshot section virtio-mmio[3]: ";
  auto E = [&](const std::string& m) { return std::string(at) + m; };
  CHECK_ERROR(Mmio(MmioWith([](MmioState* s) { s->device_id = 42; })),
              E("deviceId 42 is not a device vc-vmm has (net 1, blk 2, rng 4, vsock 19)"));
  CHECK_ERROR(Mmio(MmioWith([](MmioState* s) { s->queues.pop_back(); })), E("queueCount 2, but a vsock device has 3 queues"));
  CHECK_ERROR(Mmio(MmioWith([](MmioState* s) { s->status |= 0x10; })), E("status 0x1f has bits outside 0xcf"));
  CHECK_ERROR(Mmio(MmioWith([](MmioState* s) { s->status = 2; for (auto& q : s->queues) q = QueueState(); })),
              E("status 0x2 has DRIVER without ACKNOWLEDGE"));
  CHECK_ERROR(Mmio(MmioWith([](MmioState* s) { s->status = 1 | 8; })), E("status 0x9 has FEATURES_OK without DRIVER"));
  CHECK_ERROR(Mmio(MmioWith([](MmioState* s) { s->status = 1 | 2 | 4; })), E("status 0x7 has DRIVER_OK without FEATURES_OK"));
  CHECK_ERROR(Mmio(MmioWith([](MmioState* s) { s->driver_features &= ~kVersion1; })),
              E("driverFeatures 0x30000000 lack VERSION_1, which FEATURES_OK requires"));
  CHECK_ERROR(Mmio(MmioWith([](MmioState* s) { s->interrupt_status = 5; })), E("interruptStatus 0x5 has bits outside 0x3"));

  std::vector<uint8_t> b = EncodeMmioState(TestMmio());
  b[QueueAt(1)] = 3;
  CHECK_ERROR(Mmio(b), E("queue 1 mode 3 is not 0 (off), 1 (active) or 2 (broken)"));
  b = EncodeMmioState(TestMmio());
  b[QueueAt(0) + 1] = 0x0f;
  CHECK_ERROR(Mmio(b), E("queue 0 flags 0x0f has bits outside 0x07"));
  CHECK_ERROR(Mmio(MmioWith([](MmioState* s) { s->queues[1] = QueueState(); s->queues[1].next_used = 5; s->queues[1].next_avail = 5; })),
              E("queue 1 is not ready but has flags 0x00, nextAvail 5, nextUsed 5, signalledUsed 0 (all 0 until it is made ready)"));
  // An active queue has given back every buffer it took (the device thread could otherwise be made
  // to serve a used ring laid over the avail ring forever: found by snapshot_fuzzer).
  CHECK_ERROR(Mmio(MmioWith([](MmioState* s) { s->queues[0].next_used++; })),
              E("queue 0 is active with nextAvail 1000 but nextUsed 1001: a saved queue has given back every buffer it took"));
  CHECK_ERROR(Mmio(MmioWith([](MmioState* s) { s->queues[1].next_avail++; })), E("queue 1 is active with nextAvail 1002 but nextUsed 1001"));
  CHECK(Mmio(MmioWith([](MmioState* s) { s->queues[2].next_used = 7; })).ok());  // broken: as it stopped
  CHECK_ERROR(Mmio(MmioWith([](MmioState* s) { s->status = 1 | 2; })),
              E("queue 0 is ready, but status 0x3 lacks FEATURES_OK, without which a queue cannot be"));
  CHECK_ERROR(Mmio(MmioWith([](MmioState* s) { s->queues[0].event_idx = false; })),
              E("queue 0 has EVENT_IDX 0, INDIRECT_DESC 1, but driverFeatures 0x130000000 say 1, 1"));
  CHECK_ERROR(Mmio(MmioWith([](MmioState* s) {
                s->driver_features = kVersion1;
                for (auto& q : s->queues) q.event_idx = q.indirect = false;
              })),
              E("queue 0 has a signalled used index without EVENT_IDX"));
  CHECK_ERROR(Mmio(MmioWith([](MmioState* s) { s->queues[1].signalled_used_valid = false; })),
              E("queue 1 has signalledUsed 991 but no interrupt signalled"));
  CHECK_ERROR(Mmio(MmioWith([](MmioState* s) { s->queues[0].size = 96; })),
              E("queue 0 size 96 is not a power of two in 1..32768"));
  CHECK_ERROR(Mmio(MmioWith([](MmioState* s) { s->queues[0].size = 0; })), E("queue 0 size 0 is not a power of two"));
  CHECK_ERROR(Mmio(MmioWith([](MmioState* s) { s->queues[0].desc_addr += 8; })),
              E("queue 0 descAddr 0x10008 is not 16-byte aligned"));
  CHECK_ERROR(Mmio(MmioWith([](MmioState* s) { s->queues[1].avail_addr += 1; })),
              E("queue 1 availAddr 0x21001 is not 2-byte aligned"));
  CHECK_ERROR(Mmio(MmioWith([](MmioState* s) { s->queues[1].used_addr += 2; })),
              E("queue 1 usedAddr 0x22002 is not 4-byte aligned"));
  // The rings as Queue::activate measures them: 16 bytes a descriptor, 6 + 2 per entry for the
  // avail ring, 6 + 8 per entry for the used ring.
  CHECK_ERROR(Mmio(MmioWith([](MmioState* s) { s->queues[0].desc_addr = kRam - 16 * 255; })),
              E("queue 0 descAddr 0x3ff010 + 4096 bytes lies outside guest RAM (0x400000 bytes)"));
  CHECK(Mmio(MmioWith([](MmioState* s) { s->queues[0].desc_addr = kRam - 16 * 256; })).ok());
  CHECK_ERROR(Mmio(MmioWith([](MmioState* s) { s->queues[0].avail_addr = kRam - 516; })),
              E("queue 0 availAddr 0x3ffdfc + 518 bytes lies outside guest RAM"));
  CHECK(Mmio(MmioWith([](MmioState* s) { s->queues[0].avail_addr = kRam - 518; })).ok());
  CHECK_ERROR(Mmio(MmioWith([](MmioState* s) { s->queues[0].used_addr = kRam - 2052; })),
              E("queue 0 usedAddr 0x3ff7fc + 2054 bytes lies outside guest RAM"));
  CHECK_ERROR(Mmio(MmioWith([](MmioState* s) { s->queues[0].used_addr = ~0ull - 3; })),
              E("queue 0 usedAddr 0xfffffffffffffffc + 2054 bytes lies outside guest RAM"));
  // The same rings fit a larger RAM.
  CHECK(Mmio(MmioWith([](MmioState* s) { s->queues[0].desc_addr = kRam; }), 2 * kRam).ok());

  b = EncodeMmioState(TestMmio());
  CHECK_ERROR(Mmio(std::vector<uint8_t>(b.begin(), b.end() - 1)),
              E("queue usedAddr needs 8 bytes at offset 134, but only 7 are left (truncated)"));
  b.push_back(0);
  CHECK_ERROR(Mmio(b), E("1 bytes left over after the last field"));
}

VMM_TEST(snap_virtio_device_section_round_trips_per_kind) {
  VirtioDeviceState blk;
  blk.kind = kVirtioBlk;
  blk.blk_capacity = 2048;
  blk.blk_read_only = true;
  blk.blk_serial = "vc-root";
  std::vector<uint8_t> b = EncodeVirtioDeviceState(blk);
  const uint8_t want_blk[] = {2, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 7, 0, 0, 0, 'v', 'c', '-', 'r', 'o', 'o', 't'};
  CHECK(b == std::vector<uint8_t>(want_blk, want_blk + sizeof want_blk));
  auto r = Device(b);
  CHECK(r.ok() && r->blk_capacity == 2048 && r->blk_read_only && r->blk_serial == "vc-root");

  VirtioDeviceState net;
  net.kind = kVirtioNet;
  net.net_mac = {0x02, 0, 0, 0, 0, 0x2a};
  net.net_mtu = 1500;
  net.net_offloads = kNetOffloadBits;
  b = EncodeVirtioDeviceState(net);
  CHECK_EQ(b.size(), size_t(4 + 6 + 2 + 8));
  CHECK_EQ(b[4], 0x02);
  CHECK_EQ(b[10] | b[11] << 8, 1500);
  r = Device(b);
  CHECK(r.ok() && r->net_mac == net.net_mac && r->net_mtu == 1500 && r->net_offloads == kNetOffloadBits);

  VirtioDeviceState vsock;
  vsock.kind = kVirtioVsock;
  vsock.vsock_guest_cid = 0xfffffffe;
  b = EncodeVirtioDeviceState(vsock);
  CHECK_EQ(b.size(), size_t(12));
  r = Device(b);
  CHECK(r.ok() && r->vsock_guest_cid == 0xfffffffeull);

  VirtioDeviceState rng;
  rng.kind = kVirtioRng;
  b = EncodeVirtioDeviceState(rng);
  CHECK(b == (std::vector<uint8_t>{4, 0, 0, 0}));
  CHECK(Device(b).ok());
}

VMM_TEST(snap_virtio_device_section_rejects_each_field) {
  const std::string at = "snapshot section virtio-device[3]: ";
  auto enc = [](void (*edit)(VirtioDeviceState*)) {
    VirtioDeviceState s;
    edit(&s);
    return EncodeVirtioDeviceState(s);
  };
  CHECK_ERROR(Device(std::vector<uint8_t>{3, 0, 0, 0}), at + "kind 3 is not a device vc-vmm has (net 1, blk 2, rng 4, vsock 19)");
  CHECK_ERROR(Device(std::vector<uint8_t>{4, 0, 0, 0, 0}), at + "1 bytes left over after the last field");
  CHECK_ERROR(Device(std::vector<uint8_t>{19, 0, 0, 0, 3, 0, 0, 0}), at + "guestCid needs 8 bytes at offset 4, but only 4 are left");
  std::vector<uint8_t> b = enc([](VirtioDeviceState* s) { s->kind = kVirtioBlk; });
  b[12] = 3;
  CHECK_ERROR(Device(b), at + "blk flags 0x3 has bits outside 0x1 (read-only)");
  CHECK_ERROR(Device(enc([](VirtioDeviceState* s) { s->kind = kVirtioBlk; s->blk_serial = std::string(21, 's'); })),
              at + "serial is 21 bytes, more than the 20 allowed");
  auto net = [](void (*edit)(VirtioDeviceState*)) {
    VirtioDeviceState s;
    s.kind = kVirtioNet;
    s.net_mac = {0x02, 0, 0, 0, 0, 1};
    s.net_mtu = 1500;
    edit(&s);
    return EncodeVirtioDeviceState(s);
  };
  CHECK(Device(net([](VirtioDeviceState*) {})).ok());
  CHECK_ERROR(Device(net([](VirtioDeviceState* s) { s->net_mac[0] = 0x03; })), at + "net mac 03:00:00:00:00:01 is a multicast address");
  CHECK_ERROR(Device(net([](VirtioDeviceState* s) { s->net_mac = {}; })), at + "net mac is all zeros");
  CHECK_ERROR(Device(net([](VirtioDeviceState* s) { s->net_mtu = 67; })), at + "net mtu 67 is below 68");
  CHECK_ERROR(Device(net([](VirtioDeviceState* s) { s->net_offloads = 1ull << 5; })),
              at + "net offloads 0x20 has bits outside the offload features 0x1983");
  CHECK_ERROR(Device(net([](VirtioDeviceState* s) { s->net_offloads = 1ull << 7; })),
              at + "net offloads 0x80 have GUEST_TSO without GUEST_CSUM");
  CHECK_ERROR(Device(net([](VirtioDeviceState* s) { s->net_offloads = (1ull << 12) | (1ull << 1); })),
              at + "net offloads 0x1002 have HOST_TSO without CSUM");
  for (uint64_t cid : {0ull, 2ull, 0xffffffffull, 1ull << 32}) {
    VirtioDeviceState s;
    s.kind = kVirtioVsock;
    s.vsock_guest_cid = cid;
    CHECK_ERROR(Device(EncodeVirtioDeviceState(s)), at + "vsock guestCid " + std::to_string(cid) + " is not in 3..4294967294");
  }
}

VMM_TEST(snap_virtio_pair_must_agree) {
  MmioState mmio = TestMmio();
  VirtioDeviceState dev;
  dev.kind = kVirtioVsock;
  dev.vsock_guest_cid = 3;
  CHECK(CheckVirtioPair(mmio, dev, 3).ok());
  dev.kind = kVirtioBlk;
  CHECK_ERROR(CheckVirtioPair(mmio, dev, 3), "slot 3: virtio-mmio[3] is a vsock device, virtio-device[3] a blk one");
  mmio.device_id = kVirtioNet;
  mmio.driver_features |= 1 | 2;  // CSUM, GUEST_CSUM
  dev.kind = kVirtioNet;
  dev.net_offloads = 3;
  CHECK(CheckVirtioPair(mmio, dev, 3).ok());
  dev.net_offloads = 1;
  CHECK_ERROR(CheckVirtioPair(mmio, dev, 3), "virtio-device[3] has net offloads 0x1, but the driver negotiated 0x3");
  mmio.status &= ~4u;  // no DRIVER_OK: nothing was applied
  CHECK_ERROR(CheckVirtioPair(mmio, dev, 3), "has net offloads 0x1, but the driver is not running, so 0x0");
}

// A whole state file with device sections: decoded by ReadSnapshot, and refused when one is not.
VMM_TEST(snap_read_snapshot_decodes_device_sections) {
  auto file = [](const std::vector<uint8_t>& serial, const std::vector<uint8_t>& mmio, const std::vector<uint8_t>& dev) {
    StateFileBuilder b;
    b.add(Tag::kVm, 0, EncodeVmInfo({1, kRam, R"({"kernel":"/k"})"}));
    std::vector<uint8_t> ram(kRam, 0);
    b.add(Tag::kMemory, 0, EncodeMemoryFileInfo(DescribeMemory(ram.data(), kRam, SnapshotId())));
    VcpuState v;
    v.xsave.assign(kMinXsaveBytes, 0);
    v.tsc_khz = 1000000;
    b.add(Tag::kVcpu, 0, EncodeVcpuState(v));
    IrqchipState irqchip;
    irqchip.ioapic.base_address = kIoapicBase;
    b.add(Tag::kIrqchip, 0, EncodeIrqchipState(irqchip));
    b.add(Tag::kPit, 0, EncodePitState(kvm_pit_state2{}));
    b.add(Tag::kClock, 0, EncodeClockState(kvm_clock_data{}));
    b.add(Tag::kSerial, 0, serial);
    I8042State k;
    k.control = 0x47;
    b.add(Tag::kI8042, 0, EncodeI8042State(k));
    b.add(Tag::kVirtioMmio, 3, mmio);
    b.add(Tag::kVirtioDevice, 3, dev);
    return b.finish("vc-vmm test").value();
  };
  VirtioDeviceState vsock;
  vsock.kind = kVirtioVsock;
  vsock.vsock_guest_cid = 3;
  std::vector<uint8_t> serial = EncodeSerialState(TestSerial()), mmio = EncodeMmioState(TestMmio()),
                       dev = EncodeVirtioDeviceState(vsock);
  std::vector<uint8_t> f = file(serial, mmio, dev);
  auto r = ReadSnapshot(f.data(), f.size());
  CHECK(r.ok());
  if (!r.ok()) return (void)std::printf("# %s\n", r.error().c_str());
  CHECK(r->has_serial && r->serial.rx == TestSerial().rx);
  CHECK(r->has_i8042 && r->i8042.control == 0x47);
  CHECK(r->mmio.count(3) && r->mmio[3].config_generation == 7 && r->mmio[3].queues.size() == 3);
  CHECK(r->virtio.count(3) && r->virtio[3].vsock_guest_cid == 3);

  serial[0] = 0x10;
  f = file(serial, mmio, dev);
  CHECK_ERROR(ReadSnapshot(f.data(), f.size()), "snapshot section serial: ier 0x10 has bits outside 0x0f");
  serial = EncodeSerialState(TestSerial());
  // Ring addresses are checked against the vm section's RAM.
  f = file(serial, MmioWith([](MmioState* s) { s->queues[0].used_addr = kRam; }), dev);
  CHECK_ERROR(ReadSnapshot(f.data(), f.size()), "snapshot section virtio-mmio[3]: queue 0 usedAddr 0x400000 + 2054 bytes lies outside guest RAM (0x400000 bytes)");
  f = file(serial, mmio, std::vector<uint8_t>{19, 0, 0, 0});
  CHECK_ERROR(ReadSnapshot(f.data(), f.size()), "snapshot section virtio-device[3]: guestCid needs 8 bytes");
  VirtioDeviceState rng;
  rng.kind = kVirtioRng;
  f = file(serial, mmio, EncodeVirtioDeviceState(rng));
  CHECK_ERROR(ReadSnapshot(f.data(), f.size()), "slot 3: virtio-mmio[3] is a vsock device, virtio-device[3] a rng one");
}
