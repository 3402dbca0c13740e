// What the bus dispatches port-I/O and MMIO exits to. The bus (native/vmm/kvm) owns the address
// map; a device sees only offsets from the start of its own range, so the same model works at any
// address and in unit tests without a bus.
#pragma once

#include <cstdint>

namespace vmm {

class BusDevice {
 public:
  virtual ~BusDevice() = default;

  // A guest load of `len` bytes (1, 2, 4 or 8) at `offset` inside the device's range. The device
  // fills all of `data`; registers that do not exist read as zero.
  virtual void read(uint64_t offset, uint8_t* data, uint32_t len) = 0;

  // A guest store. Writes to registers that do not exist, or with a width the register does not
  // support, are ignored: the guest is untrusted and a bad access must never stop the VMM.
  virtual void write(uint64_t offset, const uint8_t* data, uint32_t len) = 0;
};

}  // namespace vmm
