// Helpers shared by the arch_* unit tests: guest RAM backed by an anonymous mapping (pages cost
// nothing until touched), little-endian field access on byte vectors, the Debian cloud kernel from
// the project's cache (tests that use it print "SKIP name: reason" when it is absent), and an LZ4
// legacy-frame decoder to get the ELF vmlinux out of that bzImage's payload.
#pragma once

#include <glob.h>
#include <sys/mman.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "guest_memory.h"

namespace vmm::test {

class TestRam {
 public:
  explicit TestRam(uint64_t size) : size_(size) {
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    host_ = p == MAP_FAILED ? nullptr : static_cast<uint8_t*>(p);
  }
  ~TestRam() {
    if (host_) munmap(host_, size_);
  }
  TestRam(const TestRam&) = delete;
  TestRam& operator=(const TestRam&) = delete;
  GuestMemory mem() const { return host_ ? GuestMemory(host_, size_) : GuestMemory(); }
  uint8_t* host() const { return host_; }

 private:
  uint8_t* host_ = nullptr;
  uint64_t size_ = 0;
};

template <typename T>
T Le(const std::vector<uint8_t>& b, size_t off) {
  T v{};
  if (off + sizeof v <= b.size()) std::memcpy(&v, b.data() + off, sizeof v);
  return v;
}
template <typename T>
void SetLe(std::vector<uint8_t>* b, size_t off, T v) {
  if (off + sizeof v <= b->size()) std::memcpy(b->data() + off, &v, sizeof v);
}
template <typename T>
T MemLoad(const GuestMemory& mem, uint64_t gpa) {
  T v{};
  mem.load(gpa, &v);
  return v;
}

inline bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// The Debian cloud kernel bzImage in the project's cache, or "" (with *why set) when absent.
inline std::string FindDebianKernel(std::string* why) {
  // The same cache directory as src/guest/cache.ts: VC_CACHE_DIR, else an absolute
  // $XDG_CACHE_HOME/virtcontainers, else ~/.cache/virtcontainers.
  const char* vc = std::getenv("VC_CACHE_DIR");
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  const std::string cache = vc && *vc                ? std::string(vc)
                            : xdg && xdg[0] == '/' ? std::string(xdg) + "/virtcontainers"
                                                   : std::string(home ? home : "/root") + "/.cache/virtcontainers";
  // The cloud flavour: the cache also holds the generic kernel the nested-KVM harness boots as L1.
  const std::string pattern = cache + "/kernels/*-cloud-amd64_*/boot/vmlinuz-*-cloud-amd64";
  glob_t g{};
  std::string found;
  if (glob(pattern.c_str(), 0, nullptr, &g) == 0 && g.gl_pathc > 0) found = g.gl_pathv[0];
  globfree(&g);
  if (found.empty()) *why = "no Debian cloud kernel matches " + pattern + " (fetch it with the project's kernel cache)";
  return found;
}

inline bool ReadFile(const std::string& path, std::vector<uint8_t>* out) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  out->clear();
  uint8_t buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out->insert(out->end(), buf, buf + n);
  std::fclose(f);
  return true;
}

// LZ4 legacy frame (magic 0x184c2102, then blocks of {u32 compressed size, LZ4 block}), as the
// kernel's CONFIG_KERNEL_LZ4 payload uses (followed by the decompressed size as a u32). Returns
// false on malformed input.
inline bool Lz4LegacyDecode(const uint8_t* in, size_t size, std::vector<uint8_t>* out) {
  if (size < 4 || in[0] != 0x02 || in[1] != 0x21 || in[2] != 0x4c || in[3] != 0x18) return false;
  size_t pos = 4;
  out->clear();
  while (pos + 4 <= size) {
    uint32_t block;
    std::memcpy(&block, in + pos, 4);
    if (block == 0x184c2102u) { pos += 4; continue; }  // concatenated frames
    pos += 4;
    if (block > size - pos) return pos == size;  // the kernel build appends the size: a last u32
    const uint8_t* p = in + pos;
    const uint8_t* end = p + block;
    pos += block;
    while (p < end) {
      const uint8_t token = *p++;
      size_t lit = token >> 4;
      if (lit == 15) { uint8_t b; do { if (p >= end) return false; b = *p++; lit += b; } while (b == 255); }
      if (lit > size_t(end - p)) return false;
      out->insert(out->end(), p, p + lit);
      p += lit;
      if (p >= end) break;  // the last sequence has literals only
      if (end - p < 2) return false;
      const size_t offset = p[0] | (p[1] << 8);
      p += 2;
      size_t match = token & 15;
      if (match == 15) { uint8_t b; do { if (p >= end) return false; b = *p++; match += b; } while (b == 255); }
      match += 4;
      if (offset == 0 || offset > out->size()) return false;
      const size_t from = out->size() - offset;
      for (size_t i = 0; i < match; i++) out->push_back((*out)[from + i]);
    }
  }
  return true;
}

}  // namespace vmm::test
