// The memory file, and the kMemory section of the state file that says what it must be.
//
// The memory file is one 4 KiB header page and then guest RAM, byte for byte from guest physical
// address 0, so a restore maps RAM straight from it (MAP_PRIVATE at file offset 4096: pods restored
// from one snapshot share its page-cache pages until they write). Reading GiBs on every restore to
// check it would cost more than the restore, so a restore checks what is cheap and catches the
// likely mistakes (docs/snapshots.md "Checking the memory file"):
//   - the file's size;
//   - its header page: magic, version, RAM size, and the snapshot id, a random 128-bit value the
//     state file holds too, so a memory file from another snapshot (even of the same size) is
//     refused; and the header page's CRC-32C as the state file recorded it;
//   - a CRC-32C over kSamplePages RAM pages spread evenly over the file (256 KiB read).
// The CRC-32C of all of RAM is recorded as well, for `vc-vmm snapshot verify` (not on restore).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/result.h"

namespace vmm::snapshot {

constexpr char kMemoryMagic[8] = {'V', 'C', 'S', 'N', 'A', 'P', 'M', 'M'};
constexpr uint32_t kMemoryFormatVersion = 1;
constexpr uint64_t kMemoryHeaderSize = 4096;  // a page, so RAM starts page-aligned in the file
constexpr uint64_t kPageSize = 4096;
constexpr uint32_t kSamplePages = 64;

struct SnapshotId {
  uint8_t bytes[16] = {};
  bool operator==(const SnapshotId& o) const;
};

// The kMemory section.
struct MemoryFileInfo {
  uint64_t file_size = 0;   // kMemoryHeaderSize + ram_bytes
  uint64_t ram_offset = 0;  // kMemoryHeaderSize
  uint64_t ram_bytes = 0;
  SnapshotId id;
  uint32_t header_crc = 0;    // CRC-32C of the header page
  uint32_t sample_pages = 0;  // how many pages sample_crc covers (kSamplePages, or every page of a smaller RAM)
  uint32_t sample_crc = 0;
  uint32_t ram_crc = 0;  // all of RAM
};

// The header page for a RAM of `ram_bytes` (kMemoryHeaderSize bytes).
std::vector<uint8_t> EncodeMemoryHeader(uint64_t ram_bytes, const SnapshotId& id);

// Which pages the sample covers: `count` page indices, first and last included, evenly spread.
std::vector<uint64_t> SamplePageIndices(uint64_t ram_bytes);
// CRC-32C over the sampled pages of `ram` (ram_bytes long; only those pages are read).
uint32_t SampleCrc(const uint8_t* ram, uint64_t ram_bytes);

// What the writer records, computed from the RAM it writes (one pass, for ram_crc).
MemoryFileInfo DescribeMemory(const uint8_t* ram, uint64_t ram_bytes, const SnapshotId& id);

std::vector<uint8_t> EncodeMemoryFileInfo(const MemoryFileInfo& info);
// Checks the fields against each other: sizes page-aligned, file_size = header + RAM, sample_pages
// what SamplePageIndices gives for this RAM.
vc::Result<MemoryFileInfo> DecodeMemoryFileInfo(const uint8_t* data, size_t size);

// On restore, before mapping: the memory file's size and its header page (the first
// kMemoryHeaderSize bytes; `header_len` is how many were read) against the state file's record.
vc::Status CheckMemoryFileHeader(const MemoryFileInfo& expected, uint64_t file_size, const uint8_t* header,
                                 size_t header_len);
// After mapping: the sampled pages of the mapped RAM.
vc::Status CheckMemorySample(const MemoryFileInfo& expected, const uint8_t* ram);
// `vc-vmm snapshot verify`: the CRC-32C of all of RAM (Crc32c chained over the file's RAM bytes)
// against the state file's ramCrc.
vc::Status CheckRamCrc(const MemoryFileInfo& expected, uint32_t ram_crc);

}  // namespace vmm::snapshot
