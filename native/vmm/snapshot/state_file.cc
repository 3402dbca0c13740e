#include "snapshot/state_file.h"

#include <cstring>
#include <set>
#include <utility>

#include "snapshot/byte_io.h"
#include "snapshot/crc32c.h"

namespace vmm::snapshot {
namespace {

uint32_t Le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}
uint64_t Le64(const uint8_t* p) { return Le32(p) | static_cast<uint64_t>(Le32(p + 4)) << 32; }

// The writer's version string as it can be shown in an error: printable bytes up to the first NUL,
// anything else as \xNN.
std::string PrintableVersion(const uint8_t* field) {
  std::string out;
  for (size_t i = 0; i < header::kVmmVersionSize && field[i]; i++) {
    uint8_t c = field[i];
    if (c >= 0x20 && c < 0x7f && c != '\\')
      out += static_cast<char>(c);
    else
      out += vc::Format("\\x%02x", c);
  }
  return out;
}

uint32_t FileCrc(const uint8_t* data, size_t size) {
  static const uint8_t kZero[4] = {0, 0, 0, 0};
  uint32_t crc = Crc32c(0, data, header::kCrc);
  crc = Crc32c(crc, kZero, 4);
  return Crc32c(crc, data + header::kCrc + 4, size - header::kCrc - 4);
}

std::string SectionName(uint32_t tag, uint32_t instance) {
  const char* name = TagName(tag);
  return name ? vc::Format("%s[%u]", name, instance) : vc::Format("tag %u[%u]", tag, instance);
}

bool AllZero(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i]) return false;
  return true;
}

vc::Status Error(std::string message) { return vc::Status::Error("snapshot state file: " + message); }

}  // namespace

const Section* StateFile::find(Tag tag, uint32_t instance) const {
  for (const auto& s : sections)
    if (s.tag == tag && s.instance == instance) return &s;
  return nullptr;
}

size_t StateFile::count(Tag tag) const {
  size_t n = 0;
  for (const auto& s : sections) n += s.tag == tag;
  return n;
}

void SealStateFile(uint8_t* data, size_t size) {
  if (size < kHeaderSize) return;
  uint32_t crc = FileCrc(data, size);
  for (int i = 0; i < 4; i++) data[header::kCrc + i] = static_cast<uint8_t>(crc >> (8 * i));
}

vc::Result<StateFile> ParseStateFile(const uint8_t* data, size_t size) {
  if (size < kHeaderSize)
    return Error(vc::Format("the file is %zu bytes, shorter than the %zu-byte header (truncated?)", size, kHeaderSize));
  if (std::memcmp(data + header::kMagic, kStateMagic, sizeof kStateMagic) != 0) {
    std::string hex;
    for (size_t i = 0; i < sizeof kStateMagic; i++) hex += vc::Format("%02x", data[i]);
    return Error(vc::Format("magic is 0x%s, not \"VCSNAPST\": not a vc-vmm snapshot state file", hex.c_str()));
  }
  uint32_t version = Le32(data + header::kVersion);
  std::string writer = PrintableVersion(data + header::kVmmVersion);
  if (version != kFormatVersion)
    return Error(vc::Format("format version %u (written by \"%s\") is not one this vc-vmm reads (it reads version %u)",
                            version, writer.c_str(), kFormatVersion));
  uint32_t header_size = Le32(data + header::kHeaderSize);
  if (header_size != kHeaderSize)
    return Error(vc::Format("header size is %u, not %zu as format version %u has it", header_size, kHeaderSize,
                            kFormatVersion));
  uint64_t total = Le64(data + header::kTotalLength);
  if (total > kMaxStateFileSize)
    return Error(vc::Format("total length %llu is over the %llu-byte limit", static_cast<unsigned long long>(total),
                            static_cast<unsigned long long>(kMaxStateFileSize)));
  if (total > size)
    return Error(vc::Format("total length is %llu bytes but the file has only %zu (truncated)",
                            static_cast<unsigned long long>(total), size));
  if (total < size)
    return Error(vc::Format("total length is %llu bytes but the file has %zu: %llu bytes of trailing data",
                            static_cast<unsigned long long>(total), size,
                            static_cast<unsigned long long>(size - total)));
  uint32_t stored_crc = Le32(data + header::kCrc), crc = FileCrc(data, size);
  if (stored_crc != crc)
    return Error(vc::Format("checksum mismatch: the header says CRC-32C 0x%08x, the contents give 0x%08x (corrupt file)",
                            stored_crc, crc));

  // The checksum only says the bytes are the ones a writer sealed; the layout is checked as if the
  // writer were hostile.
  uint32_t count = Le32(data + header::kSectionCount);
  if (count > kMaxSections) return Error(vc::Format("section count %u is over the limit of %u", count, kMaxSections));
  uint64_t table_end = kHeaderSize + static_cast<uint64_t>(count) * kTableEntrySize;
  if (table_end > total)
    return Error(vc::Format("the table of %u sections ends at byte %llu, past the end of the file (%llu bytes)", count,
                            static_cast<unsigned long long>(table_end), static_cast<unsigned long long>(total)));
  const uint8_t* v = data + header::kVmmVersion;
  size_t vlen = 0;
  while (vlen < header::kVmmVersionSize && v[vlen]) vlen++;
  bool printable = vlen > 0 && vlen < header::kVmmVersionSize && AllZero(v + vlen, header::kVmmVersionSize - vlen);
  for (size_t i = 0; i < vlen; i++) printable = printable && v[i] >= 0x20 && v[i] < 0x7f;
  if (!printable)
    return Error(vc::Format("vmm version \"%s\" is not 1..%zu printable ASCII bytes padded with NULs", writer.c_str(),
                            header::kVmmVersionSize - 1));

  StateFile file;
  file.data = data;
  file.size = size;
  file.version = version;
  file.vmm_version = writer;
  std::set<std::pair<uint32_t, uint32_t>> seen;
  uint64_t prev_end = table_end;
  for (uint32_t i = 0; i < count; i++) {
    const uint8_t* e = data + kHeaderSize + i * kTableEntrySize;
    uint32_t tag = Le32(e), instance = Le32(e + 4);
    uint64_t offset = Le64(e + 8), length = Le64(e + 16);
    std::string name = SectionName(tag, instance);
    if (!TagName(tag))
      return Error(vc::Format("section %u has tag %u, which format version %u does not define", i, tag, kFormatVersion));
    if (instance != 0 && !TagIsRepeated(static_cast<Tag>(tag)))
      return Error(vc::Format("section %u (%s): instance %u, but there is only one %s section", i, name.c_str(),
                              instance, TagName(tag)));
    if (!seen.insert({tag, instance}).second)
      return Error(vc::Format("section %u (%s) is a duplicate: %s appears twice", i, name.c_str(), name.c_str()));
    if (offset % kSectionAlignment)
      return Error(vc::Format("section %u (%s): offset %llu is not a multiple of %zu", i, name.c_str(),
                              static_cast<unsigned long long>(offset), kSectionAlignment));
    if (offset > total || length > total - offset)
      return Error(vc::Format("section %u (%s): offset %llu + length %llu runs past the end of the file (%llu bytes)",
                              i, name.c_str(), static_cast<unsigned long long>(offset),
                              static_cast<unsigned long long>(length), static_cast<unsigned long long>(total)));
    if (offset < prev_end)
      return Error(vc::Format("section %u (%s): offset %llu overlaps %s (which ends at %llu)", i, name.c_str(),
                              static_cast<unsigned long long>(offset),
                              i ? "the section before it" : "the section table",
                              static_cast<unsigned long long>(prev_end)));
    if (offset - prev_end >= kSectionAlignment || !AllZero(data + prev_end, offset - prev_end))
      return Error(vc::Format("section %u (%s): the %llu bytes before offset %llu are not zero padding (at most 7 "
                              "zero bytes)",
                              i, name.c_str(), static_cast<unsigned long long>(offset - prev_end),
                              static_cast<unsigned long long>(offset)));
    file.sections.push_back({static_cast<Tag>(tag), instance, offset, length});
    prev_end = offset + length;
  }
  // The file ends where the writer's padding of the last section does: no more, no less.
  uint64_t padded_end = (prev_end + kSectionAlignment - 1) / kSectionAlignment * kSectionAlignment;
  if (total != padded_end)
    return Error(vc::Format("the file is %llu bytes, but its sections end at %llu (%llu with padding)",
                            static_cast<unsigned long long>(total), static_cast<unsigned long long>(prev_end),
                            static_cast<unsigned long long>(padded_end)));
  if (!AllZero(data + prev_end, total - prev_end))
    return Error(vc::Format("the %llu bytes after the last section (from offset %llu) are not zero padding",
                            static_cast<unsigned long long>(total - prev_end),
                            static_cast<unsigned long long>(prev_end)));
  return file;
}

void StateFileBuilder::add(Tag tag, uint32_t instance, std::vector<uint8_t> payload) {
  pending_.push_back({tag, instance, std::move(payload)});
}

vc::Result<std::vector<uint8_t>> StateFileBuilder::finish(const std::string& vmm_version) const {
  if (vmm_version.empty() || vmm_version.size() >= header::kVmmVersionSize)
    return Error(vc::Format("vmm version \"%s\" must be 1..%zu bytes", vmm_version.c_str(),
                            header::kVmmVersionSize - 1));
  for (char c : vmm_version)
    if (c < 0x20 || c >= 0x7f) return Error(vc::Format("vmm version \"%s\" is not printable ASCII", vmm_version.c_str()));
  if (pending_.size() > kMaxSections)
    return Error(vc::Format("%zu sections are over the limit of %u", pending_.size(), kMaxSections));
  std::set<std::pair<uint32_t, uint32_t>> seen;
  for (const auto& p : pending_) {
    auto tag = static_cast<uint32_t>(p.tag);
    std::string name = SectionName(tag, p.instance);
    if (!TagName(tag)) return Error(vc::Format("cannot write %s: unknown tag", name.c_str()));
    if (p.instance && !TagIsRepeated(p.tag))
      return Error(vc::Format("cannot write %s: there is only one %s section", name.c_str(), TagName(tag)));
    if (!seen.insert({tag, p.instance}).second) return Error(vc::Format("cannot write %s twice", name.c_str()));
  }

  ByteWriter w;
  w.bytes(kStateMagic, sizeof kStateMagic);
  w.u32(kFormatVersion);
  w.u32(kHeaderSize);
  w.u64(0);  // total length, below
  w.u32(0);  // CRC, sealed last
  w.u32(static_cast<uint32_t>(pending_.size()));
  char version_field[header::kVmmVersionSize] = {};
  std::memcpy(version_field, vmm_version.data(), vmm_version.size());
  w.bytes(version_field, sizeof version_field);
  uint64_t offset = kHeaderSize + pending_.size() * kTableEntrySize;
  for (const auto& p : pending_) {
    w.u32(static_cast<uint32_t>(p.tag));
    w.u32(p.instance);
    w.u64(offset);
    w.u64(p.payload.size());
    offset += p.payload.size();
    offset += (kSectionAlignment - offset % kSectionAlignment) % kSectionAlignment;
    if (offset > kMaxStateFileSize)
      return Error(vc::Format("the sections come to more than the %llu-byte limit",
                              static_cast<unsigned long long>(kMaxStateFileSize)));
  }
  for (const auto& p : pending_) {
    w.bytes(p.payload.data(), p.payload.size());
    w.pad_to(kSectionAlignment);
  }
  std::vector<uint8_t>& out = w.data();
  uint64_t total = out.size();
  for (int i = 0; i < 8; i++) out[header::kTotalLength + i] = static_cast<uint8_t>(total >> (8 * i));
  SealStateFile(out.data(), out.size());
  return std::move(out);
}

}  // namespace vmm::snapshot
