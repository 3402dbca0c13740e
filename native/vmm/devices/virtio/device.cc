#include "devices/virtio/device.h"

#include "devices/log.h"

namespace vmm::virtio {

std::vector<uint8_t> Device::SaveState() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return save_state();
}

vc::Status Device::LoadState(const uint8_t* data, size_t size, uint32_t slot) {
  std::lock_guard<std::mutex> lock(mutex_);
  return load_state(data, size, slot);
}

vc::Result<snapshot::VirtioDeviceState> Device::decode_own_state(const uint8_t* data, size_t size,
                                                                 uint32_t slot) const {
  auto s = snapshot::DecodeVirtioDeviceState(data, size, slot);
  if (!s.ok()) return s.status();
  if (s.value().kind != device_id()) {
    const char* mine = snapshot::VirtioKindName(device_id());
    return vc::Status::Error(vc::Format("snapshot section virtio-device[%u]: a %s device's state cannot be loaded "
                                        "into this %s device",
                                        slot, snapshot::VirtioKindName(s.value().kind), mine ? mine : "unknown"));
  }
  return s;
}

bool Device::next_chain(size_t index, DescriptorChain* chain) {
  if (!host_ || !host_->driver_ok()) return false;
  Queue& q = host_->queue(index);
  for (;;) {
    switch (q.pop(chain)) {
      case Queue::Pop::kChain:
        return true;
      case Queue::Pop::kEmpty:
        return false;
      case Queue::Pop::kBadChain:
        device_warn("virtio device %u queue %zu: %s", device_id(), index, q.error().c_str());
        host_->signal_used(index);
        continue;
      case Queue::Pop::kBroken:
        device_warn("virtio device %u queue %zu: %s", device_id(), index, q.error().c_str());
        host_->set_needs_reset(q.error().c_str());
        return false;
    }
  }
}

bool Device::drain_queue(size_t index,
                         const std::function<uint32_t(const DescriptorChain&)>& handle,
                         bool signal) {
  if (!host_ || !host_->driver_ok()) return false;
  Queue& q = host_->queue(index);
  bool used = false;
  do {
    while (next_chain(index, &chain_)) {
      q.push_used(chain_.head, handle(chain_));
      used = true;
    }
  } while (host_->driver_ok() && q.enable_notification());
  if (used && signal) host_->signal_used(index);
  return used;
}

}  // namespace vmm::virtio
