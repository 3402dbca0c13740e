#include "snapshot/memory_file.h"

#include <cstring>

#include "snapshot/byte_io.h"
#include "snapshot/crc32c.h"

namespace vmm::snapshot {
namespace {

using ull = unsigned long long;

vc::Status Error(std::string message) { return vc::Status::Error("snapshot memory file: " + message); }

uint64_t Pages(uint64_t ram_bytes) { return ram_bytes / kPageSize; }

uint32_t ExpectedSamplePages(uint64_t ram_bytes) {
  uint64_t pages = Pages(ram_bytes);
  return static_cast<uint32_t>(pages < kSamplePages ? pages : kSamplePages);
}

std::string Hex(const SnapshotId& id) {
  std::string s;
  for (uint8_t b : id.bytes) s += vc::Format("%02x", b);
  return s;
}

}  // namespace

bool SnapshotId::operator==(const SnapshotId& o) const { return std::memcmp(bytes, o.bytes, sizeof bytes) == 0; }

// Layout: magic, version u32, header size u32, ram_bytes u64, snapshot id (16 bytes), zeros.
std::vector<uint8_t> EncodeMemoryHeader(uint64_t ram_bytes, const SnapshotId& id) {
  ByteWriter w;
  w.bytes(kMemoryMagic, sizeof kMemoryMagic);
  w.u32(kMemoryFormatVersion);
  w.u32(static_cast<uint32_t>(kMemoryHeaderSize));
  w.u64(ram_bytes);
  w.bytes(id.bytes, sizeof id.bytes);
  w.data().resize(kMemoryHeaderSize, 0);
  return std::move(w.data());
}

std::vector<uint64_t> SamplePageIndices(uint64_t ram_bytes) {
  uint64_t pages = Pages(ram_bytes);
  uint32_t n = ExpectedSamplePages(ram_bytes);
  std::vector<uint64_t> out;
  for (uint32_t i = 0; i < n; i++) out.push_back(n == 1 ? 0 : i * (pages - 1) / (n - 1));
  return out;
}

uint32_t SampleCrc(const uint8_t* ram, uint64_t ram_bytes) {
  uint32_t crc = 0;
  for (uint64_t page : SamplePageIndices(ram_bytes)) crc = Crc32c(crc, ram + page * kPageSize, kPageSize);
  return crc;
}

MemoryFileInfo DescribeMemory(const uint8_t* ram, uint64_t ram_bytes, const SnapshotId& id) {
  MemoryFileInfo info;
  info.file_size = kMemoryHeaderSize + ram_bytes;
  info.ram_offset = kMemoryHeaderSize;
  info.ram_bytes = ram_bytes;
  info.id = id;
  std::vector<uint8_t> header = EncodeMemoryHeader(ram_bytes, id);
  info.header_crc = Crc32c(0, header.data(), header.size());
  info.sample_pages = ExpectedSamplePages(ram_bytes);
  info.sample_crc = SampleCrc(ram, ram_bytes);
  info.ram_crc = Crc32c(0, ram, ram_bytes);
  return info;
}

// Layout: file_size, ram_offset, ram_bytes (u64 each), id (16 bytes), header_crc, sample_pages,
// sample_crc, ram_crc (u32 each).
std::vector<uint8_t> EncodeMemoryFileInfo(const MemoryFileInfo& info) {
  ByteWriter w;
  w.u64(info.file_size);
  w.u64(info.ram_offset);
  w.u64(info.ram_bytes);
  w.bytes(info.id.bytes, sizeof info.id.bytes);
  w.u32(info.header_crc);
  w.u32(info.sample_pages);
  w.u32(info.sample_crc);
  w.u32(info.ram_crc);
  return std::move(w.data());
}

vc::Result<MemoryFileInfo> DecodeMemoryFileInfo(const uint8_t* data, size_t size) {
  ByteReader r(data, size, "snapshot section memory");
  MemoryFileInfo m;
  m.file_size = r.u64("fileSize");
  m.ram_offset = r.u64("ramOffset");
  m.ram_bytes = r.u64("ramBytes");
  r.bytes("id", m.id.bytes, sizeof m.id.bytes);
  m.header_crc = r.u32("headerCrc");
  m.sample_pages = r.u32("samplePages");
  m.sample_crc = r.u32("sampleCrc");
  m.ram_crc = r.u32("ramCrc");
  r.expect_end();
  if (!r.ok()) return r.status();
  const char* w = "snapshot section memory";
  if (m.ram_offset != kMemoryHeaderSize)
    return vc::Status::Error(vc::Format("%s: ramOffset must be %llu, not %llu", w, static_cast<ull>(kMemoryHeaderSize),
                                        static_cast<ull>(m.ram_offset)));
  if (m.ram_bytes == 0 || m.ram_bytes % kPageSize)
    return vc::Status::Error(vc::Format("%s: ramBytes %llu is not a whole, non-zero number of %llu-byte pages", w,
                                        static_cast<ull>(m.ram_bytes), static_cast<ull>(kPageSize)));
  if (m.file_size != m.ram_offset + m.ram_bytes)
    return vc::Status::Error(vc::Format("%s: fileSize %llu is not ramOffset + ramBytes (%llu)", w,
                                        static_cast<ull>(m.file_size), static_cast<ull>(m.ram_offset + m.ram_bytes)));
  if (m.sample_pages != ExpectedSamplePages(m.ram_bytes))
    return vc::Status::Error(vc::Format("%s: samplePages is %u, not %u as this format samples %llu bytes of RAM", w,
                                        m.sample_pages, ExpectedSamplePages(m.ram_bytes),
                                        static_cast<ull>(m.ram_bytes)));
  return m;
}

vc::Status CheckMemoryFileHeader(const MemoryFileInfo& expected, uint64_t file_size, const uint8_t* header,
                                 size_t header_len) {
  if (file_size != expected.file_size)
    return Error(vc::Format("the file is %llu bytes, the snapshot says %llu (%s)", static_cast<ull>(file_size),
                            static_cast<ull>(expected.file_size),
                            file_size < expected.file_size ? "truncated?" : "not this snapshot's memory file?"));
  if (header_len < kMemoryHeaderSize)
    return Error(vc::Format("only %zu bytes of the %llu-byte header page", header_len,
                            static_cast<ull>(kMemoryHeaderSize)));
  ByteReader r(header, header_len, "snapshot memory file header");
  char magic[8];
  r.bytes("magic", magic, sizeof magic);
  uint32_t version = r.u32("version");
  uint32_t header_size = r.u32("headerSize");
  uint64_t ram_bytes = r.u64("ramBytes");
  SnapshotId id;
  r.bytes("id", id.bytes, sizeof id.bytes);
  if (!r.ok()) return r.status();
  if (std::memcmp(magic, kMemoryMagic, sizeof magic) != 0)
    return Error("magic is not \"VCSNAPMM\": not a vc-vmm snapshot memory file");
  if (version != kMemoryFormatVersion)
    return Error(vc::Format("format version %u is not one this vc-vmm reads (it reads version %u)", version,
                            kMemoryFormatVersion));
  if (header_size != kMemoryHeaderSize)
    return Error(vc::Format("header size is %u, not %llu", header_size, static_cast<ull>(kMemoryHeaderSize)));
  if (ram_bytes != expected.ram_bytes)
    return Error(vc::Format("ramBytes is %llu, the state file says %llu", static_cast<ull>(ram_bytes),
                            static_cast<ull>(expected.ram_bytes)));
  if (!(id == expected.id))
    return Error(vc::Format("snapshot id %s is not the state file's %s: the two files are from different snapshots",
                            Hex(id).c_str(), Hex(expected.id).c_str()));
  uint32_t crc = Crc32c(0, header, kMemoryHeaderSize);
  if (crc != expected.header_crc)
    return Error(vc::Format("header page CRC-32C is 0x%08x, the state file says 0x%08x (corrupt header)", crc,
                            expected.header_crc));
  return {};
}

vc::Status CheckMemorySample(const MemoryFileInfo& expected, const uint8_t* ram) {
  uint32_t crc = SampleCrc(ram, expected.ram_bytes);
  if (crc != expected.sample_crc)
    return Error(vc::Format("the CRC-32C of %u sampled RAM pages is 0x%08x, the state file says 0x%08x (the memory "
                            "file changed since the snapshot was taken)",
                            expected.sample_pages, crc, expected.sample_crc));
  return {};
}

vc::Status CheckRamCrc(const MemoryFileInfo& expected, uint32_t ram_crc) {
  if (ram_crc != expected.ram_crc)
    return Error(vc::Format("the CRC-32C of all %llu bytes of RAM is 0x%08x, the state file says 0x%08x (the memory "
                            "file changed since the snapshot was taken, or is corrupt)",
                            static_cast<ull>(expected.ram_bytes), ram_crc, expected.ram_crc));
  return {};
}

}  // namespace vmm::snapshot
