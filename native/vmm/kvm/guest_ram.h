// Guest RAM: one anonymous host mapping, registered with KVM as guest-physical [0, size).
// The whole of RAM sits below the MMIO gap (layout::kMmioGapStart, 3 GiB), so one GuestMemory view
// covers every address a device may be handed; larger guests are refused with a message rather
// than split around the gap (GuestMemory is a single linear window).
#pragma once

#include <cstdint>
#include <memory>

#include "guest_memory.h"
#include "kvm/kvm.h"

namespace vmm::kvm {

class GuestRam {
 public:
  // Smallest RAM the boot layout fits in (boot structures, 1 MiB hole, a kernel).
  static constexpr uint64_t kMinBytes = 2ull << 20;

  // Maps `bytes` (a multiple of 2 MiB with hugepages, of 4 KiB otherwise). With `hugepages`, the
  // mapping comes from the hugetlb pool (MAP_HUGETLB, 2 MiB pages), and its failure is reported
  // with the pool size to raise, never silently replaced by small pages.
  static Result<std::unique_ptr<GuestRam>> Create(uint64_t bytes, bool hugepages);
  // RAM from a snapshot's memory file: `bytes` of `fd` from `offset`, mapped MAP_PRIVATE so every
  // VM restored from one file shares its page-cache pages and copies a page only when its guest
  // writes it; the file itself is never written. Small pages only (a file mapping is never
  // hugetlb-backed).
  static Result<std::unique_ptr<GuestRam>> MapFile(int fd, uint64_t offset, uint64_t bytes);
  ~GuestRam();
  GuestRam(const GuestRam&) = delete;
  GuestRam& operator=(const GuestRam&) = delete;

  // Registers the mapping as memory slot `slot` at guest-physical 0.
  Status Register(VmFd* vm, uint32_t slot = 0);

  GuestMemory memory() const { return GuestMemory(host_, bytes_); }
  uint64_t bytes() const { return bytes_; }
  uint8_t* host() const { return host_; }
  bool hugepages() const { return hugepages_; }

 private:
  GuestRam(uint8_t* host, uint64_t bytes, bool hugepages) : host_(host), bytes_(bytes), hugepages_(hugepages) {}
  uint8_t* host_;
  uint64_t bytes_;
  bool hugepages_;
};

}  // namespace vmm::kvm
