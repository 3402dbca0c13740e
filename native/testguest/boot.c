/* vctest=boot: checks everything the loader handed over, as a kernel would read it.
 * Expected values come from the command line the host test wrote:
 *   expect_mem_mib=N expect_cpus=N expect_slots=N expect_initrd=BYTES (0: none) marker=WORD */
#include "rt.h"
#include "tests.h"

struct mem_range {
  uint64_t addr, size;
  uint32_t type;
};

#define MAX_RANGES 128

static unsigned read_memory_map(struct mem_range* out) {
  unsigned n = 0;
  if (g_boot_kind == BOOT_BZIMAGE) {
    const uint8_t* zp = phys(g_boot_info);
    unsigned count = zp[0x1e8];
    for (unsigned i = 0; i < count && i < MAX_RANGES; i++) {
      const uint8_t* e = zp + 0x2d0 + i * 20;
      memcpy(&out[n].addr, e, 8);
      memcpy(&out[n].size, e + 8, 8);
      memcpy(&out[n].type, e + 16, 4);
      n++;
    }
  } else {
    const uint8_t* si = phys(g_boot_info);
    const uint8_t* map = phys(*(const uint64_t*)(si + 40));
    unsigned count = *(const uint32_t*)(si + 48);
    for (unsigned i = 0; i < count && i < MAX_RANGES; i++) {
      const uint8_t* e = map + i * 24;
      memcpy(&out[n].addr, e, 8);
      memcpy(&out[n].size, e + 8, 8);
      memcpy(&out[n].type, e + 16, 4);
      n++;
    }
  }
  return n;
}

static void check_boot_structure(void) {
  if (g_boot_kind == BOOT_BZIMAGE) {
    const uint8_t* zp = phys(g_boot_info);
    check(memcmp(zp + 0x202, "HdrS", 4) == 0, "zeropage.header", "no HdrS at 0x202");
    check(zp[0x210] != 0, "zeropage.type_of_loader", "type_of_loader is 0");
    check(*(const uint16_t*)(zp + 0x206) == 0x020f, "zeropage.version", "version 0x%x",
          *(const uint16_t*)(zp + 0x206));
  } else {
    const uint8_t* si = phys(g_boot_info);
    check(*(const uint32_t*)si == 0x336ec578, "start_info.magic", "magic 0x%x", *(const uint32_t*)si);
    check(*(const uint32_t*)(si + 4) >= 1, "start_info.version", "version %u", *(const uint32_t*)(si + 4));
  }
}

static void check_memory_map(void) {
  static struct mem_range r[MAX_RANGES];
  unsigned n = read_memory_map(r);
  const uint64_t want = cmdline_u64("expect_mem_mib", 0) << 20;
  uint64_t ram_end = 0, prev_end = 0;
  bool sorted = true, low_ram = false, image_in_ram = false;
  for (unsigned i = 0; i < n; i++) {
    if (r[i].addr < prev_end) sorted = false;
    prev_end = r[i].addr + r[i].size;
    if (r[i].type != 1) continue;
    if (r[i].addr + r[i].size > ram_end) ram_end = r[i].addr + r[i].size;
    if (r[i].addr == 0 && r[i].size >= 0x9f000) low_ram = true;
    if (r[i].addr <= 0x100000 && r[i].addr + r[i].size >= 0x200000) image_in_ram = true;
  }
  check(n >= 3, "memmap.entries", "%u entries", n);
  check(sorted, "memmap.sorted", "entries overlap or are out of order");
  check(low_ram, "memmap.low_ram", "no RAM entry at 0 covering 636 KiB");
  check(image_in_ram, "memmap.kernel_ram", "the kernel at 1 MiB is not in a RAM entry");
  check(ram_end == want, "memmap.ram_end", "RAM ends at 0x%lx, expected 0x%lx", ram_end, want);
}

static void check_cmdline(void) {
  char marker[32];
  check(cmdline_get("marker", marker, sizeof marker) && strlen(marker) > 0, "cmdline.marker",
        "no marker= in \"%s\"", g_cmdline);
  if (g_boot_kind == BOOT_BZIMAGE) {
    const uint8_t* zp = phys(g_boot_info);
    uint32_t size = *(const uint32_t*)(zp + 0x238);
    check(strlen(g_cmdline) <= size, "cmdline.size", "%u bytes exceed cmdline_size %u", (unsigned)strlen(g_cmdline),
          size);
  }
}

static void check_initrd(void) {
  const uint64_t want = cmdline_u64("expect_initrd", 0);
  uint64_t addr = 0, size = 0;
  if (g_boot_kind == BOOT_BZIMAGE) {
    const uint8_t* zp = phys(g_boot_info);
    addr = *(const uint32_t*)(zp + 0x218) | (uint64_t) * (const uint32_t*)(zp + 0x0c0) << 32;
    size = *(const uint32_t*)(zp + 0x21c) | (uint64_t) * (const uint32_t*)(zp + 0x0c4) << 32;
  } else {
    const uint8_t* si = phys(g_boot_info);
    if (*(const uint32_t*)(si + 12) >= 1) {
      const uint8_t* mod = phys(*(const uint64_t*)(si + 16));
      addr = *(const uint64_t*)mod;
      size = *(const uint64_t*)(mod + 8);
    }
  }
  check(size == want, "initrd.size", "%lu bytes, expected %lu", size, want);
  if (want && size == want) {
    /* The host wrote "VCINITRD" at the start and "END!" in the last 4 bytes. */
    const uint8_t* p = phys(addr);
    check((addr & 0xfff) == 0 && memcmp(p, "VCINITRD", 8) == 0 && memcmp(p + size - 4, "END!", 4) == 0,
          "initrd.content", "at 0x%lx: bad alignment or content", addr);
  }
}

static uint8_t sum(const void* p, size_t n) {
  uint8_t s = 0;
  const uint8_t* b = p;
  while (n--) s += *b++;
  return s;
}

static uint64_t rsdp_address(void) {
  if (g_boot_kind == BOOT_BZIMAGE) return *(const uint64_t*)((const uint8_t*)phys(g_boot_info) + 0x070);
  return *(const uint64_t*)((const uint8_t*)phys(g_boot_info) + 32);
}

/* A table by its physical address, after checking signature, length and checksum. */
static const uint8_t* acpi_table(uint64_t addr, const char* sig) {
  const uint8_t* t = phys(addr);
  uint32_t len = *(const uint32_t*)(t + 4);
  char what[32] = "acpi.";
  memcpy(what + 5, sig, 4);
  bool ok = memcmp(t, sig, 4) == 0 && len >= 36 && len < 0x20000 && sum(t, len) == 0;
  check(ok, what, "table at 0x%lx: signature, length %u or checksum wrong", addr, len);
  return ok ? t : 0;
}

static void check_acpi(void) {
  const uint64_t expect_cpus = cmdline_u64("expect_cpus", 1), expect_slots = cmdline_u64("expect_slots", 0);
  const uint64_t handed = rsdp_address();
  /* An OSPM that is not told scans the BIOS area on 16-byte boundaries: it must find the same. */
  uint64_t scanned = 0;
  for (uint64_t a = 0xe0000; a < 0x100000 && !scanned; a += 16)
    if (memcmp(phys(a), "RSD PTR ", 8) == 0 && sum(phys(a), 20) == 0) scanned = a;
  check(handed != 0 && handed == scanned, "acpi.rsdp_address", "handed 0x%lx, scan found 0x%lx", handed, scanned);
  if (!handed) return;
  const uint8_t* rsdp = phys(handed);
  check(memcmp(rsdp, "RSD PTR ", 8) == 0 && sum(rsdp, 20) == 0 && rsdp[15] >= 2 && sum(rsdp, 36) == 0,
        "acpi.RSDP", "signature, revision %u or checksums wrong", rsdp[15]);
  const uint8_t* xsdt = acpi_table(*(const uint64_t*)(rsdp + 24), "XSDT");
  if (!xsdt) return;
  const uint8_t *fadt = 0, *madt = 0;
  uint32_t entries = (*(const uint32_t*)(xsdt + 4) - 36) / 8;
  for (uint32_t i = 0; i < entries; i++) {
    uint64_t addr;
    memcpy(&addr, xsdt + 36 + i * 8, 8);
    const uint8_t* t = phys(addr);
    if (memcmp(t, "FACP", 4) == 0) fadt = acpi_table(addr, "FACP");
    if (memcmp(t, "APIC", 4) == 0) madt = acpi_table(addr, "APIC");
  }
  check(fadt && madt, "acpi.xsdt_entries", "XSDT lacks FACP or APIC (%u entries)", entries);
  if (fadt) {
    uint64_t dsdt_addr = *(const uint32_t*)(fadt + 40);
    if (*(const uint32_t*)(fadt + 4) >= 148) {
      uint64_t x;
      memcpy(&x, fadt + 140, 8);
      if (x) dsdt_addr = x;
    }
    const uint8_t* dsdt = acpi_table(dsdt_addr, "DSDT");
    if (dsdt) {
      unsigned n = count_bytes(dsdt, *(const uint32_t*)(dsdt + 4), "LNRO0005", 8);
      check(n == expect_slots, "acpi.dsdt_virtio", "%u LNRO0005 devices, expected %lu", n, expect_slots);
    }
  }
  if (madt) {
    uint32_t len = *(const uint32_t*)(madt + 4), lapics = 0, ioapics = 0;
    for (uint32_t off = 44; off + 2 <= len && madt[off + 1] >= 2; off += madt[off + 1]) {
      if (madt[off] == 0 && (*(const uint32_t*)(madt + off + 4) & 1)) lapics++;
      if (madt[off] == 1 && *(const uint32_t*)(madt + off + 4) == 0xfec00000) ioapics++;
    }
    check(lapics == expect_cpus && ioapics == 1, "acpi.madt", "%u enabled local APICs (expected %lu), %u IOAPICs",
          lapics, expect_cpus, ioapics);
  }
}

void test_boot(void) {
  check_boot_structure();
  check_memory_map();
  check_cmdline();
  check_initrd();
  check_acpi();
}
