// The KVM calls a snapshot makes: every piece of vCPU and VM state that KVM keeps and a restore
// must give back. Each turns -1/errno into a Status naming the ioctl, as kvm.cc does.
#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "kvm/ioctl.h"
#include "kvm/kvm.h"

namespace vmm::kvm {

using vc::Format;

namespace {

using detail::Check;
using detail::Ioctl;

using MsrsHeader = KvmMsrsHeaderC;

}  // namespace

Result<std::vector<uint8_t>> VcpuFd::GetXsave(int xsave2_size) const {
  // KVM_GET_XSAVE2 writes the size KVM_CAP_XSAVE2 gave (4 KiB or more); KVM_GET_XSAVE 4 KiB.
  const size_t size = xsave2_size > int(sizeof(KvmXsaveC)) ? size_t(xsave2_size) : sizeof(KvmXsaveC);
  std::vector<uint8_t> buf(size);
  const unsigned long req = xsave2_size > 0 ? kKvmGetXsave2 : kKvmGetXsave;
  if (Ioctl(fd(), req, buf.data()) < 0) return ErrnoStatus(xsave2_size > 0 ? "KVM_GET_XSAVE2" : "KVM_GET_XSAVE");
  return buf;
}

Status VcpuFd::SetXsave(const std::vector<uint8_t>& area) {
  // KVM_SET_XSAVE reads as much as the vCPU's XSAVE area needs (4 KiB, or KVM_CAP_XSAVE2's
  // size); the snapshot's area is that size, checked by its decoder to be at least 4 KiB.
  if (area.size() < sizeof(KvmXsaveC)) return Status::Error("KVM_SET_XSAVE: the area is smaller than 4 KiB");
  return Check(Ioctl(fd(), kKvmSetXsave, area.data()), "KVM_SET_XSAVE");
}

Status VcpuFd::GetXcrs(kvm_xcrs* x) const { return Check(Ioctl(fd(), KVM_GET_XCRS, x), "KVM_GET_XCRS"); }
Status VcpuFd::SetXcrs(const kvm_xcrs& x) { return Check(Ioctl(fd(), KVM_SET_XCRS, &x), "KVM_SET_XCRS"); }
Status VcpuFd::GetEvents(kvm_vcpu_events* e) const { return Check(Ioctl(fd(), KVM_GET_VCPU_EVENTS, e), "KVM_GET_VCPU_EVENTS"); }
Status VcpuFd::SetEvents(const kvm_vcpu_events& e) { return Check(Ioctl(fd(), KVM_SET_VCPU_EVENTS, &e), "KVM_SET_VCPU_EVENTS"); }
Status VcpuFd::GetDebugRegs(kvm_debugregs* d) const { return Check(Ioctl(fd(), KVM_GET_DEBUGREGS, d), "KVM_GET_DEBUGREGS"); }
Status VcpuFd::SetDebugRegs(const kvm_debugregs& d) { return Check(Ioctl(fd(), KVM_SET_DEBUGREGS, &d), "KVM_SET_DEBUGREGS"); }

Result<std::vector<kvm_msr_entry>> VcpuFd::GetMsrs(const std::vector<uint32_t>& indices) const {
  std::unique_ptr<uint8_t[]> buf(new uint8_t[sizeof(MsrsHeader) + indices.size() * sizeof(kvm_msr_entry)]());
  auto* header = reinterpret_cast<MsrsHeader*>(buf.get());
  auto* entries = reinterpret_cast<kvm_msr_entry*>(buf.get() + sizeof(MsrsHeader));
  header->nmsrs = uint32_t(indices.size());
  for (size_t i = 0; i < indices.size(); i++) entries[i].index = indices[i];
  // KVM_GET_MSRS returns how many it read, stopping at the first it would not.
  const int n = Ioctl(fd(), kKvmGetMsrs, header);
  if (n < 0) return ErrnoStatus("KVM_GET_MSRS");
  if (size_t(n) < indices.size())
    return Status::Error(Format("KVM_GET_MSRS: KVM would not read MSR 0x%x; %d of %zu read", indices[n], n, indices.size()));
  return std::vector<kvm_msr_entry>(entries, entries + indices.size());
}

Result<uint32_t> VcpuFd::GetTscKhz() const {
  const int khz = Ioctl(fd(), KVM_GET_TSC_KHZ, nullptr);
  if (khz < 0) return ErrnoStatus("KVM_GET_TSC_KHZ");
  if (khz == 0) return Status::Error("KVM_GET_TSC_KHZ: KVM does not know this vCPU's TSC frequency");
  return uint32_t(khz);
}

Status VcpuFd::SetTscKhz(uint32_t khz) {
  return Check(Ioctl(fd(), KVM_SET_TSC_KHZ, reinterpret_cast<void*>(uintptr_t(khz))), "KVM_SET_TSC_KHZ");
}

Status VmFd::GetIrqchip(kvm_irqchip* c) const { return Check(Ioctl(fd(), KVM_GET_IRQCHIP, c), "KVM_GET_IRQCHIP"); }
Status VmFd::SetIrqchip(const kvm_irqchip& c) { return Check(Ioctl(fd(), KVM_SET_IRQCHIP, &c), "KVM_SET_IRQCHIP"); }
Status VmFd::GetPit2(kvm_pit_state2* p) const { return Check(Ioctl(fd(), KVM_GET_PIT2, p), "KVM_GET_PIT2"); }
Status VmFd::SetPit2(const kvm_pit_state2& p) { return Check(Ioctl(fd(), KVM_SET_PIT2, &p), "KVM_SET_PIT2"); }
Status VmFd::GetClock(kvm_clock_data* c) const { return Check(Ioctl(fd(), KVM_GET_CLOCK, c), "KVM_GET_CLOCK"); }
Status VmFd::SetClock(const kvm_clock_data& c) { return Check(Ioctl(fd(), KVM_SET_CLOCK, &c), "KVM_SET_CLOCK"); }

}  // namespace vmm::kvm
