// CRC-32C (Castagnoli, the polynomial of iSCSI, ext4 metadata and SSE4.2's crc32 instruction): the
// snapshot files' checksum. docs/snapshots.md says why this and not SHA-256.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vmm::snapshot {

// Extends `crc` (0 for a fresh checksum) over `len` bytes; Crc32c(Crc32c(0, a), b) == Crc32c(0, ab).
uint32_t Crc32c(uint32_t crc, const void* data, size_t len);
// The same without the CPU's crc32 instruction (what Crc32c falls back to; the tests compare them).
uint32_t Crc32cPortable(uint32_t crc, const void* data, size_t len);

}  // namespace vmm::snapshot
