#include "devices/virtio/rng.h"

#include <sys/random.h>

#include <cerrno>
#include <vector>

#include "devices/virtio/chain_io.h"

namespace vmm::virtio {

std::vector<uint8_t> RngDevice::save_state() const {
  snapshot::VirtioDeviceState s;
  s.kind = snapshot::kVirtioRng;
  return snapshot::EncodeVirtioDeviceState(s);
}

vc::Status RngDevice::load_state(const uint8_t* data, size_t size, uint32_t slot) {
  return decode_own_state(data, size, slot).status();
}

void RngDevice::queue_notify(size_t index) {
  if (index != 0) return;
  std::vector<iovec> iov;
  drain_queue(0, [&](const DescriptorChain& chain) -> uint32_t {
    iov.clear();
    ChainWriter writer(host_->memory(), chain);
    writer.iovecs(std::min(chain.writable_bytes, kMaxBytesPerRequest), &iov);
    uint32_t filled = 0;
    for (const iovec& v : iov) {
      size_t done = 0;
      while (done < v.iov_len) {
        ssize_t n = getrandom(static_cast<uint8_t*>(v.iov_base) + done, v.iov_len - done, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return filled;
        done += static_cast<size_t>(n);
        filled += static_cast<uint32_t>(n);
      }
    }
    return filled;
  });
}

}  // namespace vmm::virtio
