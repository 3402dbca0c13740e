// libFuzzer entry point: the snapshot state file reader (native/vmm/snapshot), which a restore runs
// on a file it did not write, and the decoders of the sections it understands.
//
// Input: one mode byte, then the bytes under test. Mode bits: 1 sets the header's total length to
// the input's, 2 reseals the CRC-32C (without these two nearly every input stops at the length or
// checksum check, and the table and section checks behind them go unfuzzed); 4 instead hands the
// bytes straight to the vm, memory, vcpu, irqchip, pit and clock section decoders and the memory file header check (8:
// with a record made to agree with the header page).
//
// Whatever the reader accepts must be exactly what the builder writes for the same sections (the
// reader leaves no byte unaccounted for), and decoded sections must encode back to their bytes.
#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz/fuzz_input.h"
#include "snapshot/crc32c.h"
#include "snapshot/snapshot.h"

using namespace vmm::snapshot;
using vmm_fuzz::require;

namespace {

void FuzzDecoders(const uint8_t* data, size_t size, bool record_from_page) {
  auto vm = DecodeVmInfo(data, size);
  if (vm.ok()) require(EncodeVmInfo(vm.value()) == std::vector<uint8_t>(data, data + size));
  auto mem = DecodeMemoryFileInfo(data, size);
  if (mem.ok()) require(EncodeMemoryFileInfo(mem.value()) == std::vector<uint8_t>(data, data + size));
  // vcpu records may come in any order, so the check is that a decoded state encodes to bytes
  // that decode to the same state.
  auto vcpu = DecodeVcpuState(data, size, 0);
  if (vcpu.ok()) {
    std::vector<uint8_t> once = EncodeVcpuState(vcpu.value());
    auto again = DecodeVcpuState(once.data(), once.size(), 0);
    require(again.ok() && EncodeVcpuState(again.value()) == once);
  }

  // irqchip records come in any order too; pit and clock are one KVM structure each.
  auto irq = DecodeIrqchipState(data, size);
  if (irq.ok()) {
    std::vector<uint8_t> once = EncodeIrqchipState(irq.value());
    auto again = DecodeIrqchipState(once.data(), once.size());
    require(again.ok() && EncodeIrqchipState(again.value()) == once);
  }
  auto pit = DecodePitState(data, size);
  if (pit.ok()) require(EncodePitState(pit.value()) == std::vector<uint8_t>(data, data + size));
  auto clock = DecodeClockState(data, size);
  if (clock.ok()) require(EncodeClockState(clock.value()) == std::vector<uint8_t>(data, data + size));

  // The memory file's header page against a record: the decoded one, or (mode 8) one that agrees
  // with the page's own fields, so the checks after magic and version are reached too.
  std::vector<uint8_t> page(kMemoryHeaderSize, 0);
  if (size) std::memcpy(page.data(), data, size < page.size() ? size : page.size());
  MemoryFileInfo expected;
  if (mem.ok()) expected = mem.value();
  if (record_from_page) {
    std::memcpy(&expected.ram_bytes, page.data() + 16, 8);
    std::memcpy(expected.id.bytes, page.data() + 24, 16);
    expected.file_size = expected.ram_bytes + kMemoryHeaderSize;
    expected.header_crc = Crc32c(0, page.data(), page.size());
  }
  auto status = CheckMemoryFileHeader(expected, expected.file_size, page.data(), page.size());
  if (status.ok()) {
    std::vector<uint8_t> want = EncodeMemoryHeader(expected.ram_bytes, expected.id);
    require(std::memcmp(page.data(), want.data(), 40) == 0);  // magic, version, size, RAM, id
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  uint8_t mode = data[0];
  std::vector<uint8_t> file(data + 1, data + size);
  if (mode & 4) {
    FuzzDecoders(file.data(), file.size(), mode & 8);
    return 0;
  }
  if ((mode & 1) && file.size() >= kHeaderSize) {
    uint64_t total = file.size();
    for (int i = 0; i < 8; i++) file[header::kTotalLength + i] = static_cast<uint8_t>(total >> (8 * i));
  }
  if (mode & 2) SealStateFile(file.data(), file.size());

  auto r = ReadSnapshot(file.data(), file.size());
  if (!r.ok()) {
    require(!r.error().empty());
    return 0;
  }
  const SnapshotInfo& s = r.value();
  StateFileBuilder b;
  uint64_t prev_end = kHeaderSize + s.file.sections.size() * kTableEntrySize;
  for (const Section& sec : s.file.sections) {
    require(sec.offset >= prev_end && sec.offset + sec.length <= file.size());
    prev_end = sec.offset + sec.length;
    const uint8_t* p = s.file.payload(sec);
    b.add(sec.tag, sec.instance, std::vector<uint8_t>(p, p + sec.length));
  }
  require(s.file.count(Tag::kVcpu) == s.vm.vcpus && s.vcpus.size() == s.vm.vcpus);
  require(s.memory.ram_bytes == s.vm.ram_bytes);
  auto rebuilt = b.finish(s.file.vmm_version);
  require(rebuilt.ok() && rebuilt.value() == file);
  return 0;
}
