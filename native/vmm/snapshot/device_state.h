// The device sections (format.h): serial, i8042, virtio-mmio and virtio-device. Plain structures,
// their encoders, and decoders that check every field (the error names the section, the field and
// its value) so a device model's LoadState applies only state it could have reached itself. The
// layouts are in docs/snapshots.md "The state file"; like every section they are versioned by the
// file's format version.
//
// The device models (devices/) convert to and from these: Serial::SaveState/LoadState,
// I8042::SaveState/LoadState, virtio::MmioTransport::SaveState/LoadState and
// virtio::Device::SaveState/LoadState. This layer knows nothing of them, so its bounds (RX FIFO,
// output buffer, queue counts) are restated here and the device models static_assert that they
// agree.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"

namespace vmm::snapshot {

// --- serial: COM1 --------------------------------------------------------------------------------

constexpr uint32_t kSerialRxCapacity = 4096;  // the UART's receive buffer (devices/serial.cc)

struct SerialState {
  uint8_t ier = 0, lcr = 0, mcr = 0, scr = 0;
  uint8_t fcr = 0;           // only the FIFO-enable bit shows (in IIR), but Linux checks it
  uint8_t dll = 0, dlm = 0;  // the divisor latch
  bool thr_empty_pending = false;  // the "transmitter empty" interrupt IIR has not yet reported
  std::vector<uint8_t> rx;         // the receive FIFO, oldest byte first
};

std::vector<uint8_t> EncodeSerialState(const SerialState& s);
vc::Result<SerialState> DecodeSerialState(const uint8_t* data, size_t size);

// --- i8042 ---------------------------------------------------------------------------------------

constexpr uint32_t kI8042OutputCapacity = 16;  // devices/i8042.cc

struct I8042State {
  uint8_t control = 0;          // the controller's command byte (configuration byte)
  uint8_t pending_command = 0;  // a command awaiting its data byte: 0, 0x60, 0xD1 or 0xD4
  std::vector<uint8_t> output;  // the output buffer, next byte first
};

std::vector<uint8_t> EncodeI8042State(const I8042State& s);
vc::Result<I8042State> DecodeI8042State(const uint8_t* data, size_t size);

// --- virtio ----------------------------------------------------------------------------------------

// The device kinds a snapshot knows, by their virtio device IDs (§5).
constexpr uint32_t kVirtioNet = 1, kVirtioBlk = 2, kVirtioRng = 4, kVirtioVsock = 19;
// "net", "blk", "rng", "vsock"; nullptr for any other ID.
const char* VirtioKindName(uint32_t kind);
// How many virtqueues each kind has (net: rx, tx; vsock: rx, tx, event); 0 for an unknown kind.
uint32_t VirtioQueueCount(uint32_t kind);

constexpr uint32_t kMaxVirtqueueSize = 32768;  // the largest split ring (§2.7)
constexpr uint32_t kBlkSerialBytes = 20;       // VIRTIO_BLK_ID_BYTES
// The net offloads a guest can negotiate (CSUM, GUEST_CSUM, GUEST_TSO4/6, HOST_TSO4/6).
constexpr uint64_t kNetOffloadBits = (1ull << 0) | (1ull << 1) | (1ull << 7) | (1ull << 8) | (1ull << 11) | (1ull << 12);

enum class QueueMode : uint8_t {
  kOff = 0,     // not ready (the reset state; the driver may have written size and addresses)
  kActive = 1,  // ready, and its rings passed Queue::activate's checks
  kBroken = 2,  // ready, but the device stopped it (DEVICE_NEEDS_RESET): the guest must reset
};

struct QueueState {
  QueueMode mode = QueueMode::kOff;
  bool event_idx = false, indirect = false;  // what activation saw negotiated
  uint16_t size = 0;
  uint16_t next_avail = 0, next_used = 0;
  uint16_t signalled_used = 0;  // EVENT_IDX: the used index of the last interrupt...
  bool signalled_used_valid = false;  // ...once there was one
  uint64_t desc_addr = 0, avail_addr = 0, used_addr = 0;
};

struct MmioState {
  uint32_t device_id = 0;  // the kind of device behind the transport
  uint32_t status = 0;
  uint32_t device_features_sel = 0, driver_features_sel = 0;
  uint64_t driver_features = 0;
  uint32_t queue_sel = 0;
  uint32_t interrupt_status = 0;
  uint32_t config_generation = 0;
  std::vector<QueueState> queues;  // VirtioQueueCount(device_id) of them
};

std::vector<uint8_t> EncodeMmioState(const MmioState& s);
// `slot` names the section in errors; ring addresses are checked against `ram_bytes` of guest RAM
// (from GPA 0) the way Queue::activate checks them.
vc::Result<MmioState> DecodeMmioState(const uint8_t* data, size_t size, uint32_t slot, uint64_t ram_bytes);

struct VirtioDeviceState {
  uint32_t kind = 0;  // kVirtioNet, kVirtioBlk, kVirtioRng or kVirtioVsock
  // blk: what the guest knows of the disk; the restore attaches the disk itself
  uint64_t blk_capacity = 0;  // 512-byte sectors; 0 for an empty slot
  bool blk_read_only = false;
  std::string blk_serial;  // at most 20 bytes
  // net: the MAC and MTU the guest was shown, and the offloads applied to the tap
  std::array<uint8_t, 6> net_mac{};
  uint16_t net_mtu = 0;
  uint64_t net_offloads = 0;
  // vsock
  uint64_t vsock_guest_cid = 0;
};

std::vector<uint8_t> EncodeVirtioDeviceState(const VirtioDeviceState& s);
vc::Result<VirtioDeviceState> DecodeVirtioDeviceState(const uint8_t* data, size_t size, uint32_t slot);

// What a slot's two sections must say together: the same kind, and (net) the offloads the
// device applied are the driver's once DRIVER_OK was set, none before.
vc::Status CheckVirtioPair(const MmioState& mmio, const VirtioDeviceState& device, uint32_t slot);

}  // namespace vmm::snapshot
