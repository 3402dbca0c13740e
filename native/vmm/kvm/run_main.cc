// Placeholder until the KVM core lands (issue 4): fails loudly rather than pretending to run.
#include <cstdio>

int RunVmMain(int, char**) {
  std::fprintf(stderr, "vc-vmm run: the KVM core is not built yet\n");
  return 1;
}
