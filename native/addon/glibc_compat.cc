// The addon links libstdc++ statically (the C++ runtime on users' hosts varies; glibc is what
// prebuilds may assume). libstdc++.a brings its std::random_device object along with the string
// instantiations, and that object calls arc4random, which glibc has only since 2.36. Nothing in
// the addon uses random_device, so a local, hidden arc4random satisfies the reference and keeps
// the addon's glibc floor at the newest version the rest of it needs (2.34; docs/packaging.md).
#include <sys/random.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>

extern "C" __attribute__((visibility("hidden"))) uint32_t arc4random(void) {
  uint32_t value;
  for (;;) {
    ssize_t n = getrandom(&value, sizeof value, 0);
    if (n == ssize_t(sizeof value)) return value;
    if (n < 0 && errno != EINTR) std::abort();  // getrandom cannot fail with a valid buffer
  }
}
