#include "devices/virtio/mmio.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>

#include "devices/log.h"
#include "snapshot/device_state.h"

namespace vmm::virtio {

namespace {

constexpr uint32_t kMagic = 0x74726976;  // "virt"
constexpr uint32_t kVersion = 2;
constexpr uint32_t kVendorId = 0x4d4d5643;  // "VCMM": virtcontainers' VMM
constexpr uint64_t kConfigOffset = 0x100;

enum Register : uint64_t {
  kRegMagic = 0x000,
  kRegVersion = 0x004,
  kRegDeviceId = 0x008,
  kRegVendorId = 0x00c,
  kRegDeviceFeatures = 0x010,
  kRegDeviceFeaturesSel = 0x014,
  kRegDriverFeatures = 0x020,
  kRegDriverFeaturesSel = 0x024,
  kRegQueueSel = 0x030,
  kRegQueueNumMax = 0x034,
  kRegQueueNum = 0x038,
  kRegQueueReady = 0x044,
  kRegQueueNotify = 0x050,
  kRegInterruptStatus = 0x060,
  kRegInterruptAck = 0x064,
  kRegStatus = 0x070,
  kRegQueueDescLow = 0x080,
  kRegQueueDescHigh = 0x084,
  kRegQueueDriverLow = 0x090,
  kRegQueueDriverHigh = 0x094,
  kRegQueueDeviceLow = 0x0a0,
  kRegQueueDeviceHigh = 0x0a4,
  kRegShmSel = 0x0ac,
  kRegShmLenLow = 0x0b0,
  kRegShmBaseHigh = 0x0bc,
  kRegConfigGeneration = 0x0fc,
};

void set_low(uint64_t* v, uint32_t low) { *v = (*v & 0xffffffff00000000ull) | low; }
void set_high(uint64_t* v, uint32_t high) { *v = (*v & 0xffffffffull) | (uint64_t{high} << 32); }

}  // namespace

MmioTransport::MmioTransport(const GuestMemory& mem, Device* device, Interrupt* irq)
    : mem_(mem), device_(device), irq_(irq), queues_(device->num_queues()) {
  for (size_t i = 0; i < queues_.size(); i++) queues_[i].max_size = device->max_queue_size(i);
  device_->bind(this);
}

MmioTransport::~MmioTransport() {
  for (int fd : notify_fds_) {
    if (loop_) loop_->remove(fd);
    close(fd);
  }
}

void MmioTransport::read(uint64_t offset, uint8_t* data, uint32_t len) {
  std::lock_guard<std::mutex> lock(device_->mutex());
  if (offset >= kConfigOffset) {
    device_->read_config(offset - kConfigOffset, data, len);
    return;
  }
  std::memset(data, 0, len);
  if (len != 4 || offset % 4) return;  // registers are 32-bit only (§4.2.2.2)
  uint32_t value = read_register(offset);
  std::memcpy(data, &value, 4);
}

void MmioTransport::write(uint64_t offset, const uint8_t* data, uint32_t len) {
  std::lock_guard<std::mutex> lock(device_->mutex());
  if (offset >= kConfigOffset) {
    device_->write_config(offset - kConfigOffset, data, len);
    return;
  }
  if (len != 4 || offset % 4) return;
  uint32_t value;
  std::memcpy(&value, data, 4);
  write_register(offset, value);
}

uint32_t MmioTransport::read_register(uint64_t offset) {
  switch (offset) {
    case kRegMagic: return kMagic;
    case kRegVersion: return kVersion;
    case kRegDeviceId: return device_->device_id();
    case kRegVendorId: return kVendorId;
    case kRegDeviceFeatures: {
      uint64_t f = device_->device_features();
      return device_features_sel_ == 0 ? static_cast<uint32_t>(f)
             : device_features_sel_ == 1 ? static_cast<uint32_t>(f >> 32) : 0;
    }
    case kRegQueueNumMax: {
      Queue* q = selected_queue();
      return q ? q->max_size : 0;
    }
    case kRegQueueReady: {
      Queue* q = selected_queue();
      return q && q->ready ? 1 : 0;
    }
    case kRegInterruptStatus: return interrupt_status_;
    case kRegStatus: return status_;
    case kRegConfigGeneration: return config_generation_;
    default:
      // No shared memory regions: their length and base read as all ones (§4.2.2).
      if (offset >= kRegShmLenLow && offset <= kRegShmBaseHigh) return 0xffffffff;
      return 0;
  }
}

Queue* MmioTransport::selected_queue() {
  return queue_sel_ < queues_.size() ? &queues_[queue_sel_] : nullptr;
}

// The driver sets a queue up after FEATURES_OK (it needs the negotiated ring features) and while
// the queue is not ready; changes at other times are ignored rather than half-applied.
bool MmioTransport::queue_config_writable() {
  Queue* q = selected_queue();
  return q && !q->ready && (status_ & kStatusFeaturesOk) && !(status_ & kStatusFailed);
}

void MmioTransport::write_register(uint64_t offset, uint32_t value) {
  Queue* q = selected_queue();
  switch (offset) {
    case kRegDeviceFeaturesSel: device_features_sel_ = value; return;
    case kRegDriverFeatures:
      // Features are negotiable only between DRIVER and FEATURES_OK (§3.1.1).
      if (!(status_ & kStatusDriver) || (status_ & kStatusFeaturesOk)) return;
      if (driver_features_sel_ == 0) set_low(&driver_features_, value);
      else if (driver_features_sel_ == 1) set_high(&driver_features_, value);
      return;
    case kRegDriverFeaturesSel: driver_features_sel_ = value; return;
    case kRegQueueSel: queue_sel_ = value; return;
    case kRegQueueNum:
      if (queue_config_writable()) q->size = static_cast<uint16_t>(value > 0xffff ? 0 : value);
      return;
    case kRegQueueReady:
      if (!q || !(status_ & kStatusFeaturesOk)) return;
      if (value == 0) {
        uint16_t max = q->max_size;
        q->reset();
        q->max_size = max;
        return;
      }
      if (q->ready) return;
      q->ready = true;
      if (!q->activate(mem_, driver_features_ & kFRingEventIdx,
                       driver_features_ & kFRingIndirectDesc)) {
        device_warn("virtio device %u queue %u: %s", device_->device_id(), queue_sel_,
                    q->error().c_str());
        set_needs_reset(q->error().c_str());
      }
      return;
    case kRegQueueNotify: notify_locked(value); return;
    case kRegInterruptAck: interrupt_status_ &= ~value; return;
    case kRegStatus: write_status(value); return;
    case kRegQueueDescLow: if (queue_config_writable()) set_low(&q->desc_addr, value); return;
    case kRegQueueDescHigh: if (queue_config_writable()) set_high(&q->desc_addr, value); return;
    case kRegQueueDriverLow: if (queue_config_writable()) set_low(&q->avail_addr, value); return;
    case kRegQueueDriverHigh: if (queue_config_writable()) set_high(&q->avail_addr, value); return;
    case kRegQueueDeviceLow: if (queue_config_writable()) set_low(&q->used_addr, value); return;
    case kRegQueueDeviceHigh: if (queue_config_writable()) set_high(&q->used_addr, value); return;
    default: return;  // read-only or nonexistent (SHMSel included: there are no regions)
  }
}

void MmioTransport::write_status(uint32_t value) {
  if (value == 0) {
    reset_locked();
    return;
  }
  // DEVICE_NEEDS_RESET is the device's to set; the driver echoing it back changes nothing.
  value = (value & ~kStatusDeviceNeedsReset) | (status_ & kStatusDeviceNeedsReset);
  if ((value & status_) != status_) {
    device_warn("virtio device %u: driver cleared status bits (0x%x -> 0x%x) without a reset",
                device_->device_id(), status_, value);
    return;
  }
  uint32_t added = value & ~status_;
  // Each step of §3.1.1 needs the one before it.
  if ((added & kStatusDriver) && !(value & kStatusAcknowledge)) added &= ~kStatusDriver;
  if ((added & kStatusFeaturesOk) && !(value & kStatusDriver)) added &= ~kStatusFeaturesOk;
  if (added & kStatusFeaturesOk) {
    uint64_t offered = device_->device_features();
    // Only modern drivers (VERSION_1), and only features we offered; otherwise FEATURES_OK stays
    // clear, which the driver reads back as a refusal.
    if ((driver_features_ & ~offered) || !(driver_features_ & kFVersion1) ||
        !device_->accept_features(driver_features_))
      added &= ~kStatusFeaturesOk;
  }
  if ((added & kStatusDriverOk) && !((status_ | added) & kStatusFeaturesOk)) added &= ~kStatusDriverOk;
  status_ |= added;
  if (added & kStatusDriverOk) {
    device_->activate();
    // Buffers the driver queued (and notified) before DRIVER_OK were ignored; look now.
    for (size_t i = 0; i < queues_.size(); i++)
      if (queues_[i].active() && driver_ok()) device_->queue_notify(i);
  }
}

void MmioTransport::reset_locked() {
  device_->reset();
  for (Queue& q : queues_) {
    uint16_t max = q.max_size;
    q.reset();
    q.max_size = max;
  }
  status_ = 0;
  driver_features_ = 0;
  device_features_sel_ = driver_features_sel_ = queue_sel_ = 0;
  interrupt_status_ = 0;
  last_error_.clear();
}

void MmioTransport::notify(uint32_t queue_index) {
  std::lock_guard<std::mutex> lock(device_->mutex());
  notify_locked(queue_index);
}

void MmioTransport::notify_locked(uint32_t queue_index) {
  if (queue_index >= queues_.size() || !driver_ok() || !queues_[queue_index].active()) return;
  device_->queue_notify(queue_index);
}

bool MmioTransport::driver_ok() const {
  return (status_ & kStatusDriverOk) && !(status_ & kStatusDeviceNeedsReset);
}

Queue& MmioTransport::queue(size_t index) { return queues_[index]; }

bool MmioTransport::signal_used(size_t index) {
  if (index < queues_.size() && queues_[index].needs_interrupt()) raise(kInterruptUsedBuffer);
  return (interrupt_status_ & kInterruptUsedBuffer) != 0;
}

void MmioTransport::signal_config_change() {
  config_generation_++;
  if (status_ & kStatusDriverOk) raise(kInterruptConfigChange);
}

void MmioTransport::set_needs_reset(const char* why) {
  if (status_ & kStatusDeviceNeedsReset) return;
  status_ |= kStatusDeviceNeedsReset;
  last_error_ = why;
  // §2.1.2: with DRIVER_OK set, the device must also send a configuration change notification.
  if (status_ & kStatusDriverOk) raise(kInterruptConfigChange);
}

// Pulses the line only for bits the driver has not been told of yet. A bit still set has an
// interrupt pending or being handled: Linux's vm_interrupt() reads InterruptStatus, acknowledges
// it and only then walks every queue, so a used buffer added before the acknowledgement is seen
// by that walk. A second pulse (the vsock device signals rx and tx in one pass) was a second
// interrupt, with its two MMIO exits, for nothing. This is also what QEMU's level-modelled line
// does: no new edge while InterruptStatus stays non-zero.
void MmioTransport::raise(uint32_t bits) {
  bool fresh = (interrupt_status_ & bits) != bits;
  interrupt_status_ |= bits;
  if (fresh && irq_) irq_->trigger();
}

uint32_t MmioTransport::status() {
  std::lock_guard<std::mutex> lock(device_->mutex());
  return status_;
}

uint32_t MmioTransport::interrupt_status() {
  std::lock_guard<std::mutex> lock(device_->mutex());
  return interrupt_status_;
}

bool MmioTransport::create_notify_eventfds(EventLoop* loop) {
  if (!notify_fds_.empty()) return true;
  loop_ = loop;
  for (size_t i = 0; i < queues_.size(); i++) {
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) return false;
    notify_fds_.push_back(fd);
    bool added = loop->add(fd, EPOLLIN, [this, fd, i](uint32_t) {
      uint64_t count;
      if (::read(fd, &count, sizeof(count)) == sizeof(count)) notify(static_cast<uint32_t>(i));
    });
    if (!added) return false;
  }
  return true;
}

std::vector<uint8_t> MmioTransport::SaveState() {
  std::lock_guard<std::mutex> lock(device_->mutex());
  device_->release_held_buffers();
  snapshot::MmioState s;
  s.device_id = device_->device_id();
  s.status = status_;
  s.device_features_sel = device_features_sel_;
  s.driver_features_sel = driver_features_sel_;
  s.driver_features = driver_features_;
  s.queue_sel = queue_sel_;
  s.interrupt_status = interrupt_status_;
  s.config_generation = config_generation_;
  for (const Queue& q : queues_) s.queues.push_back(q.save_state());
  return snapshot::EncodeMmioState(s);
}

vc::Status MmioTransport::LoadState(const uint8_t* data, size_t size, uint64_t ram_bytes, uint32_t slot) {
  using ull = unsigned long long;
  auto decoded = snapshot::DecodeMmioState(data, size, slot, ram_bytes);
  if (!decoded.ok()) return decoded.status();
  const snapshot::MmioState& s = decoded.value();
  std::string what = vc::Format("snapshot section virtio-mmio[%u]", slot);
  auto error = [&](const std::string& m) { return vc::Status::Error(what + ": " + m); };
  std::lock_guard<std::mutex> lock(device_->mutex());
  if (ram_bytes != mem_.size())
    return error(vc::Format("the snapshot's RAM is %llu bytes, this VM's %llu", static_cast<ull>(ram_bytes),
                            static_cast<ull>(mem_.size())));
  if (s.device_id != device_->device_id())
    return error(vc::Format("deviceId %u (%s), but this slot's device is %u (%s)", s.device_id,
                            snapshot::VirtioKindName(s.device_id), device_->device_id(),
                            snapshot::VirtioKindName(device_->device_id())
                                ? snapshot::VirtioKindName(device_->device_id())
                                : "unknown"));
  if (s.queues.size() != queues_.size())
    return error(vc::Format("%zu queues, but this device has %zu", s.queues.size(), queues_.size()));
  if (s.status & kStatusFeaturesOk) {
    uint64_t offered = device_->device_features();
    if (s.driver_features & ~offered)
      return error(vc::Format("driverFeatures 0x%llx include 0x%llx, which this device does not offer (it offers 0x%llx)",
                              static_cast<ull>(s.driver_features), static_cast<ull>(s.driver_features & ~offered),
                              static_cast<ull>(offered)));
    if (!device_->accept_features(s.driver_features))
      return error(vc::Format("driverFeatures 0x%llx are not a combination this device accepts",
                              static_cast<ull>(s.driver_features)));
  }
  // Activate copies first, so that nothing changes unless every queue comes back.
  std::vector<Queue> queues = queues_;
  for (size_t i = 0; i < queues.size(); i++) {
    const snapshot::QueueState& q = s.queues[i];
    if (q.mode == snapshot::QueueMode::kActive && q.size > queues[i].max_size)
      return error(vc::Format("queue %zu size %u is over this device's maximum of %u", i, q.size, queues[i].max_size));
    if (!queues[i].load_state(mem_, q)) return error(vc::Format("queue %zu: %s", i, queues[i].error().c_str()));
  }
  queues_ = std::move(queues);
  status_ = s.status;
  device_features_sel_ = s.device_features_sel;
  driver_features_sel_ = s.driver_features_sel;
  driver_features_ = s.driver_features;
  queue_sel_ = s.queue_sel;
  interrupt_status_ = s.interrupt_status;
  config_generation_ = s.config_generation;
  last_error_ = (status_ & kStatusDeviceNeedsReset) ? "the device needed a reset when the snapshot was taken" : "";
  if (driver_ok()) {
    device_->activate();
    for (size_t i = 0; i < queues_.size(); i++)
      if (queues_[i].active() && driver_ok()) device_->queue_notify(i);
  }
  if (interrupt_status_ && irq_) irq_->trigger();
  return vc::Status();
}

int MmioTransport::queue_notify_eventfd(size_t index) const {
  return index < notify_fds_.size() ? notify_fds_[index] : -1;
}

}  // namespace vmm::virtio
