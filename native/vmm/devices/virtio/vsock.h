// virtio-vsock (§5.10), stream sockets only. The device moves packets between the guest's
// virtqueues and a VsockBackend (the host side: Firecracker-style hybrid vsock over Unix sockets
// in backends/vsock_unix.h). Queues: 0 = rx (device to guest), 1 = tx (guest to device), 2 = event.
//
// Packet framing: the 44-byte header and the payload may share one descriptor (Linux >= 6.2 rx
// buffers) or be split across descriptors at any byte (older kernels, Debian's 6.1 included, use a
// header descriptor plus a payload descriptor). Parsing goes through ChainReader/ChainWriter, so
// every split is handled the same way.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "devices/virtio/chain_io.h"
#include "devices/virtio/device.h"

namespace vmm::virtio {

constexpr uint64_t kVsockHostCid = 2;
constexpr uint16_t kVsockTypeStream = 1;

constexpr uint16_t kVsockOpRequest = 1;
constexpr uint16_t kVsockOpResponse = 2;
constexpr uint16_t kVsockOpRst = 3;
constexpr uint16_t kVsockOpShutdown = 4;
constexpr uint16_t kVsockOpRw = 5;
constexpr uint16_t kVsockOpCreditUpdate = 6;
constexpr uint16_t kVsockOpCreditRequest = 7;

constexpr uint32_t kVsockShutdownRcv = 1;   // the sender will receive no more
constexpr uint32_t kVsockShutdownSend = 2;  // the sender will send no more

// The largest payload one packet may carry (Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE).
constexpr uint32_t kVsockMaxPayload = 64 * 1024;

#pragma pack(push, 1)
struct VsockHeader {
  uint64_t src_cid;
  uint64_t dst_cid;
  uint32_t src_port;
  uint32_t dst_port;
  uint32_t len;
  uint16_t type;
  uint16_t op;
  uint32_t flags;
  uint32_t buf_alloc;
  uint32_t fwd_cnt;
};
#pragma pack(pop)
static_assert(sizeof(VsockHeader) == 44, "virtio_vsock_hdr is 44 bytes");

// What the device does with a packet the guest sent.
enum class VsockVerdict {
  kDeliver,  // well-formed and addressed to the host: hand it to the backend
  kReset,    // answer with RST (unknown type or op, wrong destination)
  kDrop,     // ignore (malformed, or an RST the guest sent to nobody)
};

// Reads and checks a tx packet's header from `payload` (positioned at the chain's start); on
// kDeliver the reader is left at the payload, which holds exactly hdr->len bytes.
VsockVerdict parse_tx_packet(ChainReader* reader, uint64_t guest_cid, VsockHeader* hdr,
                             std::string* why);

// One guest rx buffer being filled by the backend: payload first, then finish() writes the header.
class VsockRxBuffer {
 public:
  VsockRxBuffer(const GuestMemory& mem, const DescriptorChain& chain);
  // False when the buffer cannot even hold a header (the device returns it unused).
  bool usable() const { return usable_; }
  // Payload bytes still free in this buffer (capped at kVsockMaxPayload).
  uint32_t payload_room() const;
  // Host iovecs covering up to n payload bytes, for readv() from a socket; then payload_filled(k).
  uint32_t payload_iovecs(uint32_t n, std::vector<iovec>* out) const;
  void payload_filled(uint32_t n);
  bool write_payload(const void* data, uint32_t n);
  // Writes `hdr` with len = the payload filled so far. The backend calls this once per packet.
  void finish(VsockHeader hdr);
  bool finished() const { return used_len_ != 0; }
  uint32_t used_len() const { return used_len_; }

 private:
  ChainWriter header_;
  ChainWriter payload_;
  bool usable_;
  uint32_t filled_ = 0;
  uint32_t used_len_ = 0;
};

class VsockDevice;

// The host side of the device. All calls happen with the device's mutex held; a backend that
// learns of new host-side work on its own thread locks device->mutex() and calls wake_rx().
class VsockBackend {
 public:
  virtual ~VsockBackend() = default;
  virtual void attach(VsockDevice* device) = 0;
  // A packet from the guest that parse_tx_packet() accepted; its payload is in `payload`.
  virtual void from_guest(const VsockHeader& hdr, ChainReader* payload) = 0;
  virtual bool has_rx() const = 0;
  // Writes the next packets for the guest into buffers[0..count) and returns how many it
  // finished, in order (0: it has none after all). One packet per buffer; a data read from the
  // host may fill several buffers at once (one readv instead of one read per guest buffer).
  virtual size_t to_guest(VsockRxBuffer* buffers, size_t count) = 0;
  // The driver reset the device: every connection is gone.
  virtual void reset() = 0;
};

class VsockDevice final : public Device {
 public:
  static constexpr size_t kRxQueue = 0, kTxQueue = 1, kEventQueue = 2;

  // The backend must outlive the device.
  VsockDevice(uint64_t guest_cid, VsockBackend* backend);
  ~VsockDevice() override { backend_->attach(nullptr); }

  uint64_t guest_cid() const { return guest_cid_; }
  // Moves as many pending backend packets into guest rx buffers as there are buffers. Call with
  // mutex() held.
  void wake_rx();

  // Tx completions wait for a ride: the guest's driver only frees the packets' memory when told of
  // them, nothing waits on it, so their interrupt is deferred until the rx queue's (credit updates,
  // replies, host data) goes out anyway, or until this many tx buffers are owed, or the ring is a
  // quarter full of them (so the driver never runs short of descriptors). Linux 6.1 took one
  // interrupt per packet: with its InterruptStatus read and acknowledgement, two MMIO exits each.
  static constexpr uint32_t kTxSignalBatch = 16;

  uint32_t device_id() const override { return kIdVsock; }
  uint64_t device_features() const override {
    return kFVersion1 | kFRingEventIdx | kFRingIndirectDesc;
  }
  size_t num_queues() const override { return 3; }
  void read_config(uint64_t offset, uint8_t* data, uint32_t len) override;
  void activate() override {
    wake_rx();
    deliver_events();
  }
  void reset() override;
  void queue_notify(size_t index) override;

  // After a restore, before the guest runs again: every connection the guest had is gone (its
  // host ends died with the old VMM), so the device drops what it knows of them (the backend's
  // connections, RSTs it owed) and tells the driver with VIRTIO_VSOCK_EVENT_TRANSPORT_RESET on
  // the event queue (§5.10.6.6), interrupting it. The guest then resets every connected socket
  // and re-reads the guest CID. Without an event buffer (or before DRIVER_OK) the event waits for
  // the driver to post one; a device reset drops it. Takes mutex() (do not hold it).
  //
  // From the event's delivery until the driver has handled it, the device holds what the backend
  // has for the guest (host connection requests: the backend has nothing else after a reset), so
  // a connection the host opens right after a restore is not reset with the old ones. Linux puts
  // the event buffer back and notifies once it has reset its sockets; the device asks for that
  // notification and lets the held packets go on it. A driver that never notifies leaves a host
  // connect to the backend's connect timeout (the host client sees a reset, as before).
  void QueueTransportReset();
  bool transport_reset_pending() const { return transport_reset_pending_; }
  bool holding_for_reset() const { return holding_for_reset_; }

  uint64_t dropped_packets() const { return dropped_; }

 protected:
  // The guest CID the guest was shown. Not applied: the restore's config says the CID, and the
  // guest re-reads it on the transport reset.
  std::vector<uint8_t> save_state() const override;
  vc::Status load_state(const uint8_t* data, size_t size, uint32_t slot) override;

 private:
  uint32_t handle_tx(const DescriptorChain& chain);
  // Interrupts the driver for the tx buffers completed since the last time, if it wants that.
  void signal_tx();
  // Puts a pending transport reset on the event queue when the driver has a buffer there.
  void deliver_events();
  // Pops up to kRxBatch usable rx buffers that follow each other in the avail ring (so the
  // unused tail can be given back with unpop()) into rx_buffers_; false when there are none.
  bool gather_rx_buffers(bool* used);

  uint64_t guest_cid_;
  VsockBackend* backend_;
  std::vector<VsockHeader> rsts_;  // RSTs the device owes the guest for packets it refused
  uint64_t dropped_ = 0;
  DescriptorChain event_chain_;
  bool transport_reset_pending_ = false;
  bool holding_for_reset_ = false;  // the reset event is out; the driver has not handled it yet
  uint32_t tx_unsignalled_ = 0;  // tx buffers used since the last tx signal
  // Rx buffers filled per round: a guest with 4 KiB rx buffers (Linux < 6.2) gets up to
  // 32 x 4 KiB from one host read.
  static constexpr size_t kRxBatch = 32;
  std::vector<DescriptorChain> rx_chains_ = std::vector<DescriptorChain>(kRxBatch);  // reused
  std::vector<VsockRxBuffer> rx_buffers_;  // built over rx_chains_ each round
};

}  // namespace vmm::virtio
