#include "arch/x86/pvh.h"

#include <algorithm>
#include <cstring>

#include "arch/x86/layout.h"

namespace vmm::x86 {

namespace {

using ull = unsigned long long;

template <typename T>
T Get(const uint8_t* p, uint64_t off) {
  T v;
  std::memcpy(&v, p + off, sizeof v);
  return v;
}

constexpr uint64_t kEhdrSize = 64;
constexpr uint64_t kPhdrSize = 56;
constexpr uint32_t kPtLoad = 1;
constexpr uint32_t kPtNote = 4;
constexpr uint16_t kEtExec = 2;
constexpr uint16_t kEmX8664 = 62;
constexpr uint16_t kMaxPhdrs = 64;

// [off, off + len) lies inside a buffer of `size` bytes (no wrap-around).
bool InFile(uint64_t off, uint64_t len, uint64_t size) { return off <= size && len <= size - off; }

// Looks for the PVH entry note in one PT_NOTE segment. Returns false on a malformed note.
bool FindPvhNote(const uint8_t* image, uint64_t off, uint64_t len, uint64_t* entry, bool* found, std::string* err) {
  uint64_t pos = 0;
  while (len - pos >= 12) {
    const uint64_t namesz = Get<uint32_t>(image, off + pos), descsz = Get<uint32_t>(image, off + pos + 4);
    const uint32_t type = Get<uint32_t>(image, off + pos + 8);
    const uint64_t name_off = pos + 12, desc_off = name_off + ((namesz + 3) & ~3ull);
    const uint64_t next = desc_off + ((descsz + 3) & ~3ull);
    if (next > len) {
      *err = Format("ELF: note at file offset 0x%llx (namesz %llu, descsz %llu) runs past its PT_NOTE segment",
                    (ull)(off + pos), (ull)namesz, (ull)descsz);
      return false;
    }
    if (type == kXenElfNotePhys32Entry && namesz == 4 && std::memcmp(image + off + name_off, "Xen", 4) == 0) {
      if (descsz == 4) {
        *entry = Get<uint32_t>(image, off + desc_off);
      } else if (descsz == 8) {
        *entry = Get<uint64_t>(image, off + desc_off);
      } else {
        *err = Format("ELF: XEN_ELFNOTE_PHYS32_ENTRY has %llu bytes of data, not 4 or 8", (ull)descsz);
        return false;
      }
      *found = true;
    }
    pos = next;
  }
  return true;
}

}  // namespace

bool LooksLikeElf(const uint8_t* image, size_t size) {
  return image && size >= 4 && std::memcmp(image, "\x7f" "ELF", 4) == 0;
}

Result<ElfKernelInfo> ParseElfVmlinux(const uint8_t* image, size_t size) {
  if (!LooksLikeElf(image, size) || size < kEhdrSize)
    return Status::Error(Format("ELF: %zu bytes do not start with an ELF header", size));
  if (image[4] != 2 || image[5] != 1)
    return Status::Error(Format("ELF: class %u / data %u is not ELF64 little-endian (2/1)", image[4], image[5]));
  const uint16_t type = Get<uint16_t>(image, 16), machine = Get<uint16_t>(image, 18);
  if (type != kEtExec) return Status::Error(Format("ELF: e_type %u is not ET_EXEC (2)", type));
  if (machine != kEmX8664) return Status::Error(Format("ELF: e_machine %u is not x86-64 (62)", machine));
  const uint64_t phoff = Get<uint64_t>(image, 32);
  const uint16_t phentsize = Get<uint16_t>(image, 54), phnum = Get<uint16_t>(image, 56);
  if (phentsize != kPhdrSize) return Status::Error(Format("ELF: e_phentsize %u is not 56", phentsize));
  if (phnum == 0 || phnum > kMaxPhdrs) return Status::Error(Format("ELF: e_phnum %u is not in 1..%u", phnum, kMaxPhdrs));
  if (!InFile(phoff, uint64_t(phnum) * kPhdrSize, size))
    return Status::Error(Format("ELF: program headers at e_phoff 0x%llx (%u entries) run past the %zu-byte file",
                                (ull)phoff, phnum, size));
  ElfKernelInfo info;
  uint64_t entry = 0;
  bool found = false;
  for (uint16_t i = 0; i < phnum; i++) {
    const uint8_t* ph = image + phoff + uint64_t(i) * kPhdrSize;
    const uint32_t p_type = Get<uint32_t>(ph, 0);
    ElfSegment s{Get<uint64_t>(ph, 8), Get<uint64_t>(ph, 24), Get<uint64_t>(ph, 32), Get<uint64_t>(ph, 40)};
    if (p_type != kPtLoad && p_type != kPtNote) continue;
    if (!InFile(s.file_offset, s.filesz, size))
      return Status::Error(Format("ELF: segment %u: p_offset 0x%llx + p_filesz 0x%llx runs past the %zu-byte file", i,
                                  (ull)s.file_offset, (ull)s.filesz, size));
    if (p_type == kPtNote) {
      std::string err;
      if (!FindPvhNote(image, s.file_offset, s.filesz, &entry, &found, &err)) return Status::Error(err);
      continue;
    }
    if (s.memsz == 0) continue;
    if (s.filesz > s.memsz)
      return Status::Error(Format("ELF: segment %u: p_filesz 0x%llx exceeds p_memsz 0x%llx", i, (ull)s.filesz,
                                  (ull)s.memsz));
    if (s.paddr < layout::kHighMemStart || s.paddr > layout::kMmioGapStart ||
        s.memsz > layout::kMmioGapStart - s.paddr)
      return Status::Error(Format("ELF: segment %u: p_paddr 0x%llx + p_memsz 0x%llx is outside 1 MiB..0x%llx", i,
                                  (ull)s.paddr, (ull)s.memsz, (ull)layout::kMmioGapStart));
    info.segments.push_back(s);
  }
  if (info.segments.empty()) return Status::Error("ELF: no PT_LOAD segment");
  std::sort(info.segments.begin(), info.segments.end(),
            [](const ElfSegment& a, const ElfSegment& b) { return a.paddr < b.paddr; });
  for (size_t i = 1; i < info.segments.size(); i++) {
    const ElfSegment &a = info.segments[i - 1], &b = info.segments[i];
    if (a.paddr + a.memsz > b.paddr)
      return Status::Error(Format("ELF: segments at p_paddr 0x%llx (+0x%llx) and 0x%llx overlap", (ull)a.paddr,
                                  (ull)a.memsz, (ull)b.paddr));
  }
  info.kernel_start = info.segments.front().paddr;
  info.kernel_end = info.segments.back().paddr + info.segments.back().memsz;
  if (!found)
    return Status::Error("ELF: no XEN_ELFNOTE_PHYS32_ENTRY note: the kernel has no PVH entry (CONFIG_PVH=y needed)");
  const bool inside = std::any_of(info.segments.begin(), info.segments.end(), [&](const ElfSegment& s) {
    return entry >= s.paddr && entry < s.paddr + s.filesz;
  });
  if (!inside || entry >> 32)
    return Status::Error(Format("ELF: PVH entry 0x%llx is not inside a loaded segment", (ull)entry));
  info.pvh_entry = uint32_t(entry);
  return info;
}

Status LoadElfVmlinux(const GuestMemory& mem, const uint8_t* image, size_t size, const ElfKernelInfo& info,
                      uint64_t ram_end, bool ram_zeroed) {
  const uint64_t limit = std::min(ram_end, mem.size());
  if (info.kernel_end > limit)
    return Status::Error(Format("ELF: the kernel needs guest RAM up to 0x%llx (%llu MiB) but RAM ends at 0x%llx",
                                (ull)info.kernel_end, (ull)((info.kernel_end + (1 << 20) - 1) >> 20), (ull)limit));
  for (const ElfSegment& s : info.segments) {
    if (!InFile(s.file_offset, s.filesz, size) || s.filesz > s.memsz)
      return Status::Error(Format("ELF: segment at file offset 0x%llx does not match the file", (ull)s.file_offset));
    uint8_t* dst = mem.ptr(s.paddr, s.memsz);
    if (!dst) return Status::Error(Format("ELF: segment at 0x%llx (+0x%llx) does not fit", (ull)s.paddr, (ull)s.memsz));
    std::memcpy(dst, image + s.file_offset, s.filesz);
    // Zeroing fresh RAM would only fault in its pages (the test guest's 242 KiB bss: ~0.25 ms here).
    if (!ram_zeroed) std::memset(dst + s.filesz, 0, s.memsz - s.filesz);
  }
  return {};
}

Status WritePvhStartInfo(const GuestMemory& mem, const PvhStartInfoParams& p) {
  using namespace layout;
  if (p.memmap.size() > kPvhMemmapMaxEntries)
    return Status::Error(Format("PVH: %zu memory map entries exceed the %llu that fit", p.memmap.size(),
                                (ull)kPvhMemmapMaxEntries));
  const uint64_t end = kPvhMemmapAddr + p.memmap.size() * hvm::kMemmapEntrySize;
  uint8_t* area = mem.ptr(kPvhStartInfoAddr, end - kPvhStartInfoAddr);
  if (!area)
    return Status::Error(Format("PVH: start info 0x%llx..0x%llx does not fit in guest memory of 0x%llx bytes",
                                (ull)kPvhStartInfoAddr, (ull)end, (ull)mem.size()));
  std::memset(area, 0, end - kPvhStartInfoAddr);
  const uint64_t si = kPvhStartInfoAddr;
  mem.store<uint32_t>(si + hvm::kMagic, kHvmStartMagic);
  mem.store<uint32_t>(si + hvm::kVersion, 1);
  mem.store<uint64_t>(si + hvm::kCmdlinePaddr, p.cmdline_addr);
  mem.store<uint64_t>(si + hvm::kRsdpPaddr, p.rsdp_addr);
  mem.store<uint64_t>(si + hvm::kMemmapPaddr, kPvhMemmapAddr);
  mem.store<uint32_t>(si + hvm::kMemmapEntries, uint32_t(p.memmap.size()));
  if (p.initrd_size) {
    mem.store<uint32_t>(si + hvm::kNrModules, 1);
    mem.store<uint64_t>(si + hvm::kModlistPaddr, kPvhModlistAddr);
    mem.store<uint64_t>(kPvhModlistAddr, p.initrd_addr);
    mem.store<uint64_t>(kPvhModlistAddr + 8, p.initrd_size);
  }
  for (size_t i = 0; i < p.memmap.size(); i++) {
    const uint64_t e = kPvhMemmapAddr + i * hvm::kMemmapEntrySize;
    mem.store<uint64_t>(e, p.memmap[i].addr);
    mem.store<uint64_t>(e + 8, p.memmap[i].size);
    mem.store<uint32_t>(e + 16, p.memmap[i].type);
  }
  return {};
}

}  // namespace vmm::x86
