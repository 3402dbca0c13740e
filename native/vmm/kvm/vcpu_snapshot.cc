// A vCPU's part of a snapshot: everything KVM keeps for it, read on its own thread while the VM is
// paused, and loaded back into a new vCPU before it first runs (docs/snapshots.md).
#include <algorithm>
#include <cerrno>

#include "kvm/msrs.h"
#include "kvm/vcpu.h"

namespace vmm::kvm {

using vc::Format;

namespace {

// Set on its own after the LAPIC: KVM arms the deadline timer only when the LAPIC's LVT timer is
// in TSC-deadline mode, which it is not until KVM_SET_LAPIC.
constexpr uint32_t kTscDeadlineMsr = 0x6e0;

Status Named(uint32_t index, const char*, const Status& s) {
  return s.ok() ? s : Status::Error(Format("vCPU %u: %s", index, s.error().c_str()));
}

}  // namespace

Status Vcpu::CaptureState(const std::vector<uint32_t>& msr_indices, int xsave2_size, snapshot::VcpuState* out) {
  // Completes what the last exit left pending (an `in`'s value goes into RAX only on re-entry)
  // and returns at once: immediate_exit makes KVM_RUN come back with EINTR before guest code.
  __atomic_store_n(&fd_.run()->immediate_exit, 1, __ATOMIC_SEQ_CST);
  const int rc = fd_.Run();
  __atomic_store_n(&fd_.run()->immediate_exit, 0, __ATOMIC_SEQ_CST);
  if (rc != -EINTR && rc != -EAGAIN && rc != 0) {
    errno = -rc;
    return Named(index_, "", ErrnoStatus("KVM_RUN (completing pending I/O before the snapshot)"));
  }
  snapshot::VcpuState& v = *out;
  Status s = fd_.GetRegs(&v.regs);
  if (s.ok()) s = fd_.GetSregs(&v.sregs);
  if (s.ok()) s = fd_.GetFpu(&v.fpu);
  if (s.ok()) {
    auto xsave = fd_.GetXsave(xsave2_size);
    if (xsave.ok()) v.xsave = std::move(xsave.value());
    else s = xsave.status();
  }
  if (s.ok()) s = fd_.GetXcrs(&v.xcrs);
  if (s.ok()) s = fd_.GetLapic(&v.lapic);
  if (s.ok()) s = fd_.GetMpState(&v.mp_state);
  if (s.ok()) s = fd_.GetEvents(&v.events);
  if (s.ok()) s = fd_.GetDebugRegs(&v.debugregs);
  if (!s.ok()) return Named(index_, "", s);
  // KVM lists MSRs that this vCPU's CPUID may not have (KVM_GET_MSRS stops at the first such);
  // those are left out, the rest read in as few calls as that allows.
  std::vector<uint32_t> wanted = msr_indices;
  v.msrs.clear();
  while (!wanted.empty()) {
    auto got = fd_.GetMsrs(wanted);
    if (got.ok()) {
      v.msrs.insert(v.msrs.end(), got->begin(), got->end());
      break;
    }
    // How many it read before refusing one: read them one by one to find it.
    size_t i = 0;
    for (; i < wanted.size(); i++) {
      auto one = fd_.GetMsrs({wanted[i]});
      if (!one.ok()) break;
      v.msrs.push_back(one.value()[0]);
    }
    wanted.erase(wanted.begin(), wanted.begin() + std::min(i + 1, wanted.size()));
  }
  v.cpuid = cpuid_;
  auto khz = fd_.GetTscKhz();
  if (!khz.ok()) return Named(index_, "", khz.status());
  v.tsc_khz = khz.value();
  return Status();
}

Status Vcpu::RestoreState(const snapshot::VcpuState& v) {
  Status s = fd_.SetCpuid(v.cpuid);
  if (!s.ok()) return Named(index_, "", s);
  cpuid_ = v.cpuid;
  std::vector<kvm_msr_entry> msrs, deadline;
  for (const kvm_msr_entry& m : v.msrs) (m.index == kTscDeadlineMsr ? deadline : msrs).push_back(m);
  s = fd_.SetSregs(v.sregs);
  if (s.ok()) s = fd_.SetRegs(v.regs);
  if (s.ok()) s = fd_.SetFpu(v.fpu);
  if (s.ok()) s = fd_.SetXcrs(v.xcrs);
  if (s.ok()) s = fd_.SetXsave(v.xsave);
  if (s.ok()) s = fd_.SetMsrs(msrs);
  if (s.ok()) s = fd_.SetLapic(v.lapic);
  if (s.ok() && !deadline.empty()) s = fd_.SetMsrs(deadline);
  if (s.ok()) s = fd_.SetDebugRegs(v.debugregs);
  if (s.ok()) s = fd_.SetMpState(v.mp_state);
  // Last: a pending exception or interrupt refers to the state set above.
  if (s.ok()) s = fd_.SetEvents(v.events);
  return Named(index_, "", s);
}

}  // namespace vmm::kvm
