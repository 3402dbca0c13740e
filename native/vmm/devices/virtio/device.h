// The seam between a virtio device model (blk, vsock, rng, ...) and its transport (virtio-mmio).
// The transport owns the register file, feature negotiation, the status state machine and the
// queues; the device owns its config space and what requests mean.
//
// Threading: every call into a device and every DeviceHost call happens with the device's mutex()
// held. The transport takes it for register accesses (vCPU threads) and notifications (device
// thread); backends take it in their own event callbacks before touching the device.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <mutex>
#include <vector>

#include "common/result.h"
#include "devices/virtio/queue.h"
#include "guest_memory.h"

namespace vmm::virtio {

// Device-independent feature bits (§6).
constexpr uint64_t kFRingIndirectDesc = 1ull << 28;
constexpr uint64_t kFRingEventIdx = 1ull << 29;
constexpr uint64_t kFVersion1 = 1ull << 32;

// Device status bits (§2.1).
constexpr uint32_t kStatusAcknowledge = 1;
constexpr uint32_t kStatusDriver = 2;
constexpr uint32_t kStatusDriverOk = 4;
constexpr uint32_t kStatusFeaturesOk = 8;
constexpr uint32_t kStatusDeviceNeedsReset = 64;
constexpr uint32_t kStatusFailed = 128;

// Device IDs (§5).
constexpr uint32_t kIdNet = 1;
constexpr uint32_t kIdBlock = 2;
constexpr uint32_t kIdRng = 4;
constexpr uint32_t kIdVsock = 19;

// What a device may ask of its transport.
class DeviceHost {
 public:
  virtual ~DeviceHost() = default;
  virtual Queue& queue(size_t index) = 0;
  virtual const GuestMemory& memory() const = 0;
  virtual uint64_t driver_features() const = 0;
  // True between DRIVER_OK and the next reset, unless the device needs a reset.
  virtual bool driver_ok() const = 0;
  // Used buffers were added to queue `index`: interrupt the driver if it asked for one. True when
  // the driver has a used-buffer interrupt coming (raised now or still unacknowledged), so a
  // device can hand it other queues' used buffers at no extra cost.
  virtual bool signal_used(size_t index) = 0;
  // The config space changed (bumps ConfigGeneration and interrupts).
  virtual void signal_config_change() = 0;
  // The device cannot go on until the driver resets it (sets DEVICE_NEEDS_RESET).
  virtual void set_needs_reset(const char* why) = 0;
};

class Device {
 public:
  virtual ~Device() = default;

  virtual uint32_t device_id() const = 0;
  // Everything the device offers, ring features (indirect, event idx) and VERSION_1 included.
  virtual uint64_t device_features() const = 0;
  virtual size_t num_queues() const = 0;
  virtual uint16_t max_queue_size(size_t /*index*/) const { return 256; }
  // Whether the device can work with the features the driver chose (already a subset of
  // device_features(), VERSION_1 included); false keeps FEATURES_OK clear. For dependencies
  // between device feature bits the spec makes the driver's duty (e.g. net's TSO needs CSUM).
  virtual bool accept_features(uint64_t /*features*/) const { return true; }

  // Config space access at `offset` from its start; bytes outside the space read as zero and
  // writes to them are ignored.
  virtual void read_config(uint64_t offset, uint8_t* data, uint32_t len) = 0;
  virtual void write_config(uint64_t /*offset*/, const uint8_t* /*data*/, uint32_t /*len*/) {}

  // Called once by the transport's constructor.
  void bind(DeviceHost* host) { host_ = host; }

  // DRIVER_OK was set: queues that the driver made ready are active.
  virtual void activate() {}
  // The driver reset the device: forget everything tied to the queues.
  virtual void reset() = 0;
  // The driver made buffers available on queue `index` (QueueNotify or its ioeventfd).
  virtual void queue_notify(size_t index) = 0;

  // The virtio-device section of a snapshot (snapshot/device_state.h): a kind tag and what the
  // kind keeps. LoadState checks the payload, and that it fits this device (its kind, and what the
  // restore's config gave it), before changing anything. Both take mutex() (do not hold it). Load
  // the device before its transport (MmioTransport::LoadState), which then activates it.
  std::vector<uint8_t> SaveState() const;
  // `slot` (the virtio-mmio slot) names the section in errors.
  vc::Status LoadState(const uint8_t* data, size_t size, uint32_t slot);

  // Gives every buffer the device popped and still holds back to the driver, used with nothing
  // written (a held rx buffer, a tx frame the backend has not taken: dropped, as on a lossy link),
  // so that a snapshot's ring indices account for every buffer. Called with mutex() held, by
  // MmioTransport::SaveState; the default holds nothing.
  virtual void release_held_buffers() {}

  std::mutex& mutex() const { return mutex_; }

 protected:
  // The kind's part of SaveState/LoadState, with mutex() held. The defaults suit a device with no
  // state of its own: an empty payload, and only an empty one accepted.
  virtual std::vector<uint8_t> save_state() const { return {}; }
  // Decodes a virtio-device payload and checks that it is this device's kind.
  vc::Result<snapshot::VirtioDeviceState> decode_own_state(const uint8_t* data, size_t size, uint32_t slot) const;
  virtual vc::Status load_state(const uint8_t* /*data*/, size_t size, uint32_t slot) {
    if (size)
      return vc::Status::Error(vc::Format("snapshot section virtio-device[%u]: virtio device %u keeps no state, "
                                          "but the section has %zu bytes",
                                          slot, device_id(), size));
    return vc::Status();
  }

  // Reads a config structure held as plain bytes; out-of-range bytes read as zero.
  static void read_config_bytes(const void* config, size_t config_size, uint64_t offset,
                                uint8_t* data, uint32_t len) {
    for (uint32_t i = 0; i < len; i++) {
      uint64_t at = offset + i;
      data[i] = at >= offset && at < config_size ? static_cast<const uint8_t*>(config)[at] : 0;
    }
  }

  // Pops the next well-formed request from queue `index`; false when there is none. Malformed
  // chains on the way are returned to the driver unused (and the driver interrupted); a broken
  // ring sets DEVICE_NEEDS_RESET. Call with mutex() held, after activate().
  bool next_chain(size_t index, DescriptorChain* chain);

  // Serves every request on queue `index` with `handle` (which returns the bytes it wrote into
  // the chain's writable part), re-arming notifications until the ring stays empty, then
  // interrupts the driver once if it wants that (unless `signal` is false: then the caller
  // signals, e.g. together with replies on another queue). True when it used any buffer.
  bool drain_queue(size_t index, const std::function<uint32_t(const DescriptorChain&)>& handle,
                   bool signal = true);

  DeviceHost* host_ = nullptr;

 private:
  mutable std::mutex mutex_;
  DescriptorChain chain_;  // reused by drain_queue() so requests do not allocate
};

}  // namespace vmm::virtio
