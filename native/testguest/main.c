/* The test guest's user-mode entry: finds the command line the VMM passed, runs the test named by
 * vctest=NAME, reports, and ends the VM. One program serves every test so that each one runs
 * through both loaders (bzImage and PVH ELF) without a second build. */
#include "rt.h"
#include "tests.h"

static const char* find_cmdline(int kind, uint64_t info) {
  if (kind == BOOT_BZIMAGE) {
    /* boot_params: hdr.cmd_line_ptr at 0x228, ext_cmd_line_ptr (bits 63:32) at 0x0c8 */
    const uint8_t* zp = phys(info);
    uint64_t ptr = *(const uint32_t*)(zp + 0x228) | (uint64_t) * (const uint32_t*)(zp + 0x0c8) << 32;
    return ptr ? phys(ptr) : "";
  }
  if (kind == BOOT_PVH) {
    const uint8_t* si = phys(info);
    if (*(const uint32_t*)si != 0x336ec578) return "";
    uint64_t ptr = *(const uint64_t*)(si + 24);
    return ptr ? phys(ptr) : "";
  }
  return "";
}

static void test_hello(void) { gprintf("ready\n"); }

/* vctest=idle first on the command line never gets here: entry.S halts at CPL0 (no host CPU).
 * Anywhere else on the line it lands here and spins in user mode until the VMM stops the VM. */
static void test_idle(void) {
  gprintf("ready\n");
  for (;;) cpu_relax();
}

/* vctest=count: counts in memory and prints the count every 20 ms of TSC time, forever: the
 * snapshot test (test/kvm/vmm-snapshot.test.ts) stops it by a snapshot and checks that a VM
 * restored from it goes on from the count it had, without booting again. */
static volatile uint64_t g_count;
static void test_count(void) {
  gprintf("ready\n");
  const uint64_t step = tsc_khz() * 20;
  uint64_t next = rdtsc() + step;
  for (;;) {
    g_count++;
    if (rdtsc() >= next) {
      gprintf("count %llu\n", (unsigned long long)g_count);
      next = rdtsc() + step;
    }
  }
}

struct test {
  const char* name;
  void (*run)(void);
};

static const struct test kTests[] = {
    {"hello", test_hello},       {"boot", test_boot},         {"smp", test_smp},
    {"perf", test_perf},         {"vsock", test_vsock},       {"blk", test_blk},
    {"badchain", test_badchain}, {"hotplug", test_hotplug},   {"rng", test_rng},
    {"idle", test_idle},         {"count", test_count},
};

__attribute__((noreturn)) void guest_entry(uint64_t kind, uint64_t info) {
  /* The first thing the host can time: one debug-port write right after entering user mode. */
  outb(DEBUG_PORT, 0x01);
  g_boot_kind = (int)kind;
  g_boot_info = info;
  g_cmdline = find_cmdline((int)kind, info);
  char name[32];
  if (!cmdline_get("vctest", name, sizeof name)) {
    gprintf("ready\nno vctest= on the command line \"%s\"\n", g_cmdline);
    guest_exit();
  }
  gprintf("vctest %s boot=%s\n", name, kind == BOOT_BZIMAGE ? "bzimage" : "pvh");
  bool found = false;
  for (size_t i = 0; i < sizeof kTests / sizeof kTests[0]; i++) {
    if (strncmp(kTests[i].name, name, sizeof name) == 0) {
      found = true;
      kTests[i].run();
    }
  }
  if (!found) check(false, "dispatch", "unknown test \"%s\"", name);
  gprintf("vctest done failures=%d\n", g_failures);
  guest_exit();
}
