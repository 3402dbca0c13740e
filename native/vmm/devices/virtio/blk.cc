#include "devices/virtio/blk.h"

#include <vector>

#include "devices/log.h"
#include "devices/virtio/chain_io.h"

namespace vmm::virtio {

namespace {

#pragma pack(push, 1)
struct BlkRequestHeader {
  uint32_t type;
  uint32_t reserved;
  uint64_t sector;
};
// The prefix of struct virtio_blk_config that our features make meaningful.
struct BlkConfig {
  uint64_t capacity;
  uint32_t size_max;
  uint32_t seg_max;
  uint16_t cylinders;
  uint8_t heads;
  uint8_t sectors;
  uint32_t blk_size;
};
#pragma pack(pop)
static_assert(sizeof(BlkRequestHeader) == 16, "virtio_blk_req header is 16 bytes");
static_assert(sizeof(BlkConfig) == 24, "blk_size ends at offset 24");

}  // namespace

BlkDevice::BlkDevice(bool read_only_slot, uint16_t queue_size)
    : read_only_slot_(read_only_slot), queue_size_(queue_size) {}

bool BlkDevice::attach(std::unique_ptr<BlockBackend> backend, const std::string& serial,
                       std::string* error) {
  std::lock_guard<std::mutex> lock(mutex());
  if (backend_) {
    *error = "block slot already holds a disk";
    return false;
  }
  if (serial.size() > kBlkIdBytes) {
    *error = "disk serial \"" + serial + "\" is longer than " + std::to_string(kBlkIdBytes) + " bytes";
    return false;
  }
  capacity_ = backend->size() / kBlkSectorSize;
  backend_ = std::move(backend);
  serial_ = serial;
  if (host_) host_->signal_config_change();
  return true;
}

void BlkDevice::detach() {
  std::lock_guard<std::mutex> lock(mutex());
  backend_.reset();
  serial_.clear();
  capacity_ = 0;
  if (host_) host_->signal_config_change();
}

bool BlkDevice::attached() {
  std::lock_guard<std::mutex> lock(mutex());
  return backend_ != nullptr;
}

uint64_t BlkDevice::capacity_sectors() {
  std::lock_guard<std::mutex> lock(mutex());
  return capacity_;
}

std::vector<uint8_t> BlkDevice::save_state() const {
  snapshot::VirtioDeviceState s;
  s.kind = snapshot::kVirtioBlk;
  s.blk_capacity = capacity_;
  s.blk_read_only = read_only_slot_;
  s.blk_serial = serial_;
  return snapshot::EncodeVirtioDeviceState(s);
}

vc::Status BlkDevice::load_state(const uint8_t* data, size_t size, uint32_t slot) {
  auto decoded = decode_own_state(data, size, slot);
  if (!decoded.ok()) return decoded.status();
  const snapshot::VirtioDeviceState& s = decoded.value();
  std::string what = vc::Format("snapshot section virtio-device[%u]: ", slot);
  if (s.blk_read_only != read_only_slot_)
    return vc::Status::Error(what + vc::Format("the guest knows the slot as %s, the restore's config makes it %s",
                                               s.blk_read_only ? "read-only" : "writable",
                                               read_only_slot_ ? "read-only" : "writable"));
  if (s.blk_capacity != capacity_)
    return vc::Status::Error(what + vc::Format("blk capacity %llu sectors, but the disk the restore attached has %llu",
                                               static_cast<unsigned long long>(s.blk_capacity),
                                               static_cast<unsigned long long>(capacity_)));
  if (s.blk_serial != serial_)
    return vc::Status::Error(what + "blk serial \"" + s.blk_serial + "\", but the disk the restore attached has \"" +
                             serial_ + "\"");
  return vc::Status();
}

uint64_t BlkDevice::device_features() const {
  return kFVersion1 | kFRingEventIdx | kFRingIndirectDesc | kBlkFSegMax | kBlkFBlkSize |
         kBlkFFlush | (read_only_slot_ ? kBlkFRo : 0);
}

void BlkDevice::read_config(uint64_t offset, uint8_t* data, uint32_t len) {
  BlkConfig config{};
  config.capacity = capacity_;
  // A request is a header and a status besides its data segments, and must fit in the ring.
  config.seg_max = queue_size_ > 2 ? queue_size_ - 2u : 1u;
  config.blk_size = kBlkSectorSize;
  read_config_bytes(&config, sizeof(config), offset, data, len);
}

void BlkDevice::queue_notify(size_t index) {
  if (index != 0) return;
  drain_queue(0, [this](const DescriptorChain& chain) { return handle(chain); });
}

uint32_t BlkDevice::handle(const DescriptorChain& chain) {
  const GuestMemory& mem = host_->memory();
  // The status byte is the last device-writable byte; without one the request cannot even fail.
  if (chain.writable_bytes == 0) {
    device_warn("virtio-blk: request %u has no status byte", chain.head);
    return 0;
  }
  ChainReader reader(mem, chain);
  BlkRequestHeader header;
  uint8_t status;
  uint32_t data_len = 0;
  if (!reader.read(&header, sizeof(header))) {
    status = kBlkSIoErr;
  } else {
    switch (header.type) {
      case kBlkTIn:
      case kBlkTGetId:
        data_len = chain.writable_bytes - 1;
        status = transfer(header.type, header.sector, chain, 0, data_len);
        break;
      case kBlkTOut:
        status = transfer(header.type, header.sector, chain, sizeof(header), reader.remaining());
        break;
      case kBlkTFlush:
        status = !backend_ ? kBlkSIoErr : backend_->flush() ? kBlkSOk : kBlkSIoErr;
        break;
      default:
        status = kBlkSUnsupp;
        break;
    }
  }
  ChainWriter writer(mem, chain);
  writer.skip(chain.writable_bytes - 1);
  writer.write(&status, 1);
  // Data reads fill data_len bytes before the status (GET_ID counts its whole buffer).
  return data_len + 1;
}

uint8_t BlkDevice::transfer(uint32_t type, uint64_t sector, const DescriptorChain& chain,
                            uint32_t data_start, uint32_t data_len) {
  const GuestMemory& mem = host_->memory();
  if (type == kBlkTGetId) {
    uint8_t id[kBlkIdBytes] = {};
    for (size_t i = 0; i < serial_.size(); i++) id[i] = static_cast<uint8_t>(serial_[i]);
    ChainWriter writer(mem, chain);
    // A serial shorter than 20 bytes is NUL-terminated by the zero padding.
    writer.write(id, std::min<uint32_t>(data_len, kBlkIdBytes));
    return kBlkSOk;
  }
  if (!backend_) return kBlkSIoErr;
  if (data_len % kBlkSectorSize) return kBlkSIoErr;
  uint64_t sectors = data_len / kBlkSectorSize;
  if (sector > capacity_ || sectors > capacity_ - sector) {
    device_warn("virtio-blk: request for sectors %llu+%llu beyond capacity %llu",
                static_cast<unsigned long long>(sector), static_cast<unsigned long long>(sectors),
                static_cast<unsigned long long>(capacity_));
    return kBlkSIoErr;
  }
  std::vector<iovec> iov;
  uint64_t offset = sector * kBlkSectorSize;
  if (type == kBlkTIn) {
    ChainWriter writer(mem, chain);
    if (writer.iovecs(data_len, &iov) != data_len) return kBlkSIoErr;
    return backend_->read(offset, iov.data(), iov.size()) ? kBlkSOk : kBlkSIoErr;
  }
  if (read_only_slot_ || backend_->read_only()) return kBlkSIoErr;
  ChainReader reader(mem, chain);
  reader.skip(data_start);
  if (reader.iovecs(data_len, &iov) != data_len) return kBlkSIoErr;
  return backend_->write(offset, iov.data(), iov.size()) ? kBlkSOk : kBlkSIoErr;
}

}  // namespace vmm::virtio
