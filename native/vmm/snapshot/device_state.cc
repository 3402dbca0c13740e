#include "snapshot/device_state.h"

#include "snapshot/byte_io.h"

namespace vmm::snapshot {
namespace {

using ull = unsigned long long;

// virtio status bits (§2.1) and the ring features (§6) the checks below need.
constexpr uint32_t kAcknowledge = 1, kDriver = 2, kDriverOk = 4, kFeaturesOk = 8, kNeedsReset = 64, kFailed = 128;
constexpr uint32_t kStatusBits = kAcknowledge | kDriver | kDriverOk | kFeaturesOk | kNeedsReset | kFailed;
constexpr uint64_t kIndirectDesc = 1ull << 28, kEventIdx = 1ull << 29, kVersion1 = 1ull << 32;
constexpr uint32_t kInterruptBits = 3;  // used buffer, config change

// Queue flags byte.
constexpr uint8_t kQueueEventIdx = 1, kQueueIndirect = 2, kQueueSignalledValid = 4;

// i8042 commands that wait for a data byte: write command byte, write output port, write to aux.
bool IsPendingCommand(uint8_t c) { return c == 0 || c == 0x60 || c == 0xd1 || c == 0xd4; }

bool IsPowerOfTwo(uint32_t v) { return v && !(v & (v - 1)); }

bool InRam(uint64_t addr, uint64_t len, uint64_t ram) { return addr <= ram && len <= ram - addr; }

}  // namespace

// --- serial: ier, lcr, mcr, scr, fcr, dll, dlm, pending (u8 each), rx (u32 length + bytes) -------

std::vector<uint8_t> EncodeSerialState(const SerialState& s) {
  ByteWriter w;
  for (uint8_t v : {s.ier, s.lcr, s.mcr, s.scr, s.fcr, s.dll, s.dlm}) w.u8(v);
  w.u8(s.thr_empty_pending ? 1 : 0);
  w.blob(std::string(s.rx.begin(), s.rx.end()));
  return std::move(w.data());
}

vc::Result<SerialState> DecodeSerialState(const uint8_t* data, size_t size) {
  const char* what = "snapshot section serial";
  ByteReader r(data, size, what);
  SerialState s;
  s.ier = r.u8("ier");
  s.lcr = r.u8("lcr");
  s.mcr = r.u8("mcr");
  s.scr = r.u8("scr");
  s.fcr = r.u8("fcr");
  s.dll = r.u8("dll");
  s.dlm = r.u8("dlm");
  uint8_t pending = r.u8("pending");
  std::string rx = r.blob("rx", kSerialRxCapacity);
  r.expect_end();
  if (!r.ok()) return r.status();
  auto error = [&](const std::string& m) { return vc::Status::Error(std::string(what) + ": " + m); };
  // The model keeps only these bits (devices/serial.cc); anything else it could not have written.
  if (s.ier & ~0x0f) return error(vc::Format("ier 0x%02x has bits outside 0x0f", s.ier));
  if (s.mcr & ~0x1f) return error(vc::Format("mcr 0x%02x has bits outside 0x1f", s.mcr));
  if (pending & ~1) return error(vc::Format("pending 0x%02x has bits outside 0x01 (THR empty)", pending));
  s.thr_empty_pending = pending & 1;
  s.rx.assign(rx.begin(), rx.end());
  return s;
}

// --- i8042: control u8, pendingCommand u8, output (u32 length + bytes) --------------------------

std::vector<uint8_t> EncodeI8042State(const I8042State& s) {
  ByteWriter w;
  w.u8(s.control);
  w.u8(s.pending_command);
  w.blob(std::string(s.output.begin(), s.output.end()));
  return std::move(w.data());
}

vc::Result<I8042State> DecodeI8042State(const uint8_t* data, size_t size) {
  ByteReader r(data, size, "snapshot section i8042");
  I8042State s;
  s.control = r.u8("control");
  s.pending_command = r.u8("pendingCommand");
  std::string out = r.blob("output", kI8042OutputCapacity);
  r.expect_end();
  if (!r.ok()) return r.status();
  if (!IsPendingCommand(s.pending_command))
    return vc::Status::Error(vc::Format(
        "snapshot section i8042: pendingCommand 0x%02x is not one that waits for data (0, 0x60, 0xd1, 0xd4)",
        s.pending_command));
  s.output.assign(out.begin(), out.end());
  return s;
}

// --- virtio ----------------------------------------------------------------------------------------

const char* VirtioKindName(uint32_t kind) {
  switch (kind) {
    case kVirtioNet: return "net";
    case kVirtioBlk: return "blk";
    case kVirtioRng: return "rng";
    case kVirtioVsock: return "vsock";
    default: return nullptr;
  }
}

uint32_t VirtioQueueCount(uint32_t kind) {
  switch (kind) {
    case kVirtioNet: return 2;
    case kVirtioBlk:
    case kVirtioRng: return 1;
    case kVirtioVsock: return 3;
    default: return 0;
  }
}

// virtio-mmio: deviceId, status, deviceFeaturesSel, driverFeaturesSel (u32), driverFeatures (u64),
// queueSel, interruptStatus, configGeneration, queueCount (u32), then per queue: mode u8, flags u8,
// size, nextAvail, nextUsed, signalledUsed (u16), descAddr, availAddr, usedAddr (u64).
std::vector<uint8_t> EncodeMmioState(const MmioState& s) {
  ByteWriter w;
  w.u32(s.device_id);
  w.u32(s.status);
  w.u32(s.device_features_sel);
  w.u32(s.driver_features_sel);
  w.u64(s.driver_features);
  w.u32(s.queue_sel);
  w.u32(s.interrupt_status);
  w.u32(s.config_generation);
  w.u32(static_cast<uint32_t>(s.queues.size()));
  for (const QueueState& q : s.queues) {
    w.u8(static_cast<uint8_t>(q.mode));
    w.u8((q.event_idx ? kQueueEventIdx : 0) | (q.indirect ? kQueueIndirect : 0) |
         (q.signalled_used_valid ? kQueueSignalledValid : 0));
    w.u16(q.size);
    w.u16(q.next_avail);
    w.u16(q.next_used);
    w.u16(q.signalled_used);
    w.u64(q.desc_addr);
    w.u64(q.avail_addr);
    w.u64(q.used_addr);
  }
  return std::move(w.data());
}

namespace {

vc::Status CheckQueue(const QueueState& q, uint32_t index, const MmioState& s, uint64_t ram, uint8_t flags,
                      const std::string& what) {
  auto error = [&](const std::string& m) { return vc::Status::Error(vc::Format("%s: queue %u ", what.c_str(), index) + m); };
  if (flags & ~(kQueueEventIdx | kQueueIndirect | kQueueSignalledValid))
    return error(vc::Format("flags 0x%02x has bits outside 0x07", flags));
  if (q.mode == QueueMode::kOff) {
    // A queue that is not ready is in its reset state but for what the driver wrote into it.
    if (flags || q.next_avail || q.next_used || q.signalled_used)
      return error(vc::Format("is not ready but has flags 0x%02x, nextAvail %u, nextUsed %u, signalledUsed %u "
                              "(all 0 until it is made ready)",
                              flags, q.next_avail, q.next_used, q.signalled_used));
    return vc::Status();
  }
  if (!(s.status & kFeaturesOk))
    return error(vc::Format("is ready, but status 0x%x lacks FEATURES_OK, without which a queue cannot be", s.status));
  bool event_idx = s.driver_features & kEventIdx, indirect = s.driver_features & kIndirectDesc;
  if (q.event_idx != event_idx || q.indirect != indirect)
    return error(vc::Format("has EVENT_IDX %d, INDIRECT_DESC %d, but driverFeatures 0x%llx say %d, %d", q.event_idx,
                            q.indirect, static_cast<ull>(s.driver_features), event_idx, indirect));
  if (q.signalled_used_valid && !q.event_idx) return error("has a signalled used index without EVENT_IDX");
  if (!q.signalled_used_valid && q.signalled_used)
    return error(vc::Format("has signalledUsed %u but no interrupt signalled", q.signalled_used));
  if (q.mode == QueueMode::kBroken) return vc::Status();  // its rings may be why it broke
  // MmioTransport::SaveState has the device give back every buffer it took, so an active queue
  // has used as many as it popped. Anything else could never have been saved, and is dangerous:
  // with more used than popped, a used ring laid over the avail ring makes each buffer the device
  // returns announce another one, and the device thread would serve that forever.
  if (q.next_avail != q.next_used)
    return error(vc::Format("is active with nextAvail %u but nextUsed %u: a saved queue has given back every "
                            "buffer it took",
                            q.next_avail, q.next_used));
  // What Queue::activate checks; both ring layouts count the trailing event word.
  if (!IsPowerOfTwo(q.size) || q.size > kMaxVirtqueueSize)
    return error(vc::Format("size %u is not a power of two in 1..%u", q.size, kMaxVirtqueueSize));
  struct Ring {
    const char* name;
    uint64_t addr, bytes, align;
  } rings[] = {{"descAddr", q.desc_addr, 16ull * q.size, 16},
               {"availAddr", q.avail_addr, 6 + 2ull * q.size, 2},
               {"usedAddr", q.used_addr, 6 + 8ull * q.size, 4}};
  for (const Ring& ring : rings) {
    if (ring.addr % ring.align)
      return error(vc::Format("%s 0x%llx is not %llu-byte aligned", ring.name, static_cast<ull>(ring.addr),
                              static_cast<ull>(ring.align)));
    if (!InRam(ring.addr, ring.bytes, ram))
      return error(vc::Format("%s 0x%llx + %llu bytes lies outside guest RAM (0x%llx bytes)", ring.name,
                              static_cast<ull>(ring.addr), static_cast<ull>(ring.bytes), static_cast<ull>(ram)));
  }
  return vc::Status();
}

}  // namespace

vc::Result<MmioState> DecodeMmioState(const uint8_t* data, size_t size, uint32_t slot, uint64_t ram_bytes) {
  std::string what = vc::Format("snapshot section virtio-mmio[%u]", slot);
  auto error = [&](const std::string& m) { return vc::Status::Error(what + ": " + m); };
  ByteReader r(data, size, what);
  MmioState s;
  s.device_id = r.u32("deviceId");
  s.status = r.u32("status");
  s.device_features_sel = r.u32("deviceFeaturesSel");
  s.driver_features_sel = r.u32("driverFeaturesSel");
  s.driver_features = r.u64("driverFeatures");
  s.queue_sel = r.u32("queueSel");
  s.interrupt_status = r.u32("interruptStatus");
  s.config_generation = r.u32("configGeneration");
  uint32_t count = r.u32("queueCount");
  if (!r.ok()) return r.status();
  const char* kind = VirtioKindName(s.device_id);
  if (!kind) return error(vc::Format("deviceId %u is not a device vc-vmm has (net 1, blk 2, rng 4, vsock 19)", s.device_id));
  if (count != VirtioQueueCount(s.device_id))
    return error(vc::Format("queueCount %u, but a %s device has %u queues", count, kind, VirtioQueueCount(s.device_id)));
  std::vector<uint8_t> flags(count);
  for (uint32_t i = 0; i < count; i++) {
    QueueState q;
    uint8_t mode = r.u8("queue mode");
    flags[i] = r.u8("queue flags");
    q.size = r.u16("queue size");
    q.next_avail = r.u16("queue nextAvail");
    q.next_used = r.u16("queue nextUsed");
    q.signalled_used = r.u16("queue signalledUsed");
    q.desc_addr = r.u64("queue descAddr");
    q.avail_addr = r.u64("queue availAddr");
    q.used_addr = r.u64("queue usedAddr");
    if (!r.ok()) return r.status();
    if (mode > static_cast<uint8_t>(QueueMode::kBroken))
      return error(vc::Format("queue %u mode %u is not 0 (off), 1 (active) or 2 (broken)", i, mode));
    q.mode = static_cast<QueueMode>(mode);
    q.event_idx = flags[i] & kQueueEventIdx;
    q.indirect = flags[i] & kQueueIndirect;
    q.signalled_used_valid = flags[i] & kQueueSignalledValid;
    s.queues.push_back(q);
  }
  r.expect_end();
  if (!r.ok()) return r.status();

  if (s.status & ~kStatusBits)
    return error(vc::Format("status 0x%x has bits outside 0x%x", s.status, kStatusBits));
  // Each step of the driver's initialisation (§3.1.1) needs the one before it.
  struct Step {
    uint32_t bit, needs;
    const char* name;
    const char* needs_name;
  } steps[] = {{kDriver, kAcknowledge, "DRIVER", "ACKNOWLEDGE"},
               {kFeaturesOk, kDriver, "FEATURES_OK", "DRIVER"},
               {kDriverOk, kFeaturesOk, "DRIVER_OK", "FEATURES_OK"}};
  for (const Step& step : steps)
    if ((s.status & step.bit) && !(s.status & step.needs))
      return error(vc::Format("status 0x%x has %s without %s", s.status, step.name, step.needs_name));
  if ((s.status & kFeaturesOk) && !(s.driver_features & kVersion1))
    return error(vc::Format("driverFeatures 0x%llx lack VERSION_1, which FEATURES_OK requires",
                            static_cast<ull>(s.driver_features)));
  if (s.interrupt_status & ~kInterruptBits)
    return error(vc::Format("interruptStatus 0x%x has bits outside 0x%x", s.interrupt_status, kInterruptBits));
  for (uint32_t i = 0; i < count; i++) {
    vc::Status st = CheckQueue(s.queues[i], i, s, ram_bytes, flags[i], what);
    if (!st.ok()) return st;
  }
  return s;
}

// virtio-device: kind u32, then blk: capacity u64, flags u32 (bit 0 read-only), serial (u32 length
// + bytes); net: mac (6 bytes), mtu u16, offloads u64; vsock: guestCid u64; rng: nothing.
std::vector<uint8_t> EncodeVirtioDeviceState(const VirtioDeviceState& s) {
  ByteWriter w;
  w.u32(s.kind);
  switch (s.kind) {
    case kVirtioBlk:
      w.u64(s.blk_capacity);
      w.u32(s.blk_read_only ? 1 : 0);
      w.blob(s.blk_serial);
      break;
    case kVirtioNet:
      w.bytes(s.net_mac.data(), s.net_mac.size());
      w.u16(s.net_mtu);
      w.u64(s.net_offloads);
      break;
    case kVirtioVsock:
      w.u64(s.vsock_guest_cid);
      break;
    default:
      break;
  }
  return std::move(w.data());
}

vc::Result<VirtioDeviceState> DecodeVirtioDeviceState(const uint8_t* data, size_t size, uint32_t slot) {
  std::string what = vc::Format("snapshot section virtio-device[%u]", slot);
  auto error = [&](const std::string& m) { return vc::Status::Error(what + ": " + m); };
  ByteReader r(data, size, what);
  VirtioDeviceState s;
  s.kind = r.u32("kind");
  if (!r.ok()) return r.status();
  uint32_t flags = 0;
  switch (s.kind) {
    case kVirtioBlk:
      s.blk_capacity = r.u64("capacity");
      flags = r.u32("flags");
      s.blk_serial = r.blob("serial", kBlkSerialBytes);
      break;
    case kVirtioNet:
      r.bytes("mac", s.net_mac.data(), s.net_mac.size());
      s.net_mtu = r.u16("mtu");
      s.net_offloads = r.u64("offloads");
      break;
    case kVirtioVsock:
      s.vsock_guest_cid = r.u64("guestCid");
      break;
    case kVirtioRng:
      break;
    default:
      return error(vc::Format("kind %u is not a device vc-vmm has (net 1, blk 2, rng 4, vsock 19)", s.kind));
  }
  r.expect_end();
  if (!r.ok()) return r.status();
  switch (s.kind) {
    case kVirtioBlk:
      if (flags & ~1u) return error(vc::Format("blk flags 0x%x has bits outside 0x1 (read-only)", flags));
      s.blk_read_only = flags & 1;
      break;
    case kVirtioNet: {
      // What vm/config.cc accepts for a NIC, and what NetDevice::accept_features lets through.
      const auto& m = s.net_mac;
      std::string mac = vc::Format("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
      if (m[0] & 1) return error("net mac " + mac + " is a multicast address");
      if (m == std::array<uint8_t, 6>{}) return error("net mac is all zeros");
      if (s.net_mtu < 68) return error(vc::Format("net mtu %u is below 68", s.net_mtu));
      if (s.net_offloads & ~kNetOffloadBits)
        return error(vc::Format("net offloads 0x%llx has bits outside the offload features 0x%llx",
                                static_cast<ull>(s.net_offloads), static_cast<ull>(kNetOffloadBits)));
      uint64_t o = s.net_offloads;
      if ((o & ((1ull << 7) | (1ull << 8))) && !(o & (1ull << 1)))
        return error(vc::Format("net offloads 0x%llx have GUEST_TSO without GUEST_CSUM", static_cast<ull>(o)));
      if ((o & ((1ull << 11) | (1ull << 12))) && !(o & (1ull << 0)))
        return error(vc::Format("net offloads 0x%llx have HOST_TSO without CSUM", static_cast<ull>(o)));
      break;
    }
    case kVirtioVsock:
      if (s.vsock_guest_cid < 3 || s.vsock_guest_cid > 0xfffffffe)
        return error(vc::Format("vsock guestCid %llu is not in 3..4294967294", static_cast<ull>(s.vsock_guest_cid)));
      break;
    default:
      break;
  }
  return s;
}

vc::Status CheckVirtioPair(const MmioState& mmio, const VirtioDeviceState& device, uint32_t slot) {
  if (mmio.device_id != device.kind)
    return vc::Status::Error(vc::Format("snapshot state file: slot %u: virtio-mmio[%u] is a %s device, "
                                        "virtio-device[%u] a %s one",
                                        slot, slot, VirtioKindName(mmio.device_id), slot, VirtioKindName(device.kind)));
  if (device.kind == kVirtioNet) {
    uint64_t want = (mmio.status & kDriverOk) ? mmio.driver_features & kNetOffloadBits : 0;
    if (device.net_offloads != want)
      return vc::Status::Error(vc::Format("snapshot state file: slot %u: virtio-device[%u] has net offloads 0x%llx, "
                                          "but the driver %s 0x%llx",
                                          slot, slot, static_cast<ull>(device.net_offloads),
                                          (mmio.status & kDriverOk) ? "negotiated" : "is not running, so",
                                          static_cast<ull>(want)));
  }
  return vc::Status();
}

}  // namespace vmm::snapshot
