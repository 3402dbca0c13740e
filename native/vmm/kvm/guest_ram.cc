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

Result<std::unique_ptr<GuestRam>> GuestRam::MapFile(int fd, uint64_t offset, uint64_t bytes) {
  const uint64_t page = x86::layout::kPageSize;
  if (bytes < kMinBytes || bytes % page != 0 || bytes > x86::layout::kMmioGapStart || offset % page != 0)
    return Status::Error(Format("memory file: %llu bytes at offset %llu is not whole pages in %llu MiB..%llu MiB",
                                (ull)bytes, (ull)offset, (ull)kMinBytes >> 20, (ull)x86::layout::kMmioGapStart >> 20));
  // MAP_NORESERVE: only the pages the guest writes are ever copied, so overcommit should not
  // count the whole of RAM against this VM up front.
  void* host = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, off_t(offset));
  if (host == MAP_FAILED) return ErrnoStatus(Format("memory file: mmap of %llu MiB", (ull)bytes >> 20).c_str());
  ::madvise(host, bytes, MADV_DONTFORK);
  return std::unique_ptr<GuestRam>(new GuestRam(static_cast<uint8_t*>(host), bytes, false));
}

GuestRam::~GuestRam() { ::munmap(host_, bytes_); }

Status GuestRam::Register(VmFd* vm, uint32_t slot) { return vm->SetUserMemoryRegion(slot, 0, bytes_, host_); }

}  // namespace vmm::kvm
