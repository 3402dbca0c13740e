#include "arch/x86/regs.h"

#include "arch/x86/gdt.h"
#include "arch/x86/layout.h"

namespace vmm::x86 {

namespace {

// Selector-0 LDT as after reset: usable-looking but empty (type 2 = LDT, present).
Segment ResetLdt() {
  Segment s;
  s.limit = 0xffff;
  s.type = 0x2;
  s.present = 1;
  return s;
}

BootCpuState Common(uint16_t code_selector) {
  BootCpuState st;
  st.cs = BootSegment(code_selector);
  st.ds = st.es = st.fs = st.gs = st.ss = BootSegment(kSelData);
  st.tr = BootSegment(kSelTss);
  st.ldt = ResetLdt();
  st.gdt = BootGdtr();
  st.idt = {layout::kIdtAddr, 0};
  st.rsp = st.rbp = layout::kBootStackTop;
  st.rflags = kRflagsReserved1;
  return st;
}

}  // namespace

BootCpuState Linux64BootState(uint64_t entry, uint64_t zero_page) {
  BootCpuState st = Common(kSelCode64);
  st.rip = entry;
  st.rsi = zero_page;
  st.cr0 = kCr0Pe | kCr0Et | kCr0Ne | kCr0Pg;
  st.cr3 = layout::kPml4Addr;
  st.cr4 = kCr4Pae;
  st.efer = kEferLme | kEferLma;
  return st;
}

BootCpuState Pvh32BootState(uint64_t entry, uint64_t start_info) {
  BootCpuState st = Common(kSelCode32);
  st.rip = entry;
  st.rbx = start_info;
  st.cr0 = kCr0Pe | kCr0Et | kCr0Ne;
  return st;
}

}  // namespace vmm::x86
