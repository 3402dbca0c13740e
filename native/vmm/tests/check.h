// A very small test registry for the VMM's C++ unit tests (no dependencies). Each test is a
// function; CHECK records a failure with file and line and lets the test continue.
#pragma once

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace vmm::test {

struct Case {
  const char* name;
  void (*fn)();
};

std::vector<Case>& registry();
void fail(const char* file, int line, const std::string& what);

struct Registrar {
  Registrar(const char* name, void (*fn)()) { registry().push_back({name, fn}); }
};

}  // namespace vmm::test

#define VMM_TEST(name)                                                         \
  static void vmm_test_##name();                                               \
  static ::vmm::test::Registrar vmm_registrar_##name(#name, vmm_test_##name); \
  static void vmm_test_##name()

#define CHECK(cond)                                                      \
  do {                                                                   \
    if (!(cond)) ::vmm::test::fail(__FILE__, __LINE__, "CHECK(" #cond ")"); \
  } while (0)

#define CHECK_EQ(a, b)                                                                     \
  do {                                                                                     \
    auto vmm_a_ = (a);                                                                     \
    auto vmm_b_ = (b);                                                                     \
    if (!(vmm_a_ == vmm_b_))                                                               \
      ::vmm::test::fail(__FILE__, __LINE__,                                                \
                        "CHECK_EQ(" #a ", " #b "): " + std::to_string(vmm_a_) + " != " + \
                            std::to_string(vmm_b_));                                       \
  } while (0)

// `result` (a vc::Result or vc::Status) must be an error whose message contains `part`.
#define CHECK_ERROR(result, part)                                                                      \
  do {                                                                                                 \
    auto&& r_ = (result);                                                                              \
    const std::string part_ = (part);                                                                  \
    if (r_.ok())                                                                                       \
      ::vmm::test::fail(__FILE__, __LINE__, "expected an error with \"" + part_ + "\"");               \
    else if (r_.error().find(part_) == std::string::npos)                                              \
      ::vmm::test::fail(__FILE__, __LINE__, "error \"" + r_.error() + "\" lacks \"" + part_ + "\"");   \
  } while (0)
