#include "arch/x86/boot_params.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "arch/x86/layout.h"

namespace vmm::x86 {

uint64_t LowRamEnd(uint64_t ram_bytes) { return std::min(ram_bytes, layout::kMmioGapStart); }

std::vector<E820Entry> GuestE820(uint64_t ram_bytes) {
  using namespace layout;
  std::vector<E820Entry> map;
  map.push_back({0, kEbdaStart, kE820Ram});
  map.push_back({kEbdaStart, kHighMemStart - kEbdaStart, kE820Reserved});
  const uint64_t low_end = LowRamEnd(ram_bytes);
  if (low_end > kHighMemStart) map.push_back({kHighMemStart, low_end - kHighMemStart, kE820Ram});
  if (ram_bytes > kMmioGapStart) map.push_back({kHighRamStart, ram_bytes - kMmioGapStart, kE820Ram});
  return map;
}

Status WriteZeroPage(const GuestMemory& mem, uint64_t addr, const ZeroPageParams& p) {
  if (!mem.contains(addr, zp::kSize))
    return Status::Error(Format("zero page: 0x%llx + 0x1000 does not fit in guest memory of 0x%llx bytes",
                                (unsigned long long)addr, (unsigned long long)mem.size()));
  if (p.setup_header_len > zp::kSize - hdr::kSetupSects || (p.setup_header_len && !p.setup_header))
    return Status::Error(Format("zero page: setup header length 0x%llx does not fit in the zero page",
                                (unsigned long long)p.setup_header_len));
  if (p.e820.size() > zp::kE820MaxEntries)
    return Status::Error(Format("zero page: %zu e820 entries exceed the table's %u", p.e820.size(), zp::kE820MaxEntries));
  if (p.cmdline_addr >> 32 || p.initrd_addr >> 32 || p.initrd_size >> 32)
    return Status::Error(Format("zero page: cmdline 0x%llx or initrd 0x%llx+0x%llx above 4 GiB is not supported",
                                (unsigned long long)p.cmdline_addr, (unsigned long long)p.initrd_addr,
                                (unsigned long long)p.initrd_size));
  uint8_t* page = mem.ptr(addr, zp::kSize);
  std::memset(page, 0, zp::kSize);
  if (p.setup_header_len) std::memcpy(page + hdr::kSetupSects, p.setup_header, p.setup_header_len);

  auto put = [&](uint64_t off, auto v) { mem.store(addr + off, v); };
  put(hdr::kTypeOfLoader, uint8_t{0xff});
  uint8_t loadflags = page[hdr::kLoadflags];
  put(hdr::kLoadflags, uint8_t(loadflags | hdr::kLoadedHigh));
  put(hdr::kCmdLinePtr, uint32_t(p.cmdline_addr));
  put(zp::kExtCmdLinePtr, uint32_t(0));
  put(hdr::kRamdiskImage, uint32_t(p.initrd_addr));
  put(hdr::kRamdiskSize, uint32_t(p.initrd_size));
  put(zp::kExtRamdiskImage, uint32_t(0));
  put(zp::kExtRamdiskSize, uint32_t(0));
  put(hdr::kSetupData, uint64_t{0});
  put(zp::kAcpiRsdpAddr, uint64_t(p.rsdp_addr));
  put(zp::kE820Entries, uint8_t(p.e820.size()));
  for (size_t i = 0; i < p.e820.size(); i++) {
    const uint64_t e = addr + zp::kE820Table + i * zp::kE820EntrySize;
    mem.store<uint64_t>(e, p.e820[i].addr);
    mem.store<uint64_t>(e + 8, p.e820[i].size);
    mem.store<uint32_t>(e + 16, p.e820[i].type);
  }
  return {};
}

Status WriteCmdline(const GuestMemory& mem, uint64_t addr, const std::string& cmdline, uint64_t max_len) {
  if (std::memchr(cmdline.data(), 0, cmdline.size()))
    return Status::Error("command line: contains a NUL byte");
  if (cmdline.size() > max_len)
    return Status::Error(Format("command line: %zu bytes exceed the limit of %llu", cmdline.size(),
                                (unsigned long long)max_len));
  if (!mem.write(addr, cmdline.c_str(), cmdline.size() + 1))
    return Status::Error(Format("command line: %zu bytes at 0x%llx do not fit in guest memory of 0x%llx bytes",
                                cmdline.size() + 1, (unsigned long long)addr, (unsigned long long)mem.size()));
  return {};
}

}  // namespace vmm::x86
