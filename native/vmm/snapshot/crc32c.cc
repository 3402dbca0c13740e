// SSE4.2's crc32 instruction where the CPU has it (every x86-64 since 2008; eight bytes per
// instruction) and it is the faster of the two, else a table eight bytes at a time
// ("slicing-by-8"). The writer checksums all of RAM once (MemoryFileInfo::ram_crc), so the speed
// matters: the measured figures are in docs/snapshots.md. "The faster": under an emulator that
// advertises SSE4.2 but runs crc32 through a slow helper (QEMU's TCG, i.e. the nested harness's
// L1: 91 MB/s against the table's 559) the table wins, so the first call times both once.
#include "snapshot/crc32c.h"

#include <time.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace vmm::snapshot {
namespace {

constexpr uint32_t kPolyReflected = 0x82f63b78;

struct Tables {
  uint32_t t[8][256];
};

constexpr Tables MakeTables() {
  Tables tables{};
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ kPolyReflected : c >> 1;
    tables.t[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; i++)
    for (int s = 1; s < 8; s++) tables.t[s][i] = (tables.t[s - 1][i] >> 8) ^ tables.t[0][tables.t[s - 1][i] & 0xff];
  return tables;
}

constexpr Tables kTables = MakeTables();

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t HardwareCrc(uint32_t c, const uint8_t* p, size_t len) {
  uint64_t c64 = c;
  while (len >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c64 = __builtin_ia32_crc32di(c64, v);
    p += 8;
    len -= 8;
  }
  c = static_cast<uint32_t>(c64);
  while (len--) c = __builtin_ia32_crc32qi(c, *p++);
  return c;
}

uint64_t Nanos() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

// Whether the instruction beats the table here: the best of three runs of each over 16 KiB
// (microseconds on hardware, a fraction of a millisecond under TCG).
bool HardwareIsFaster() {
  static uint8_t sample[16 * 1024];
  uint64_t hw = ~0ull, table = ~0ull;
  for (int i = 0; i < 3; i++) {
    uint64_t t0 = Nanos();
    volatile uint32_t sink = HardwareCrc(0, sample, sizeof sample);
    uint64_t t1 = Nanos();
    sink = Crc32cPortable(0, sample, sizeof sample);
    uint64_t t2 = Nanos();
    (void)sink;
    hw = std::min(hw, t1 - t0);
    table = std::min(table, t2 - t1);
  }
  return hw <= table;
}

bool UseHardware() {
  static const bool use = __builtin_cpu_supports("sse4.2") && HardwareIsFaster();
  return use;
}
#endif

}  // namespace

uint32_t Crc32c(uint32_t crc, const void* data, size_t len) {
#if defined(__x86_64__)
  if (UseHardware()) return ~HardwareCrc(~crc, static_cast<const uint8_t*>(data), len);
#endif
  return Crc32cPortable(crc, data, len);
}

uint32_t Crc32cPortable(uint32_t crc, const void* data, size_t len) {
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t c = ~crc;
  while (len >= 8) {
    uint32_t lo, hi;
    std::memcpy(&lo, p, 4);  // the file formats are little-endian, and so is x86
    std::memcpy(&hi, p + 4, 4);
    lo ^= c;
    c = kTables.t[7][lo & 0xff] ^ kTables.t[6][(lo >> 8) & 0xff] ^ kTables.t[5][(lo >> 16) & 0xff] ^
        kTables.t[4][lo >> 24] ^ kTables.t[3][hi & 0xff] ^ kTables.t[2][(hi >> 8) & 0xff] ^
        kTables.t[1][(hi >> 16) & 0xff] ^ kTables.t[0][hi >> 24];
    p += 8;
    len -= 8;
  }
  while (len--) c = (c >> 8) ^ kTables.t[0][(c ^ *p++) & 0xff];
  return ~c;
}

}  // namespace vmm::snapshot
