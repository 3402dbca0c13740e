#include "kvm/guest_ram.h"

#include <sys/mman.h>

#include "arch/x86/layout.h"

namespace vmm::kvm {

using vc::Format;
using ull = unsigned long long;

Result<std::unique_ptr<GuestRam>> GuestRam::Create(uint64_t bytes, bool hugepages) {
  const uint64_t page = hugepages ? (2ull << 20) : x86::layout::kPageSize;
  if (bytes < kMinBytes || bytes % page != 0 || bytes > x86::layout::kMmioGapStart)
    return Status::Error(Format("memory: %llu bytes is not a multiple of %llu KiB in %llu MiB..%llu MiB",
                                (ull)bytes, (ull)page >> 10, (ull)kMinBytes >> 20,
                                (ull)x86::layout::kMmioGapStart >> 20));
  // Small pages: MAP_NORESERVE, since guest RAM is touched lazily and a VM that never uses most
  // of it should not count against overcommit. Hugepages: never NORESERVE — the reservation at
  // mmap time is what turns a short hugetlb pool into an error here instead of a SIGBUS later,
  // when the loader or the guest first touches a page.
  int flags = MAP_PRIVATE | MAP_ANONYMOUS;
  flags |= hugepages ? MAP_HUGETLB | (21 << MAP_HUGE_SHIFT) : MAP_NORESERVE;
  void* host = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, flags, -1, 0);
  if (host == MAP_FAILED) {
    Status s = ErrnoStatus(Format("memory: mmap of %llu MiB%s", (ull)bytes >> 20, hugepages ? " from 2 MiB hugepages" : "").c_str());
    if (hugepages)
      return Status::Error(s.error() + Format(" (the hugetlb pool needs %llu free 2 MiB pages: "
                                              "see /proc/sys/vm/nr_hugepages)", (ull)bytes >> 21));
    return s;
  }
  // Guest RAM must not be copied into children (the detached VMM forks before it maps RAM, but an
  // embedding process may fork at any time).
  ::madvise(host, bytes, MADV_DONTFORK);
  return std::unique_ptr<GuestRam>(new GuestRam(static_cast<uint8_t*>(host), bytes, hugepages));
}

GuestRam::~GuestRam() { ::munmap(host_, bytes_); }

Status GuestRam::Register(VmFd* vm, uint32_t slot) { return vm->SetUserMemoryRegion(slot, 0, bytes_, host_); }

}  // namespace vmm::kvm
