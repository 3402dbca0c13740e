// vc-vmm-bpf-gen OUT.h: compiles each thread kind's seccomp filter (filters.cc) to BPF at build
// time and writes it as C++ arrays for seccomp/built_in.cc, so a starting vc-vmm copies its filters
// instead of running libseccomp's compiler (~1.2 ms of CPU per VM, the largest part of creating one
// that was not KVM's own).
//
// The one value known only at run time is vc-vmm's pid in the tgkill entry. The generator compiles
// every list twice, with two different stand-in pids, and records the instructions where the two
// programs differ; it refuses to write anything unless they differ only there, only in the
// constant, and each such constant is the stand-in — so patching those instructions with the real
// pid gives exactly what libseccomp would have compiled for it (a unit test compares the two).
#include <cstdio>
#include <string>
#include <vector>

#include "seccomp/filters.h"

namespace vmm::seccomp {
const BuiltInBpf* BuiltInFilter(ThreadKind) { return nullptr; }  // the generator has none
}  // namespace vmm::seccomp

namespace {

using vmm::ThreadKind;

// Stand-in pids: above any real pid (pid_max is at most 2^22) and unlike any other constant in
// the lists (syscall numbers, ioctl numbers, flags).
constexpr uint32_t kStandInA = 0x5ecc0a11;
constexpr uint32_t kStandInB = 0x5ecc0b22;

struct Kind {
  ThreadKind kind;
  const char* name;
};

bool Fail(const char* kind, const std::string& why) {
  std::fprintf(stderr, "vc-vmm-bpf-gen: the %s thread's filter: %s\n", kind, why.c_str());
  return false;
}

bool Emit(const Kind& k, std::string* out) {
  auto a = vmm::seccomp::Compile(k.kind, kStandInA);
  auto b = vmm::seccomp::Compile(k.kind, kStandInB);
  if (!a.ok()) return Fail(k.name, a.error());
  if (!b.ok()) return Fail(k.name, b.error());
  const std::vector<sock_filter>& pa = a.value();
  const std::vector<sock_filter>& pb = b.value();
  if (pa.size() != pb.size())
    return Fail(k.name, "its length depends on the pid (" + std::to_string(pa.size()) + " vs " + std::to_string(pb.size()) + " instructions)");
  std::vector<size_t> self_at;
  for (size_t i = 0; i < pa.size(); i++) {
    const bool same_shape = pa[i].code == pb[i].code && pa[i].jt == pb[i].jt && pa[i].jf == pb[i].jf;
    if (!same_shape) return Fail(k.name, "instruction " + std::to_string(i) + " changes shape with the pid");
    if (pa[i].k == pb[i].k) {
      if (pa[i].k == kStandInA || pa[i].k == kStandInB) return Fail(k.name, "a stand-in pid appears as another constant");
      continue;
    }
    if (pa[i].k != kStandInA || pb[i].k != kStandInB)
      return Fail(k.name, "instruction " + std::to_string(i) + "'s constant changes with the pid but is not it");
    self_at.push_back(i);
  }
  if (self_at.empty()) return Fail(k.name, "no instruction holds the pid (the tgkill entry is missing)");

  char line[96];
  *out += "constexpr sock_filter k" + std::string(k.name) + "Program[] = {\n";
  for (const sock_filter& f : pa) {
    std::snprintf(line, sizeof line, "    {0x%04x, %u, %u, 0x%08x},\n", unsigned(f.code), unsigned(f.jt), unsigned(f.jf), unsigned(f.k));
    *out += line;
  }
  *out += "};\nconstexpr uint16_t k" + std::string(k.name) + "SelfAt[] = {";
  for (size_t i = 0; i < self_at.size(); i++) *out += (i ? ", " : "") + std::to_string(self_at[i]);
  *out += "};\n\n";
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: vc-vmm-bpf-gen OUT.h\n");
    return 2;
  }
  std::string out =
      "// Generated when vc-vmm was built, by vc-vmm-bpf-gen (native/vmm/seccomp/bpf_gen.cc) from the\n"
      "// lists in native/vmm/seccomp/filters.cc. Do not edit: change the lists and rebuild.\n"
      "#pragma once\n\n#include <linux/filter.h>\n\n#include <cstdint>\n\n"
      "namespace vmm::seccomp::generated {\n\n";
  const Kind kinds[] = {{ThreadKind::kMain, "Main"}, {ThreadKind::kDevice, "Device"}, {ThreadKind::kVcpu, "Vcpu"}};
  for (const Kind& k : kinds)
    if (!Emit(k, &out)) return 1;
  out += "}  // namespace vmm::seccomp::generated\n";

  const std::string tmp = std::string(argv[1]) + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (!f) return Fail("every", "cannot write " + tmp), 1;
  const bool written = std::fwrite(out.data(), 1, out.size(), f) == out.size();
  if (std::fclose(f) != 0 || !written || std::rename(tmp.c_str(), argv[1]) != 0) return Fail("every", "cannot write " + std::string(argv[1])), 1;
  return 0;
}
