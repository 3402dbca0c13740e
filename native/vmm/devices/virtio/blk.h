// virtio-blk (§5.2) over a BlockBackend: IN, OUT, FLUSH and GET_ID, one request queue.
//
// A BlkDevice is a *slot*: it exists from boot (so the guest has bound its driver before any disk
// is attached) and may be empty (capacity 0). attach() gives it a backing store and a serial and,
// if the driver is running, raises a config-change interrupt; Linux then re-reads the capacity and
// the guest finds the disk by its serial (/sys/block/vdX/serial, answered by GET_ID).
// Read-only is a property of the slot (VIRTIO_BLK_F_RO is negotiated once, at boot); writes are
// also refused with IOERR whenever the attached backend itself is read-only.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <string>

#include "devices/virtio/device.h"

namespace vmm::virtio {

// What the device needs of its backing store (backends/ implement it): bytes addressed from 0.
class BlockBackend {
 public:
  virtual ~BlockBackend() = default;
  virtual uint64_t size() const = 0;  // bytes
  virtual bool read_only() const = 0;
  // Transfer exactly the bytes the iovecs cover, at byte `offset`; false on an error or a short
  // transfer (the device then reports VIRTIO_BLK_S_IOERR). Any iovec count is accepted.
  virtual bool read(uint64_t offset, const iovec* iov, size_t iovcnt) = 0;
  virtual bool write(uint64_t offset, const iovec* iov, size_t iovcnt) = 0;
  virtual bool flush() = 0;
};

constexpr uint32_t kBlkTIn = 0;
constexpr uint32_t kBlkTOut = 1;
constexpr uint32_t kBlkTFlush = 4;
constexpr uint32_t kBlkTGetId = 8;
constexpr uint8_t kBlkSOk = 0;
constexpr uint8_t kBlkSIoErr = 1;
constexpr uint8_t kBlkSUnsupp = 2;
constexpr uint64_t kBlkFSegMax = 1ull << 2;
constexpr uint64_t kBlkFRo = 1ull << 5;
constexpr uint64_t kBlkFBlkSize = 1ull << 6;
constexpr uint64_t kBlkFFlush = 1ull << 9;
constexpr uint32_t kBlkSectorSize = 512;
constexpr size_t kBlkIdBytes = 20;

class BlkDevice final : public Device {
 public:
  explicit BlkDevice(bool read_only_slot, uint16_t queue_size = 256);

  // Called from the control thread. Fails (with *error) when the serial is longer than 20 bytes
  // or the slot is occupied.
  bool attach(std::unique_ptr<BlockBackend> backend, const std::string& serial,
              std::string* error);
  void detach();
  bool attached();
  uint64_t capacity_sectors();

  uint32_t device_id() const override { return kIdBlock; }
  uint64_t device_features() const override;
  size_t num_queues() const override { return 1; }
  uint16_t max_queue_size(size_t) const override { return queue_size_; }
  void read_config(uint64_t offset, uint8_t* data, uint32_t len) override;
  void reset() override {}
  void queue_notify(size_t index) override;

 protected:
  // Capacity, read-only and serial: what the guest knows of the disk. The restore attaches the
  // disk itself (its host path is the restore's); loading checks that it is the one the guest
  // knows (same size and serial) and that the slot is read-only exactly when it was.
  std::vector<uint8_t> save_state() const override;
  vc::Status load_state(const uint8_t* data, size_t size, uint32_t slot) override;

 private:
  // Handles one request; returns the bytes written into guest memory (data and status).
  uint32_t handle(const DescriptorChain& chain);
  uint8_t transfer(uint32_t type, uint64_t sector, const DescriptorChain& chain,
                   uint32_t data_start, uint32_t data_len);

  bool read_only_slot_;
  uint16_t queue_size_;
  std::unique_ptr<BlockBackend> backend_;
  std::string serial_;
  uint64_t capacity_ = 0;  // sectors
};

}  // namespace vmm::virtio
