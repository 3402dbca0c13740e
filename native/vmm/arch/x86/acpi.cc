#include "arch/x86/acpi.h"

#include <cstring>

#include "arch/x86/aml.h"

namespace vmm::x86 {

namespace {

using Bytes = std::vector<uint8_t>;
using ull = unsigned long long;

constexpr char kOemId[] = "VCNTRS";      // 6 bytes
constexpr char kOemTableId[] = "VCVMM   ";  // 8 bytes
constexpr char kCreatorId[] = "VCVM";    // 4 bytes
constexpr uint32_t kOemRevision = 1, kCreatorRevision = 1;
constexpr size_t kHeaderSize = 36;

void Put(Bytes* b, size_t off, uint64_t v, int width) {
  for (int i = 0; i < width; i++) (*b)[off + i] = uint8_t(v >> (8 * i));
}
void PutStr(Bytes* b, size_t off, const char* s, size_t n) { std::memcpy(b->data() + off, s, n); }
void Append(Bytes* b, uint64_t v, int width) {
  for (int i = 0; i < width; i++) b->push_back(uint8_t(v >> (8 * i)));
}

// A system description table: the 36-byte header (length and checksum filled in by Seal) + body.
Bytes Header(const char* signature, uint8_t revision) {
  Bytes t(kHeaderSize, 0);
  PutStr(&t, 0, signature, 4);
  t[8] = revision;
  PutStr(&t, 10, kOemId, 6);
  PutStr(&t, 16, kOemTableId, 8);
  Put(&t, 24, kOemRevision, 4);
  PutStr(&t, 28, kCreatorId, 4);
  Put(&t, 32, kCreatorRevision, 4);
  return t;
}

void Seal(Bytes* t) {
  Put(t, 4, t->size(), 4);
  (*t)[9] = 0;
  (*t)[9] = uint8_t(-AcpiSum(t->data(), t->size()));
}

// Generic Address Structure for a one-byte I/O port register.
void PutIoGas(Bytes* t, size_t off, uint16_t port) {
  (*t)[off] = 1;      // system I/O space
  (*t)[off + 1] = 8;  // register bit width
  (*t)[off + 2] = 0;  // bit offset
  (*t)[off + 3] = 1;  // byte access
  Put(t, off + 4, port, 8);
}

// FADT offsets (ACPI 6.x table 5.9).
constexpr size_t kFadtSize = 276, kFadtDsdt = 40, kFadtIapcBootArch = 109, kFadtFlags = 112, kFadtResetReg = 116,
                 kFadtResetValue = 128, kFadtMinorVersion = 131, kFadtXDsdt = 140, kFadtSleepControl = 244,
                 kFadtSleepStatus = 256, kFadtHypervisorId = 268;
constexpr uint32_t kFadtResetRegSup = 1u << 10, kFadtHwReducedAcpi = 1u << 20;
constexpr uint16_t kIapc8042 = 1u << 1, kIapcVgaNotPresent = 1u << 2, kIapcMsiNotSupported = 1u << 3,
                   kIapcCmosRtcNotPresent = 1u << 5;

Bytes Fadt(const AcpiConfig& c, uint64_t dsdt) {
  Bytes t = Header("FACP", 6);
  t.resize(kFadtSize, 0);
  Put(&t, kFadtDsdt, dsdt, 4);
  Put(&t, kFadtXDsdt, dsdt, 8);
  // No VGA, no MSI (no PCI), no CMOS RTC (saves the guest probing ports that would only exit).
  Put(&t, kFadtIapcBootArch, kIapcVgaNotPresent | kIapcMsiNotSupported | kIapcCmosRtcNotPresent | (c.i8042 ? kIapc8042 : 0), 2);
  // Hardware-reduced: no PM1/GPE blocks, no SCI, no PM timer. Reset by writing 0xfe to the i8042
  // command port, which the VMM turns into the end of the VM.
  Put(&t, kFadtFlags, kFadtHwReducedAcpi | kFadtResetRegSup, 4);
  PutIoGas(&t, kFadtResetReg, layout::kI8042CommandPort);
  t[kFadtResetValue] = 0xfe;
  t[kFadtMinorVersion] = 5;
  if (c.sleep_port) {
    PutIoGas(&t, kFadtSleepControl, c.sleep_port);
    PutIoGas(&t, kFadtSleepStatus, c.sleep_port);
  }
  PutStr(&t, kFadtHypervisorId, "VCVMM\0\0\0", 8);
  Seal(&t);
  return t;
}

Bytes Madt(const AcpiConfig& c) {
  Bytes t = Header("APIC", 5);
  Append(&t, layout::kLapicAddr, 4);
  Append(&t, 0, 4);  // flags: no PCAT_COMPAT — no 8259 pair is described or used
  for (uint32_t i = 0; i < c.vcpus; i++) {
    Append(&t, 0, 1);  // Processor Local APIC
    Append(&t, 8, 1);
    Append(&t, i, 1);  // ACPI processor UID
    Append(&t, i, 1);  // APIC id
    Append(&t, 1, 4);  // enabled
  }
  Append(&t, 1, 1);  // I/O APIC
  Append(&t, 12, 1);
  Append(&t, layout::kIoApicId, 1);
  Append(&t, 0, 1);
  Append(&t, layout::kIoApicAddr, 4);
  Append(&t, 0, 4);  // GSI base: pins 0..23 are GSIs 0..23
  Append(&t, 4, 1);  // Local APIC NMI: LINT1 of every processor, as on PC hardware
  Append(&t, 6, 1);
  Append(&t, 0xff, 1);
  Append(&t, 0, 2);
  Append(&t, 1, 1);
  Seal(&t);
  return t;
}

Bytes Xsdt(const std::vector<uint64_t>& entries) {
  Bytes t = Header("XSDT", 1);
  for (uint64_t e : entries) Append(&t, e, 8);
  Seal(&t);
  return t;
}

Bytes Rsdp(uint64_t xsdt) {
  Bytes t(36, 0);
  PutStr(&t, 0, "RSD PTR ", 8);
  PutStr(&t, 9, kOemId, 6);
  t[15] = 2;             // revision: ACPI 2.0+, XSDT
  Put(&t, 16, 0, 4);     // no RSDT
  Put(&t, 20, 36, 4);
  Put(&t, 24, xsdt, 8);
  t[8] = uint8_t(-AcpiSum(t.data(), 20));
  t[32] = uint8_t(-AcpiSum(t.data(), 36));
  return t;
}

std::string SlotName(const char* prefix, uint32_t i) {
  char name[5];
  std::snprintf(name, sizeof name, "%s%02u", prefix, i % 100);
  return name;
}

}  // namespace

uint8_t AcpiSum(const uint8_t* data, size_t len) {
  uint8_t sum = 0;
  for (size_t i = 0; i < len; i++) sum = uint8_t(sum + data[i]);
  return sum;
}

std::vector<uint8_t> DsdtAml(const AcpiConfig& c) {
  using namespace aml;
  std::vector<Bytes> sb;
  if (c.com1) {
    sb.push_back(Device("COM1", {Name("_HID", EisaId("PNP0501")), Name("_UID", Integer(1)),
                                 Name("_CRS", ResourceTemplate({Io(layout::kCom1Port, layout::kCom1Port, 1, 8),
                                                                IrqNoFlags(layout::kCom1Irq)}))}));
  }
  if (c.i8042) {
    sb.push_back(Device("PS2_", {Name("_HID", EisaId("PNP0303")),
                                 Name("_CRS", ResourceTemplate({Io(layout::kI8042DataPort, layout::kI8042DataPort, 1, 1),
                                                                Io(layout::kI8042CommandPort, layout::kI8042CommandPort, 1, 1),
                                                                IrqNoFlags(layout::kI8042Irq)}))}));
  }
  for (uint32_t i = 0; i < c.virtio_slots; i++) {
    sb.push_back(Device(SlotName("VR", i),
                        {Name("_HID", String("LNRO0005")), Name("_UID", Integer(i)), Name("_CCA", Integer(1)),
                         Name("_CRS", ResourceTemplate({Memory32Fixed(true, uint32_t(layout::VirtioMmioSlotAddr(i)),
                                                                      uint32_t(layout::kVirtioMmioSlotSize)),
                                                        Interrupt(true, true, false, false,
                                                                  layout::VirtioMmioSlotGsi(i))}))}));
  }
  // The DSDT's top level is the root scope, so "_SB_" is "\_SB_" (iasl encodes it this way too).
  std::vector<Bytes> body{Scope("_SB_", sb)};
  if (c.sleep_port) body.push_back(Name("_S5_", Package({Integer(5), Integer(0)})));
  return Concat(body);
}

Result<AcpiTables> BuildAcpiTables(const AcpiConfig& c, uint64_t base, uint64_t limit) {
  if (c.vcpus < 1 || c.vcpus > 254)
    return Status::Error(Format("ACPI: vcpus %u is not in 1..254", c.vcpus));
  if (c.virtio_slots > layout::kVirtioMaxSlots)
    return Status::Error(Format("ACPI: virtio_slots %u is more than the %u GSIs 5..23 allow", c.virtio_slots,
                                layout::kVirtioMaxSlots));
  if (base & 15) return Status::Error(Format("ACPI: base 0x%llx is not 16-byte aligned", (ull)base));

  Bytes dsdt = Header("DSDT", 2);
  const Bytes aml = DsdtAml(c);
  dsdt.insert(dsdt.end(), aml.begin(), aml.end());
  Seal(&dsdt);
  Bytes madt = Madt(c);

  // Layout: RSDP, XSDT (2 entries), FADT, MADT, DSDT, each 16-byte aligned.
  auto align = [](uint64_t a) { return (a + 15) & ~15ull; };
  const uint64_t rsdp = base, xsdt = align(rsdp + 36), fadt = align(xsdt + kHeaderSize + 16),
                 madt_addr = align(fadt + kFadtSize), dsdt_addr = align(madt_addr + madt.size()),
                 end = dsdt_addr + dsdt.size();
  if (end > limit || end < base)
    return Status::Error(Format("ACPI: tables need 0x%llx..0x%llx, beyond the area's end 0x%llx", (ull)base, (ull)end,
                                (ull)limit));
  AcpiTables out;
  out.rsdp_addr = rsdp;
  out.tables.push_back({"RSDP", rsdp, Rsdp(xsdt)});
  out.tables.push_back({"XSDT", xsdt, Xsdt({fadt, madt_addr})});
  out.tables.push_back({"FACP", fadt, Fadt(c, dsdt_addr)});
  out.tables.push_back({"APIC", madt_addr, std::move(madt)});
  out.tables.push_back({"DSDT", dsdt_addr, std::move(dsdt)});
  return out;
}

Status WriteAcpiTables(const GuestMemory& mem, const AcpiTables& tables) {
  for (const auto& t : tables.tables) {
    if (!mem.write(t.addr, t.bytes.data(), t.bytes.size()))
      return Status::Error(Format("ACPI: %s (%zu bytes) at 0x%llx does not fit in guest memory of 0x%llx bytes",
                                  t.name.c_str(), t.bytes.size(), (ull)t.addr, (ull)mem.size()));
  }
  return {};
}

}  // namespace vmm::x86
