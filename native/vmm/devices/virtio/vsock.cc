#include "devices/virtio/vsock.h"

#include <algorithm>

#include "devices/log.h"

namespace vmm::virtio {

namespace {
constexpr uint32_t kVsockEventTransportReset = 0;  // struct virtio_vsock_event { le32 id; }
// Refused packets are answered with RSTs; a guest that floods us with bad packets gets its
// excess ones dropped instead of growing this queue without bound.
constexpr size_t kMaxPendingRsts = 256;
}  // namespace

VsockVerdict parse_tx_packet(ChainReader* reader, uint64_t guest_cid, VsockHeader* hdr,
                             std::string* why) {
  if (!reader->read(hdr, sizeof(*hdr))) {
    *why = "packet shorter than its 44-byte header";
    return VsockVerdict::kDrop;
  }
  // Never answer an RST with an RST, nor a packet claiming another source with anything.
  VsockVerdict refuse = hdr->op == kVsockOpRst ? VsockVerdict::kDrop : VsockVerdict::kReset;
  if (hdr->src_cid != guest_cid) {
    *why = "source CID " + std::to_string(hdr->src_cid) + " is not the guest's";
    return VsockVerdict::kDrop;
  }
  if (hdr->dst_cid != kVsockHostCid) {
    *why = "destination CID " + std::to_string(hdr->dst_cid) + " is not the host";
    return refuse;
  }
  if (hdr->type != kVsockTypeStream) {
    *why = "socket type " + std::to_string(hdr->type) + " is not stream";
    return refuse;
  }
  if (hdr->op < kVsockOpRequest || hdr->op > kVsockOpCreditRequest) {
    *why = "unknown op " + std::to_string(hdr->op);
    return refuse;
  }
  if (hdr->op != kVsockOpRw && hdr->len != 0) {
    *why = "op " + std::to_string(hdr->op) + " carries a payload";
    return refuse;
  }
  if (hdr->len > kVsockMaxPayload) {
    *why = "payload length " + std::to_string(hdr->len) + " over the limit";
    return refuse;
  }
  if (hdr->len > reader->remaining()) {
    *why = "payload length " + std::to_string(hdr->len) + " but only " +
           std::to_string(reader->remaining()) + " bytes follow the header";
    return refuse;
  }
  return VsockVerdict::kDeliver;
}

VsockRxBuffer::VsockRxBuffer(const GuestMemory& mem, const DescriptorChain& chain)
    : header_(mem, chain), payload_(mem, chain), usable_(chain.writable_bytes >= sizeof(VsockHeader)) {
  if (usable_) payload_.skip(sizeof(VsockHeader));
}

uint32_t VsockRxBuffer::payload_room() const {
  if (!usable_) return 0;
  return std::min(payload_.remaining(), kVsockMaxPayload - filled_);
}

uint32_t VsockRxBuffer::payload_iovecs(uint32_t n, std::vector<iovec>* out) const {
  return payload_.iovecs(std::min(n, payload_room()), out);
}

void VsockRxBuffer::payload_filled(uint32_t n) {
  n = std::min(n, payload_room());
  payload_.skip(n);
  filled_ += n;
}

bool VsockRxBuffer::write_payload(const void* data, uint32_t n) {
  if (n > payload_room() || !payload_.write(data, n)) return false;
  filled_ += n;
  return true;
}

void VsockRxBuffer::finish(VsockHeader hdr) {
  if (!usable_ || used_len_) return;
  hdr.len = filled_;
  header_.write(&hdr, sizeof(hdr));
  used_len_ = sizeof(hdr) + filled_;
}

VsockDevice::VsockDevice(uint64_t guest_cid, VsockBackend* backend)
    : guest_cid_(guest_cid), backend_(backend) {
  backend_->attach(this);
}

void VsockDevice::read_config(uint64_t offset, uint8_t* data, uint32_t len) {
  uint64_t cid = guest_cid_;  // struct virtio_vsock_config { le64 guest_cid; }
  read_config_bytes(&cid, sizeof(cid), offset, data, len);
}

void VsockDevice::reset() {
  backend_->reset();
  rsts_.clear();
  transport_reset_pending_ = false;
  holding_for_reset_ = false;
  tx_unsignalled_ = 0;
}

void VsockDevice::signal_tx() {
  if (tx_unsignalled_ == 0 || !host_ || !host_->driver_ok()) return;
  tx_unsignalled_ = 0;
  host_->signal_used(kTxQueue);
}

std::vector<uint8_t> VsockDevice::save_state() const {
  snapshot::VirtioDeviceState s;
  s.kind = snapshot::kVirtioVsock;
  s.vsock_guest_cid = guest_cid_;
  return snapshot::EncodeVirtioDeviceState(s);
}

vc::Status VsockDevice::load_state(const uint8_t* data, size_t size, uint32_t slot) {
  return decode_own_state(data, size, slot).status();
}

void VsockDevice::QueueTransportReset() {
  std::lock_guard<std::mutex> lock(mutex());
  backend_->reset();
  rsts_.clear();
  transport_reset_pending_ = true;
  deliver_events();
}

void VsockDevice::deliver_events() {
  if (!transport_reset_pending_ || !host_ || !host_->driver_ok() || !host_->queue(kEventQueue).active()) return;
  Queue& q = host_->queue(kEventQueue);
  bool used = false;
  for (;;) {
    if (!next_chain(kEventQueue, &event_chain_)) {
      // Ask for a notification, then look again: a buffer added meanwhile would otherwise wait.
      if (host_->driver_ok() && q.active() && q.enable_notification()) continue;
      break;
    }
    ChainWriter writer(host_->memory(), event_chain_);
    uint32_t id = kVsockEventTransportReset;
    if (!writer.write(&id, sizeof(id))) {
      device_warn("virtio-vsock: event buffer of %u bytes cannot hold an event", event_chain_.writable_bytes);
      q.push_used(event_chain_.head, 0);
      used = true;
      continue;
    }
    // Asked before the interrupt, so the driver's notification after handling it cannot be missed.
    holding_for_reset_ = q.notify_on_next_add();
    q.push_used(event_chain_.head, sizeof(id));
    used = true;
    transport_reset_pending_ = false;
    break;
  }
  if (used) host_->signal_used(kEventQueue);
}

void VsockDevice::queue_notify(size_t index) {
  if (index == kTxQueue) {
    // The packets may have produced replies (credit updates, RSTs): those go out first, and the
    // tx completions ride on their interrupt (wake_rx); alone they wait (kTxSignalBatch).
    uint16_t before = host_ ? host_->queue(kTxQueue).next_used() : 0;
    bool used = drain_queue(kTxQueue, [this](const DescriptorChain& chain) { return handle_tx(chain); },
                            false);
    if (used) tx_unsignalled_ += static_cast<uint16_t>(host_->queue(kTxQueue).next_used() - before);
    wake_rx();
    if (tx_unsignalled_ == 0) return;
    Queue& q = host_->queue(kTxQueue);
    uint32_t batch = std::max<uint32_t>(1, std::min<uint32_t>(kTxSignalBatch, q.size / 4));
    if (tx_unsignalled_ >= batch) signal_tx();
  } else if (index == kRxQueue) {
    wake_rx();  // new rx buffers: deliver what was waiting for them
  } else if (index == kEventQueue) {
    deliver_events();  // event buffers: a transport reset may be waiting for one
    if (holding_for_reset_ && !transport_reset_pending_) {
      // The driver put an event buffer back: it has handled the reset (QueueTransportReset).
      holding_for_reset_ = false;
      wake_rx();
    }
  }
}

uint32_t VsockDevice::handle_tx(const DescriptorChain& chain) {
  ChainReader reader(host_->memory(), chain);
  VsockHeader hdr;
  std::string why;
  switch (parse_tx_packet(&reader, guest_cid_, &hdr, &why)) {
    case VsockVerdict::kDeliver:
      backend_->from_guest(hdr, &reader);
      break;
    case VsockVerdict::kReset:
      device_warn("virtio-vsock: refused a packet: %s", why.c_str());
      if (rsts_.size() < kMaxPendingRsts) {
        VsockHeader rst{};
        rst.src_cid = kVsockHostCid;
        rst.dst_cid = guest_cid_;
        rst.src_port = hdr.dst_port;
        rst.dst_port = hdr.src_port;
        rst.type = kVsockTypeStream;
        rst.op = kVsockOpRst;
        rsts_.push_back(rst);
      } else {
        dropped_++;
      }
      break;
    case VsockVerdict::kDrop:
      device_warn("virtio-vsock: dropped a packet: %s", why.c_str());
      dropped_++;
      break;
  }
  return 0;  // the device writes nothing into tx buffers
}

bool VsockDevice::gather_rx_buffers(bool* used) {
  Queue& q = host_->queue(kRxQueue);
  rx_buffers_.clear();
  while (rx_buffers_.size() < kRxBatch) {
    DescriptorChain& chain = rx_chains_[rx_buffers_.size()];
    uint16_t before = q.next_avail();
    // Out of buffers: the guest notifies the rx queue when it adds more, and we come back.
    if (!next_chain(kRxQueue, &chain)) break;
    // next_chain() consumed malformed chains before this one: unpop() can only go back over
    // buffers that follow each other, so this one waits for the next round.
    bool skipped = q.next_avail() != static_cast<uint16_t>(before + 1);
    VsockRxBuffer buffer(host_->memory(), chain);
    if ((skipped || !buffer.usable()) && !rx_buffers_.empty()) {
      q.unpop();
      break;
    }
    if (!buffer.usable()) {
      device_warn("virtio-vsock: rx buffer of %u bytes cannot hold a header", chain.writable_bytes);
      q.push_used(chain.head, 0);
      *used = true;
      continue;
    }
    rx_buffers_.push_back(buffer);
  }
  return !rx_buffers_.empty();
}

void VsockDevice::wake_rx() {
  if (!host_ || !host_->driver_ok() || !host_->queue(kRxQueue).active()) return;
  Queue& q = host_->queue(kRxQueue);
  bool used = false;
  while (!rsts_.empty() || (!holding_for_reset_ && backend_->has_rx())) {
    if (!gather_rx_buffers(&used)) break;
    size_t count = rx_buffers_.size(), done = 0;
    for (; done < count && !rsts_.empty(); done++) {
      rx_buffers_[done].finish(rsts_.front());
      rsts_.erase(rsts_.begin());
    }
    while (done < count && !holding_for_reset_) {
      size_t filled = backend_->to_guest(&rx_buffers_[done], count - done);
      if (filled == 0) break;
      done += std::min(filled, count - done);
    }
    for (size_t i = 0; i < done; i++) {
      if (!rx_buffers_[i].finished()) {  // a backend bug; never hand the guest a blank packet
        done = i;
        break;
      }
      q.push_used(rx_chains_[i].head, rx_buffers_[i].used_len());
      used = true;
    }
    // The backend had less than there were buffers (or a spurious wakeup): give the rest back.
    for (size_t i = count; i > done; i--) q.unpop();
    if (done < count) break;
  }
  // An interrupt the guest gets anyway (or still has pending) carries the owed tx completions:
  // Linux's handler walks every queue.
  if (used && host_->signal_used(kRxQueue)) signal_tx();
}

}  // namespace vmm::virtio
