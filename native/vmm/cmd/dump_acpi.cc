// vc-vmm dump-acpi --vcpus N --slots K [--i8042] [--sleep-port P] OUTDIR
// Writes the ACPI tables the VMM would give such a guest as OUTDIR/{RSDP,XSDT,FACP,APIC,DSDT}.dat
// (one table per file, as `iasl -d` wants them) and prints one line per table.
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "arch/x86/acpi.h"

namespace {

bool ParseUint(const char* s, unsigned long max, unsigned long* out) {
  if (!s || !*s) return false;
  char* end = nullptr;
  errno = 0;
  const unsigned long v = std::strtoul(s, &end, 0);
  if (errno || *end || v > max || s[0] == '-') return false;
  *out = v;
  return true;
}

int Usage(const char* why) {
  std::fprintf(stderr, "vc-vmm dump-acpi: %s\nusage: vc-vmm dump-acpi --vcpus N --slots K [--i8042] [--sleep-port P] OUTDIR\n", why);
  return 2;
}

}  // namespace

int DumpAcpiMain(int argc, char** argv) {
  vmm::x86::AcpiConfig config;
  const char* outdir = nullptr;
  bool have_vcpus = false, have_slots = false;
  for (int i = 1; i < argc; i++) {
    const std::string arg = argv[i];
    unsigned long v = 0;
    if (arg == "--vcpus" || arg == "--slots" || arg == "--sleep-port") {
      if (i + 1 >= argc) return Usage((arg + " needs a value").c_str());
      const char* value = argv[++i];
      const unsigned long max = arg == "--vcpus" ? 254 : arg == "--slots" ? vmm::x86::layout::kVirtioMaxSlots : 0xffff;
      if (!ParseUint(value, max, &v) || (arg == "--vcpus" && v == 0))
        return Usage((arg + " " + value + " is not a number in " + (arg == "--vcpus" ? "1" : "0") + ".." +
                      std::to_string(max)).c_str());
      if (arg == "--vcpus") config.vcpus = uint32_t(v), have_vcpus = true;
      else if (arg == "--slots") config.virtio_slots = uint32_t(v), have_slots = true;
      else config.sleep_port = uint16_t(v);
    } else if (arg == "--i8042") {
      config.i8042 = true;
    } else if (arg.rfind("--", 0) == 0 || outdir) {
      return Usage(("unexpected argument " + arg).c_str());
    } else {
      outdir = argv[i];
    }
  }
  if (!have_vcpus || !have_slots || !outdir) return Usage("--vcpus, --slots and OUTDIR are required");

  auto tables = vmm::x86::BuildAcpiTables(config);
  if (!tables.ok()) {
    std::fprintf(stderr, "vc-vmm dump-acpi: %s\n", tables.error().c_str());
    return 1;
  }
  if (mkdir(outdir, 0755) != 0 && errno != EEXIST) {
    std::fprintf(stderr, "vc-vmm dump-acpi: cannot create %s: %s\n", outdir, std::strerror(errno));
    return 1;
  }
  for (const auto& t : tables->tables) {
    const std::string path = std::string(outdir) + "/" + t.name + ".dat";
    FILE* f = std::fopen(path.c_str(), "wb");
    const bool ok = f && std::fwrite(t.bytes.data(), 1, t.bytes.size(), f) == t.bytes.size();
    if (!f || std::fclose(f) != 0 || !ok) {
      std::fprintf(stderr, "vc-vmm dump-acpi: cannot write %s: %s\n", path.c_str(), std::strerror(errno));
      return 1;
    }
    std::printf("%s 0x%llx %zu\n", path.c_str(), (unsigned long long)t.addr, t.bytes.size());
  }
  return 0;
}
