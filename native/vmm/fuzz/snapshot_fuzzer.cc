// libFuzzer entry point: the snapshot state file reader (native/vmm/snapshot), which a restore runs
// on a file it did not write, and the decoders of the sections it understands.
//
// Input: one mode byte, then the bytes under test. Mode bits: 1 sets the header's total length to
// the input's, 2 reseals the CRC-32C (without these two nearly every input stops at the length or
// checksum check, and the table and section checks behind them go unfuzzed); 4 instead hands the
// bytes straight to the section decoders (vm, memory, vcpu, irqchip, pit, clock, serial, i8042,
// virtio-mmio, virtio-device) and the memory file header check (8: with a record made to agree with the header
// page); 16 loads them as a virtio-mmio section into an rng device's transport.
//
// Whatever the reader accepts must be exactly what the builder writes for the same sections (the
// reader leaves no byte unaccounted for), and decoded sections must encode back to their bytes.
// A virtio-mmio payload the decoder accepts must load into a transport whose device offers its
// features and queue sizes (the decoder checks what Queue::activate checks), and the transport
// must then save a payload that decodes, whatever the device did with the rings.
#include <cstdint>
#include <cstring>
#include <vector>

#include "devices/virtio/mmio.h"
#include "devices/virtio/rng.h"
#include "fuzz/fuzz_input.h"
#include "snapshot/crc32c.h"
#include "snapshot/device_state.h"
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
  // The device sections' layouts are canonical: what decodes encodes back to the same bytes.
  auto serial = DecodeSerialState(data, size);
  if (serial.ok()) require(EncodeSerialState(serial.value()) == std::vector<uint8_t>(data, data + size));
  auto i8042 = DecodeI8042State(data, size);
  if (i8042.ok()) require(EncodeI8042State(i8042.value()) == std::vector<uint8_t>(data, data + size));
  auto mmio = DecodeMmioState(data, size, 0, kMinRamBytes);
  if (mmio.ok()) require(EncodeMmioState(mmio.value()) == std::vector<uint8_t>(data, data + size));
  auto device = DecodeVirtioDeviceState(data, size, 0);
  if (device.ok()) require(EncodeVirtioDeviceState(device.value()) == std::vector<uint8_t>(data, data + size));
  if (mmio.ok() && device.ok()) (void)CheckVirtioPair(mmio.value(), device.value(), 0);

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

// Mode 16: the bytes after a fixed deviceId (rng) and queueCount (1) as a virtio-mmio section for a
// 64 KiB guest.
void FuzzTransportLoad(std::vector<uint8_t> bytes) {
  constexpr uint64_t kRam = 64 * 1024;
  if (bytes.size() < 40) bytes.resize(40);
  const uint8_t rng_header[4] = {kVirtioRng, 0, 0, 0}, one_queue[4] = {1, 0, 0, 0};
  std::memcpy(bytes.data(), rng_header, 4);
  std::memcpy(bytes.data() + 36, one_queue, 4);
  auto decoded = DecodeMmioState(bytes.data(), bytes.size(), 0, kRam);
  static std::vector<uint8_t> ram(kRam);
  std::memset(ram.data(), 0, ram.size());
  vmm::virtio::RngDevice device;
  vmm::virtio::MmioTransport transport(vmm::GuestMemory(ram.data(), ram.size()), &device, nullptr);
  vc::Status loaded = transport.LoadState(bytes.data(), bytes.size(), kRam, 0);
  if (!decoded.ok()) {
    require(!loaded.ok() && loaded.error() == decoded.error());
    return;
  }
  const MmioState& s = decoded.value();
  bool fits = !(s.status & vmm::virtio::kStatusFeaturesOk) || !(s.driver_features & ~device.device_features());
  if (s.queues[0].mode == QueueMode::kActive && s.queues[0].size > device.max_queue_size(0)) fits = false;
  require(loaded.ok() == fits);
  if (!loaded.ok()) return;
  std::vector<uint8_t> saved = transport.SaveState();
  require(DecodeMmioState(saved.data(), saved.size(), 0, kRam).ok());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  uint8_t mode = data[0];
  std::vector<uint8_t> file(data + 1, data + size);
  if (mode & 16) {
    FuzzTransportLoad(std::move(file));
    return 0;
  }
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
