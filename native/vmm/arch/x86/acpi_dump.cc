// Placeholder until the ACPI writers land (issue 4): fails loudly rather than writing nothing.
#include <cstdio>

int DumpAcpiMain(int, char**) {
  std::fprintf(stderr, "vc-vmm dump-acpi: ACPI table writers are not built yet\n");
  return 1;
}
