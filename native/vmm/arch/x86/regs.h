// The boot vCPU's register state at the kernel's first instruction, as plain structs. The KVM
// core copies these into struct kvm_regs / kvm_sregs (Segment mirrors struct kvm_segment field by
// field, with limit in bytes as KVM wants it); arch/ never touches a KVM fd.
//
// Not covered here, left to the KVM core: r8–r15 and cr2/cr8 (zero), apic_base, FPU (fcw 0x37f,
// mxcsr 0x1f80), MSRs, LAPIC LINT0/LINT1, CPUID. Application processors are not started by us:
// Linux wakes them with INIT/SIPI through the in-kernel local APIC.
#pragma once

#include <cstdint>

namespace vmm::x86 {

struct Segment {
  uint64_t base = 0;
  uint32_t limit = 0;  // in bytes (granularity already applied), like kvm_segment.limit
  uint16_t selector = 0;
  uint8_t type = 0;
  uint8_t present = 0;
  uint8_t dpl = 0;
  uint8_t db = 0;
  uint8_t s = 0;
  uint8_t l = 0;
  uint8_t g = 0;
  uint8_t avl = 0;
  uint8_t unusable = 0;
};

struct DescriptorTable {
  uint64_t base = 0;
  uint16_t limit = 0;
};

// Control register and EFER bits used at boot.
constexpr uint64_t kCr0Pe = 1ull << 0;
constexpr uint64_t kCr0Et = 1ull << 4;
constexpr uint64_t kCr0Ne = 1ull << 5;
constexpr uint64_t kCr0Pg = 1ull << 31;
constexpr uint64_t kCr4Pae = 1ull << 5;
constexpr uint64_t kEferLme = 1ull << 8;
constexpr uint64_t kEferLma = 1ull << 10;
constexpr uint64_t kRflagsReserved1 = 1ull << 1;  // bit 1 always reads as 1; IF, TF, VM clear

struct BootCpuState {
  // General-purpose registers (kvm_regs).
  uint64_t rax = 0, rbx = 0, rcx = 0, rdx = 0, rsi = 0, rdi = 0, rsp = 0, rbp = 0;
  uint64_t rip = 0;
  uint64_t rflags = kRflagsReserved1;
  // Segment and system registers (kvm_sregs).
  Segment cs, ds, es, fs, gs, ss, tr, ldt;
  DescriptorTable gdt, idt;
  uint64_t cr0 = 0, cr3 = 0, cr4 = 0, efer = 0;
};

// Linux 64-bit boot protocol: long mode, paging on with the identity map at layout::kPml4Addr,
// CS = __BOOT_CS (0x10), DS/ES/SS = __BOOT_DS (0x18), interrupts off, RSI = zero page address,
// RIP = entry (protected-mode load address + 0x200).
BootCpuState Linux64BootState(uint64_t entry, uint64_t zero_page);

// PVH (Xen's direct-boot ABI, as Linux's pvh_start_xen expects it): 32-bit protected mode, paging
// off, flat 32-bit CS (0x08) and DS/ES/SS (0x18), a valid TR, EBX = hvm_start_info address,
// RIP = the XEN_ELFNOTE_PHYS32_ENTRY address.
BootCpuState Pvh32BootState(uint64_t entry, uint64_t start_info);

}  // namespace vmm::x86
