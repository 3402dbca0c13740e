// Runs every registered VMM unit test (or those whose names contain argv[1]) and prints one line
// per test: "ok NAME" or "FAIL NAME: what" (test/native/vmm.test.ts turns these into uvu tests).
#include <cstring>

#include "tests/check.h"

namespace vmm::test {

std::vector<Case>& registry() {
  static std::vector<Case> cases;
  return cases;
}

static std::vector<std::string>* current_failures = nullptr;

void fail(const char* file, int line, const std::string& what) {
  if (current_failures) current_failures->push_back(std::string(file) + ":" + std::to_string(line) + ": " + what);
}

}  // namespace vmm::test

int main(int argc, char** argv) {
  int passed = 0, failed = 0;
  for (const auto& c : vmm::test::registry()) {
    if (argc > 1 && !std::strstr(c.name, argv[1])) continue;
    std::vector<std::string> failures;
    vmm::test::current_failures = &failures;
    c.fn();
    vmm::test::current_failures = nullptr;
    if (failures.empty()) {
      std::printf("ok %s\n", c.name);
      passed++;
    } else {
      for (const auto& f : failures) std::printf("FAIL %s: %s\n", c.name, f.c_str());
      failed++;
    }
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 && passed > 0 ? 0 : 1;
}
