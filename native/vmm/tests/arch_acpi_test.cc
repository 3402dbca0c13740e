// ACPI tables: checksums, pointers between tables, the hardware-reduced FADT, MADT entries per
// vCPU, one LNRO0005 device per virtio-mmio slot, layout inside 0xe0000..0xfffff, and errors.
#include <algorithm>
#include <string>
#include <vector>

#include "arch/x86/acpi.h"
#include "arch/x86/layout.h"
#include "tests/arch_test_util.h"
#include "tests/check.h"

using namespace vmm::x86;
using vmm::test::Contains;
using vmm::test::Le;

namespace {

const AcpiTable* Find(const AcpiTables& t, const char* name) {
  for (const auto& x : t.tables)
    if (x.name == name) return &x;
  return nullptr;
}

size_t Count(const std::vector<uint8_t>& hay, const std::string& text) {
  const std::vector<uint8_t> needle(text.begin(), text.end());
  size_t n = 0;
  for (auto it = hay.begin(); (it = std::search(it, hay.end(), needle.begin(), needle.end())) != hay.end(); ++it) n++;
  return n;
}

AcpiConfig Config(uint32_t vcpus, uint32_t slots) {
  AcpiConfig c;
  c.vcpus = vcpus;
  c.virtio_slots = slots;
  return c;
}

}  // namespace

VMM_TEST(arch_acpi_checksums_and_pointers) {
  auto r = BuildAcpiTables(Config(2, 4));
  CHECK(r.ok());
  if (!r.ok()) return;
  const AcpiTables& t = r.value();
  CHECK_EQ(t.tables.size(), size_t(5));
  CHECK_EQ(t.rsdp_addr, layout::kRsdpAddr);
  uint64_t prev_end = layout::kAcpiStart;
  for (const auto& x : t.tables) {
    CHECK(x.addr >= prev_end);
    CHECK_EQ(x.addr % 16, 0u);
    prev_end = x.addr + x.bytes.size();
    CHECK(prev_end <= layout::kAcpiEnd);
    if (x.name == "RSDP") continue;
    CHECK_EQ(AcpiSum(x.bytes.data(), x.bytes.size()), 0);
    CHECK_EQ(Le<uint32_t>(x.bytes, 4), uint32_t(x.bytes.size()));
    CHECK(std::string(x.bytes.begin(), x.bytes.begin() + 4) == x.name);
  }
  const auto *rsdp = Find(t, "RSDP"), *xsdt = Find(t, "XSDT"), *fadt = Find(t, "FACP"), *madt = Find(t, "APIC"),
             *dsdt = Find(t, "DSDT");
  CHECK(rsdp && xsdt && fadt && madt && dsdt);
  if (!(rsdp && xsdt && fadt && madt && dsdt)) return;
  CHECK(std::string(rsdp->bytes.begin(), rsdp->bytes.begin() + 8) == "RSD PTR ");
  CHECK_EQ(AcpiSum(rsdp->bytes.data(), 20), 0);
  CHECK_EQ(AcpiSum(rsdp->bytes.data(), 36), 0);
  CHECK_EQ(rsdp->bytes[15], 2);
  CHECK_EQ(Le<uint32_t>(rsdp->bytes, 20), 36u);
  CHECK_EQ(Le<uint64_t>(rsdp->bytes, 24), xsdt->addr);
  CHECK_EQ(xsdt->bytes.size(), size_t(36 + 16));
  CHECK_EQ(Le<uint64_t>(xsdt->bytes, 36), fadt->addr);
  CHECK_EQ(Le<uint64_t>(xsdt->bytes, 44), madt->addr);
  CHECK_EQ(Le<uint32_t>(fadt->bytes, 40), uint32_t(dsdt->addr));
  CHECK_EQ(Le<uint64_t>(fadt->bytes, 140), dsdt->addr);
}

VMM_TEST(arch_acpi_fadt_is_hardware_reduced) {
  auto r = BuildAcpiTables(Config(1, 0));
  CHECK(r.ok());
  const auto* fadt = Find(r.value(), "FACP");
  CHECK(fadt);
  if (!fadt) return;
  CHECK_EQ(fadt->bytes.size(), size_t(276));
  CHECK_EQ(fadt->bytes[8], 6);                            // revision 6
  CHECK(Le<uint32_t>(fadt->bytes, 112) & (1u << 20));     // HW_REDUCED_ACPI
  CHECK_EQ(Le<uint16_t>(fadt->bytes, 46), 0);             // no SCI
  CHECK_EQ(Le<uint32_t>(fadt->bytes, 56), 0u);            // no PM1a event block
  CHECK_EQ(Le<uint16_t>(fadt->bytes, 109) & 2, 0);        // no 8042 unless asked
  CHECK(Le<uint16_t>(fadt->bytes, 109) & (1u << 5));      // no CMOS RTC
  CHECK_EQ(fadt->bytes[116], 1);                          // reset register: system I/O
  CHECK_EQ(Le<uint64_t>(fadt->bytes, 120), 0x64u);
  CHECK_EQ(fadt->bytes[128], 0xfe);
  CHECK_EQ(Le<uint64_t>(fadt->bytes, 248), 0u);           // no sleep control register
  CHECK_EQ(Count(DsdtAml(Config(1, 0)), "_S5_"), size_t(0));

  AcpiConfig c = Config(1, 0);
  c.sleep_port = layout::kAcpiSleepPort;
  c.i8042 = true;
  auto s = BuildAcpiTables(c);
  const auto* f2 = Find(s.value(), "FACP");
  CHECK(f2 && f2->bytes[244] == 1 && Le<uint64_t>(f2->bytes, 248) == layout::kAcpiSleepPort);
  CHECK(f2 && f2->bytes[256] == 1 && Le<uint64_t>(f2->bytes, 260) == layout::kAcpiSleepPort);
  CHECK(f2 && (Le<uint16_t>(f2->bytes, 109) & 2));
  CHECK_EQ(Count(Find(s.value(), "DSDT")->bytes, "_S5_"), size_t(1));
  CHECK_EQ(Count(Find(s.value(), "DSDT")->bytes, "PS2_"), size_t(1));
}

VMM_TEST(arch_acpi_madt_lists_every_vcpu_and_the_ioapic) {
  auto r = BuildAcpiTables(Config(3, 0));
  const auto* madt = Find(r.value(), "APIC");
  CHECK(madt);
  if (!madt) return;
  const auto& b = madt->bytes;
  CHECK_EQ(Le<uint32_t>(b, 36), uint32_t(layout::kLapicAddr));
  std::vector<int> apic_ids;
  int ioapics = 0, nmis = 0;
  for (size_t off = 44; off + 2 <= b.size();) {
    const uint8_t type = b[off], len = b[off + 1];
    CHECK(len >= 2 && off + len <= b.size());
    if (len < 2) break;
    if (type == 0) {
      CHECK_EQ(b[off + 2], b[off + 3]);  // processor UID = APIC id
      CHECK_EQ(Le<uint32_t>(b, off + 4), 1u);
      apic_ids.push_back(b[off + 3]);
    } else if (type == 1) {
      ioapics++;
      CHECK_EQ(Le<uint32_t>(b, off + 4), uint32_t(layout::kIoApicAddr));
      CHECK_EQ(Le<uint32_t>(b, off + 8), 0u);
    } else if (type == 4) {
      nmis++;
      CHECK_EQ(b[off + 5], 1);  // LINT1
    }
    off += len;
  }
  CHECK(apic_ids == std::vector<int>({0, 1, 2}));
  CHECK_EQ(ioapics, 1);
  CHECK_EQ(nmis, 1);
}

VMM_TEST(arch_acpi_dsdt_has_one_virtio_mmio_device_per_slot) {
  auto r = BuildAcpiTables(Config(1, 4));
  const auto* dsdt = Find(r.value(), "DSDT");
  CHECK(dsdt);
  if (!dsdt) return;
  const auto& b = dsdt->bytes;
  CHECK_EQ(Count(b, "LNRO0005"), size_t(4));
  CHECK_EQ(Count(b, "PNP0501"), size_t(0));  // COM1 is an EISA id, not a string
  CHECK_EQ(Count(b, "COM1"), size_t(1));
  for (uint32_t slot = 0; slot < 4; slot++) {
    char name[5];
    std::snprintf(name, sizeof name, "VR%02u", slot);
    CHECK_EQ(Count(b, name), size_t(1));
    std::vector<uint8_t> mem{0x86, 0x09, 0x00, 0x01};
    const uint32_t base = uint32_t(layout::VirtioMmioSlotAddr(slot));
    for (int i = 0; i < 4; i++) mem.push_back(uint8_t(base >> (8 * i)));
    mem.insert(mem.end(), {0x00, 0x10, 0x00, 0x00});
    CHECK_EQ(Count(b, std::string(mem.begin(), mem.end())), size_t(1));
    const std::vector<uint8_t> irq{0x89, 0x06, 0x00, 0x03, 0x01, uint8_t(5 + slot), 0, 0, 0};
    CHECK_EQ(Count(b, std::string(irq.begin(), irq.end())), size_t(1));
  }
  CHECK_EQ(layout::VirtioMmioSlotGsi(18), 23u);
}

VMM_TEST(arch_acpi_largest_configuration_fits) {
  auto r = BuildAcpiTables(Config(254, layout::kVirtioMaxSlots));
  CHECK(r.ok());
  if (!r.ok()) return;
  CHECK_EQ(Count(Find(r.value(), "DSDT")->bytes, "LNRO0005"), size_t(19));
  for (const auto& x : r->tables) CHECK(x.name == "RSDP" || AcpiSum(x.bytes.data(), x.bytes.size()) == 0);
}

VMM_TEST(arch_acpi_rejects_bad_configurations) {
  auto zero = BuildAcpiTables(Config(0, 1));
  CHECK(!zero.ok() && Contains(zero.error(), "vcpus 0"));
  auto many = BuildAcpiTables(Config(255, 1));
  CHECK(!many.ok() && Contains(many.error(), "vcpus 255"));
  auto slots = BuildAcpiTables(Config(1, 20));
  CHECK(!slots.ok() && Contains(slots.error(), "virtio_slots 20"));
  auto tight = BuildAcpiTables(Config(1, 4), layout::kAcpiStart, layout::kAcpiStart + 256);
  CHECK(!tight.ok() && Contains(tight.error(), "beyond the area's end"));
  auto unaligned = BuildAcpiTables(Config(1, 4), layout::kAcpiStart + 4);
  CHECK(!unaligned.ok() && Contains(unaligned.error(), "not 16-byte aligned"));
}

VMM_TEST(arch_acpi_writes_into_guest_memory_or_fails_cleanly) {
  auto r = BuildAcpiTables(Config(2, 2));
  vmm::test::TestRam ram(2 << 20);
  CHECK(WriteAcpiTables(ram.mem(), r.value()).ok());
  uint8_t sig[8] = {};
  ram.mem().read(layout::kRsdpAddr, sig, 8);
  CHECK(std::string(reinterpret_cast<char*>(sig), 8) == "RSD PTR ");
  vmm::test::TestRam small(layout::kAcpiStart + 64);
  auto s = WriteAcpiTables(small.mem(), r.value());
  CHECK(!s.ok() && Contains(s.error(), "does not fit in guest memory"));
}
