/* vctest=smp: the BSP wakes the other vCPUs the way an OS does (INIT, then STARTUP IPIs through its
 * local APIC, all from user mode through the identity-mapped APIC page) and checks what each CPU's
 * CPUID (executed at CPL0) says about itself: distinct initial APIC ids 0..N-1, x2APIC ids equal to them, N logical
 * processors at the core level of leaf 0xB. Expected N comes from expect_cpus=. */
#include "rt.h"
#include "tests.h"

extern char ap_tramp_start[], ap_tramp_end[];
extern volatile uint32_t ap_slots, ap_done;
extern volatile uint32_t ap_info[][4];
extern volatile uint32_t bsp_info[4];

#define LAPIC 0xfee00000ull
#define LAPIC_SVR 0xf0
#define LAPIC_ICR_LOW 0x300
#define LAPIC_ICR_HIGH 0x310
#define TRAMPOLINE 0x10000
#define ICR_ALL_BUT_SELF (3u << 18)
#define ICR_INIT (5u << 8)
#define ICR_STARTUP (6u << 8)
#define ICR_ASSERT (1u << 14)

static bool wait_aps(uint32_t want, uint64_t us) {
  const uint64_t end = rdtsc() + us * tsc_khz() / 1000;
  while (ap_done < want && rdtsc() < end) cpu_relax();
  return ap_done >= want;
}

void test_smp(void) {
  const uint32_t n = (uint32_t)cmdline_u64("expect_cpus", 1);
  /* CPUID as the kernel-mode entry recorded it (see RECORD_CPU in entry.S for why not here). */
  check(bsp_info[3] == 0xa9a9a9a9 && bsp_info[0] == 0 && bsp_info[1] == 0 && bsp_info[2] == n, "smp.bsp",
        "APIC id %u, x2APIC id %u, %u logical CPUs (expected 0, 0, %u)", bsp_info[0], bsp_info[1], bsp_info[2], n);
  uint32_t r[4];
  cpuid(1, 0, r);
  gprintf("smp: CPUID at CPL3 says APIC id %u (under PVM that is the host CPU's answer)\n", r[1] >> 24);
  if (n > 1) {
    memcpy(phys(TRAMPOLINE), ap_tramp_start, (size_t)(ap_tramp_end - ap_tramp_start));
    const uint64_t t0 = rdtsc();
    mmio_write32(LAPIC + LAPIC_SVR, 0x1ff); /* software-enable the local APIC, spurious vector 0xff */
    mmio_write32(LAPIC + LAPIC_ICR_HIGH, 0);
    mmio_write32(LAPIC + LAPIC_ICR_LOW, ICR_ALL_BUT_SELF | ICR_ASSERT | ICR_INIT);
    mmio_write32(LAPIC + LAPIC_ICR_LOW, ICR_ALL_BUT_SELF | ICR_ASSERT | ICR_STARTUP | (TRAMPOLINE >> 12));
    /* The MP protocol sends a second STARTUP when the first was missed; harmless otherwise. */
    if (!wait_aps(n - 1, 200000))
      mmio_write32(LAPIC + LAPIC_ICR_LOW, ICR_ALL_BUT_SELF | ICR_ASSERT | ICR_STARTUP | (TRAMPOLINE >> 12));
    bool up = wait_aps(n - 1, 3000000);
    const uint64_t us = (rdtsc() - t0) * 1000 / tsc_khz();
    check(up, "smp.aps_started", "%u of %u APs reported in", ap_done, n - 1);
    gprintf("smp: %u APs up in %lu us\n", ap_done, us);
  }
  uint32_t seen = 1; /* bit i: APIC id i reported (the BSP's is 0) */
  bool consistent = true;
  for (uint32_t i = 0; i < ap_done && i < 32; i++) {
    const volatile uint32_t* a = ap_info[i];
    gprintf("smp: cpu apic=%u x2apic=%u logical=%u\n", a[0], a[1], a[2]);
    if (a[3] != 0xa9a9a9a9 || a[0] != a[1] || a[2] != n || a[0] >= 32 || (seen & (1u << a[0]))) consistent = false;
    else seen |= 1u << a[0];
  }
  check(consistent && seen == (n >= 32 ? 0xffffffffu : (1u << n) - 1), "smp.apic_ids",
        "APIC ids not distinct 0..%u or CPUID topology inconsistent (seen mask 0x%x)", n - 1, seen);
}
