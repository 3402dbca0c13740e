// virtio-rng (§5.4): fills each device-writable buffer with bytes from the host's getrandom().
#pragma once

#include "devices/virtio/device.h"

namespace vmm::virtio {

class RngDevice final : public Device {
 public:
  // A request is served up to this many bytes; the driver asks again for more.
  static constexpr uint32_t kMaxBytesPerRequest = 64 * 1024;

  uint32_t device_id() const override { return kIdRng; }
  uint64_t device_features() const override {
    return kFVersion1 | kFRingEventIdx | kFRingIndirectDesc;
  }
  size_t num_queues() const override { return 1; }
  void read_config(uint64_t, uint8_t* data, uint32_t len) override {
    read_config_bytes(nullptr, 0, 0, data, len);  // no config space: reads as zero
  }
  void reset() override {}
  void queue_notify(size_t index) override;

 protected:
  // Nothing beyond the kind: the transport holds all there is.
  std::vector<uint8_t> save_state() const override;
  vc::Status load_state(const uint8_t* data, size_t size, uint32_t slot) override;
};

}  // namespace vmm::virtio
