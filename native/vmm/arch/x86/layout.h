// The x86-64 guest physical memory map and interrupt routing of the built-in VMM. Constants only:
// every fixed guest address and IRQ the boot writers, ACPI tables, devices and the KVM core agree
// on lives here, with the reason for its value. docs/vmm-boot.md has the same map as a table.
//
//   0x0000_0000  0x0000_04ff  real-mode IVT and BIOS data area: left zero, never written
//   0x0000_0500  0x0000_052f  GDT (6 entries, gdt.h)
//   0x0000_1000  0x0000_6fff  identity page tables: PML4, PDPT, 4 page directories (page_tables.h)
//   0x0000_7000  0x0000_7fff  zero page (struct boot_params, bzImage boot)
//   0x0000_8000  0x0000_8fff  PVH hvm_start_info, its module list and memory map (ELF boot)
//   0x0000_9000  0x0000_9fff  boot stack (RSP = 0xa000 at entry; Linux switches away at once)
//   0x0002_0000  0x0002_ffff  kernel command line (NUL-terminated)
//   0x0009_fc00  0x000f_ffff  reserved in e820: EBDA, VGA hole, BIOS area
//   0x000e_0000  0x000f_ffff    ACPI: RSDP at 0xe0000 (where the ACPI spec lets OSPM scan), tables
//   0x0010_0000  ...          kernel (bzImage protected-mode part / ELF PT_LOAD segments)
//   ...          low RAM end  initrd, as high as it fits (see kInitrd* below)
//   0xc000_0000  0xffff_ffff  MMIO gap, never RAM:
//   0xd000_0000  +0x1000*N      virtio-mmio slots
//   0xfec0_0000                 IOAPIC
//   0xfee0_0000                 local APICs
//   0x1_0000_0000 ...         RAM beyond 3 GiB continues here
#pragma once

#include <cstdint>

namespace vmm::x86::layout {

constexpr uint64_t kPageSize = 0x1000;

// --- Boot structures in low memory (all inside the first 640 KiB, which e820 reports as RAM; the
// kernel copies what it keeps before it reuses that memory). ---

// GDT for the boot CPU: selectors 0x08 (32-bit code, PVH), 0x10 (64-bit code, Linux __BOOT_CS),
// 0x18 (flat data, Linux __BOOT_DS), 0x20 (TSS, a 16-byte system descriptor in long mode).
constexpr uint64_t kGdtAddr = 0x500;
// No IDT: IDTR = {base 0, limit 0}. An exception before the kernel loads its own IDT is a triple
// fault, which KVM reports as a shutdown exit — louder than a half-working handler.
constexpr uint64_t kIdtAddr = 0;

// Identity map of the first 4 GiB with 2 MiB pages (the 64-bit boot protocol needs the kernel,
// zero page and command line identity-mapped; 4 GiB covers any placement below the MMIO gap).
constexpr uint64_t kPml4Addr = 0x1000;
constexpr uint64_t kPdptAddr = 0x2000;
constexpr uint64_t kPdAddr = 0x3000;  // 4 consecutive page directories, 0x3000..0x6fff
constexpr uint64_t kPdCount = 4;
constexpr uint64_t kIdentityMapBytes = kPdCount << 30;

// Zero page: struct boot_params for the 64-bit Linux boot protocol (RSI points here).
constexpr uint64_t kZeroPageAddr = 0x7000;

// PVH: struct hvm_start_info (EBX points here), then one module entry (the initrd), then the
// memory map, all in one page.
constexpr uint64_t kPvhStartInfoAddr = 0x8000;
constexpr uint64_t kPvhModlistAddr = 0x8040;
constexpr uint64_t kPvhMemmapAddr = 0x8080;
constexpr uint64_t kPvhMemmapMaxEntries = (0x9000 - kPvhMemmapAddr) / 24;

// A small stack for the entry code (Linux sets its own at once; test guests may use this one).
constexpr uint64_t kBootStackTop = 0xa000;

// Kernel command line. The bzImage header's cmdline_size may limit it further.
constexpr uint64_t kCmdlineAddr = 0x20000;
constexpr uint64_t kCmdlineMaxBytes = 0x10000;  // including the terminating NUL

// Conventional memory ends where the EBDA would start; the rest of the first MiB is reserved.
constexpr uint64_t kEbdaStart = 0x9fc00;
constexpr uint64_t kHighMemStart = 0x100000;  // 1 MiB

// ACPI: the RSDP must be in 0xe0000..0xfffff for OSPMs that scan for it (Linux also gets its
// address from boot_params.acpi_rsdp_addr or hvm_start_info.rsdp_paddr); the other tables follow
// it in the same reserved area.
constexpr uint64_t kAcpiStart = 0xe0000;
constexpr uint64_t kAcpiEnd = 0x100000;
constexpr uint64_t kRsdpAddr = kAcpiStart;

// Kernel load address: the bzImage protected-mode part and the usual ELF vmlinux p_paddr. The
// 64-bit bzImage entry point is kKernelLoadAddr + 0x200.
constexpr uint64_t kKernelLoadAddr = kHighMemStart;
constexpr uint64_t kBzImage64EntryOffset = 0x200;

// Initrd placement rule: page-aligned, as high as possible, ending at or below
// min(header initrd_addr_max + 1, end of low RAM), and starting above everything the kernel uses
// while it decompresses and runs (load address + image size, and the init_size window at the
// address the kernel relocates itself to). No fit is an error naming the sizes.
constexpr uint64_t kInitrdAlign = kPageSize;

// --- The MMIO gap below 4 GiB: never RAM. Low RAM is [0, min(ram, kMmioGapStart)); RAM beyond
// that continues at kHighRamStart. ---
constexpr uint64_t kMmioGapStart = 0xc0000000;
constexpr uint64_t kMmioGapEnd = 0x100000000;
constexpr uint64_t kHighRamStart = kMmioGapEnd;

// virtio-mmio devices: slot i is [kVirtioMmioBase + i * kVirtioMmioSlotSize, +kVirtioMmioSlotSize)
// (guest-physical MMIO at 0xd0000000 is measured to work on this host's PVM /dev/kvm), with
// IOAPIC pin / GSI kVirtioFirstGsi + i, edge-triggered, active-high (so a plain irqfd raises it).
constexpr uint64_t kVirtioMmioBase = 0xd0000000;
constexpr uint64_t kVirtioMmioSlotSize = 0x1000;
constexpr uint32_t kVirtioFirstGsi = 5;
constexpr uint32_t kIoApicPins = 24;
constexpr uint32_t kVirtioMaxSlots = kIoApicPins - kVirtioFirstGsi;  // GSIs 5..23

constexpr uint64_t VirtioMmioSlotAddr(uint32_t slot) { return kVirtioMmioBase + slot * kVirtioMmioSlotSize; }
constexpr uint32_t VirtioMmioSlotGsi(uint32_t slot) { return kVirtioFirstGsi + slot; }

// Interrupt controllers (the in-kernel KVM irqchip sits at these architectural defaults).
constexpr uint64_t kIoApicAddr = 0xfec00000;
constexpr uint64_t kLapicAddr = 0xfee00000;
// vCPU i has local APIC id i. The IOAPIC keeps KVM's reset id 0, as QEMU's does; x86-64 Linux does
// not require IOAPIC ids to differ from local APIC ids.
constexpr uint8_t kIoApicId = 0;

// Legacy port I/O devices and their ISA IRQs (= GSI, no overrides in the MADT).
constexpr uint16_t kCom1Port = 0x3f8;
constexpr uint32_t kCom1Irq = 4;
constexpr uint16_t kI8042DataPort = 0x60;
constexpr uint16_t kI8042CommandPort = 0x64;  // writing 0xfe here resets the guest (reboot=k)
constexpr uint32_t kI8042Irq = 1;

// Optional ACPI sleep control/status register (hardware-reduced ACPI's way to power off: the
// guest writes SLP_TYP<<2 | SLP_EN to it). One byte of port I/O; only described in FADT and DSDT
// when a device is attached there (AcpiConfig::sleep_port).
constexpr uint16_t kAcpiSleepPort = 0x600;

}  // namespace vmm::x86::layout
