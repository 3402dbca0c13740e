// ACPI tables for the built-in VMM, as pure functions: RSDP (2.0+), XSDT, FADT (hardware-reduced,
// revision 6), MADT (local APICs, IOAPIC, LINT1 NMI) and a DSDT describing one virtio-mmio device
// per slot (_HID "LNRO0005", _CRS Memory32Fixed + Interrupt) — how Linux without
// VIRTIO_MMIO_CMDLINE_DEVICES finds virtio-mmio devices — plus COM1 and, optionally, the i8042 and
// an ACPI sleep register for poweroff.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "arch/x86/layout.h"
#include "common/result.h"
#include "guest_memory.h"

namespace vmm::x86 {

using vc::Format;
using vc::Result;
using vc::Status;

struct AcpiConfig {
  uint32_t vcpus = 1;          // 1..254; vCPU i has ACPI processor UID i and local APIC id i
  uint32_t virtio_slots = 0;   // 0..layout::kVirtioMaxSlots, slot i at VirtioMmioSlotAddr(i)
  bool com1 = true;            // DSDT COM1 (PNP0501, port 0x3f8, IRQ 4)
  bool i8042 = false;          // DSDT PS2 keyboard controller (PNP0303) and IAPC_BOOT_ARCH 8042 flag
  uint16_t sleep_port = 0;     // nonzero: FADT sleep control/status register at this I/O port, \_S5
};

struct AcpiTable {
  std::string name;  // file stem for dump-acpi and iasl: RSDP, XSDT, FACP, APIC, DSDT
  uint64_t addr = 0;
  std::vector<uint8_t> bytes;
};

struct AcpiTables {
  uint64_t rsdp_addr = 0;
  std::vector<AcpiTable> tables;  // RSDP, XSDT, FACP, APIC, DSDT, in address order
};

// Sum of all bytes, mod 256 (0 for a table with a correct checksum).
uint8_t AcpiSum(const uint8_t* data, size_t len);

// Lays the tables out from `base` (16-byte aligned, RSDP first) and fills in every pointer and
// checksum. Fails when the configuration is out of range or the tables do not fit below `limit`.
Result<AcpiTables> BuildAcpiTables(const AcpiConfig& config, uint64_t base = layout::kAcpiStart,
                                   uint64_t limit = layout::kAcpiEnd);

// Copies built tables to their addresses in guest memory.
Status WriteAcpiTables(const GuestMemory& mem, const AcpiTables& tables);

// The DSDT's AML body (without the table header), exposed for tests.
std::vector<uint8_t> DsdtAml(const AcpiConfig& config);

}  // namespace vmm::x86
