// The seccomp filters compiled when vc-vmm was built (bpf_gen.cc writes the header from the lists
// in filters.cc before vc-vmm is compiled; see BuiltInBpf in filters.h).
#include "seccomp/filters.h"
#include "seccomp_bpf.generated.h"

namespace vmm::seccomp {

namespace {

template <size_t N, size_t M>
constexpr BuiltInBpf Of(const sock_filter (&program)[N], const uint16_t (&self_at)[M]) {
  return {program, N, self_at, M};
}

constexpr BuiltInBpf kBuiltIn[] = {
    Of(generated::kMainProgram, generated::kMainSelfAt),
    Of(generated::kDeviceProgram, generated::kDeviceSelfAt),
    Of(generated::kVcpuProgram, generated::kVcpuSelfAt),
};

}  // namespace

const BuiltInBpf* BuiltInFilter(ThreadKind kind) {
  switch (kind) {
    case ThreadKind::kMain: return &kBuiltIn[0];
    case ThreadKind::kDevice: return &kBuiltIn[1];
    case ThreadKind::kVcpu: return &kBuiltIn[2];
  }
  return nullptr;
}

}  // namespace vmm::seccomp
