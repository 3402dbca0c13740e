// The state file's container: header, section table and checksum (format.h), without knowing what
// the sections mean (snapshot.h reads those). ParseStateFile checks every byte's place before it
// hands out a section; StateFileBuilder writes what it accepts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"
#include "snapshot/format.h"

namespace vmm::snapshot {

struct Section {
  Tag tag;
  uint32_t instance;
  uint64_t offset;  // from the start of the file
  uint64_t length;
};

// A checked state file: sections point into the caller's buffer, which must outlive it.
struct StateFile {
  const uint8_t* data = nullptr;
  size_t size = 0;
  uint32_t version = 0;
  std::string vmm_version;        // the vc-vmm that wrote it
  std::vector<Section> sections;  // in file order

  const Section* find(Tag tag, uint32_t instance = 0) const;
  size_t count(Tag tag) const;
  const uint8_t* payload(const Section& s) const { return data + s.offset; }
};

// Checks, in this order, and stops at the first failure with an error naming the field and value:
// length ≥ header; magic; format version (an unknown one is named, with the writer's version
// string); header size; total length against the buffer and kMaxStateFileSize; the CRC-32C; the
// table inside the file; each section's tag (known), instance (0 unless the tag repeats),
// alignment, bounds and order (no overlap); (tag, instance) pairs unique; nothing but zero padding
// (under 8 bytes) between and after the sections, so an accepted file is byte for byte what
// StateFileBuilder writes for its sections (the fuzzer checks that).
vc::Result<StateFile> ParseStateFile(const uint8_t* data, size_t size);

// Sets the header's CRC-32C field from the rest of the file. The builder's last step; tests and
// the fuzzer use it to reach the checks that come after the checksum.
void SealStateFile(uint8_t* data, size_t size);

class StateFileBuilder {
 public:
  void add(Tag tag, uint32_t instance, std::vector<uint8_t> payload);
  // Lays out the table and the payloads and seals the checksum. Fails on a duplicate (tag,
  // instance), a repeated instance of a single tag, a vmm_version that is empty, longer than 31
  // bytes or not printable ASCII, or a file over kMaxStateFileSize.
  vc::Result<std::vector<uint8_t>> finish(const std::string& vmm_version) const;

 private:
  struct Pending {
    Tag tag;
    uint32_t instance;
    std::vector<uint8_t> payload;
  };
  std::vector<Pending> pending_;
};

}  // namespace vmm::snapshot
