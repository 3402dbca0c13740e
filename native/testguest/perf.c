/* vctest=perf: what things cost on this host, measured by the TSC from user mode: a tight loop
 * (native), a port-I/O exit to the VMM (debug port), an MMIO exit to the VMM (a virtio-mmio
 * register read). Prints one PERF line; the host converts nothing, tsc_khz= gives the rate. */
#include "rt.h"
#include "tests.h"
#include "virtio.h"

static uint64_t ns(uint64_t cycles) { return cycles * 1000000 / tsc_khz(); }

void test_perf(void) {
  const uint64_t iters = 100000000;
  uint64_t t0 = rdtsc(), count = iters;
  __asm__ volatile("1: dec %0\n jnz 1b" : "+r"(count));
  const uint64_t loop = rdtsc() - t0;

  const unsigned n = 200;
  t0 = rdtsc();
  for (unsigned i = 0; i < n; i++) outb(DEBUG_PORT, (uint8_t)i);
  const uint64_t pio = (rdtsc() - t0) / n;

  uint64_t mmio = 0;
  if (mmio_read32(VIRTIO_MMIO_BASE) == VIRTIO_MAGIC) {
    t0 = rdtsc();
    for (unsigned i = 0; i < n; i++) (void)mmio_read32(VIRTIO_MMIO_BASE + 4);
    mmio = (rdtsc() - t0) / n;
  }
  gprintf("PERF loop_ps_per_iter=%lu pio_exit_ns=%lu mmio_exit_ns=%lu\n", ns(loop) * 1000 / iters, ns(pio), ns(mmio));
  check(loop > 0 && pio > 0, "perf", "no measurement");
}
