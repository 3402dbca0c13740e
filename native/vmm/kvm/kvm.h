// Owning wrappers for the three kinds of KVM file descriptor: the system fd (/dev/kvm), a VM fd
// and a vCPU fd (with its mmap'ed struct kvm_run). Each ioctl the core uses is one method that
// turns -1/errno into a Status naming the ioctl and the errno text, so callers never see raw
// errno and every failure message says what was being attempted.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/fd.h"

namespace vmm::kvm {

using vc::Result;
using vc::Status;
using vc::UniqueFd;

// Ioctl numbers of structures ending in a flexible array: in C++ the kernel header's
// __DECLARE_FLEX_ARRAY adds bytes to the struct, and the size is part of the number, so these are
// computed from the C layouts (kvm.cc explains; the seccomp lists use the same numbers).
struct KvmMsrsHeaderC {
  uint32_t nmsrs, pad;
};
struct KvmXsaveC {
  uint32_t region[1024];
};
constexpr unsigned long kKvmGetMsrs = _IOWR(KVMIO, 0x88, KvmMsrsHeaderC);
constexpr unsigned long kKvmGetXsave = _IOR(KVMIO, 0xa4, KvmXsaveC);
constexpr unsigned long kKvmSetXsave = _IOW(KVMIO, 0xa5, KvmXsaveC);
constexpr unsigned long kKvmGetXsave2 = _IOR(KVMIO, 0xcf, KvmXsaveC);

// "KVM_CREATE_VM: Cannot allocate memory" from the errno of the failed call.
Status ErrnoStatus(const char* what);

class VcpuFd {
 public:
  VcpuFd() = default;
  VcpuFd(UniqueFd fd, kvm_run* run, size_t run_size) : fd_(std::move(fd)), run_(run), run_size_(run_size) {}
  ~VcpuFd();
  VcpuFd(VcpuFd&& other) noexcept;
  VcpuFd& operator=(VcpuFd&& other) noexcept;

  int fd() const { return fd_.get(); }
  kvm_run* run() const { return run_; }

  // One KVM_RUN: 0 when the vCPU exited to us (see run()->exit_reason), else -errno (EINTR when
  // kicked, EAGAIN when an AP woke without a SIPI yet).
  int Run();

  Status GetRegs(kvm_regs* regs) const;
  Status SetRegs(const kvm_regs& regs);
  Status GetSregs(kvm_sregs* sregs) const;
  Status SetSregs(const kvm_sregs& sregs);
  Status GetFpu(kvm_fpu* fpu) const;
  Status SetFpu(const kvm_fpu& fpu);
  Status SetCpuid(const std::vector<kvm_cpuid_entry2>& entries);
  // Sets every MSR or fails naming the first one KVM refused.
  Status SetMsrs(const std::vector<kvm_msr_entry>& msrs);
  Status GetMsr(uint32_t index, uint64_t* value) const;
  Status GetLapic(kvm_lapic_state* lapic) const;
  Status SetLapic(const kvm_lapic_state& lapic);
  Status GetMpState(kvm_mp_state* state) const;
  Status SetMpState(const kvm_mp_state& state);
  // Snapshot state (kvm/kvm_state.cc). The XSAVE area is KVM_GET_XSAVE2's size when KVM reports
  // one (KVM_CAP_XSAVE2), else kvm_xsave's 4 KiB.
  Result<std::vector<uint8_t>> GetXsave(int xsave2_size) const;
  Status SetXsave(const std::vector<uint8_t>& area);
  Status GetXcrs(kvm_xcrs* xcrs) const;
  Status SetXcrs(const kvm_xcrs& xcrs);
  // The values of `indices`; fails naming the first MSR KVM would not read.
  Result<std::vector<kvm_msr_entry>> GetMsrs(const std::vector<uint32_t>& indices) const;
  Status GetEvents(kvm_vcpu_events* events) const;
  Status SetEvents(const kvm_vcpu_events& events);
  Status GetDebugRegs(kvm_debugregs* regs) const;
  Status SetDebugRegs(const kvm_debugregs& regs);
  Result<uint32_t> GetTscKhz() const;
  Status SetTscKhz(uint32_t khz);

 private:
  void Unmap();
  UniqueFd fd_;
  kvm_run* run_ = nullptr;
  size_t run_size_ = 0;
};

class VmFd {
 public:
  VmFd() = default;
  VmFd(UniqueFd fd, size_t vcpu_mmap_size) : fd_(std::move(fd)), vcpu_mmap_size_(vcpu_mmap_size) {}

  int fd() const { return fd_.get(); }
  int CheckExtension(long cap) const;  // the VM-level answer (may differ from /dev/kvm's)

  Status SetTssAddr(uint64_t addr);
  Status SetIdentityMapAddr(uint64_t addr);
  Status CreateIrqchip();  // PIC + IOAPIC + per-vCPU LAPICs, in the kernel
  Status CreatePit2();     // i8254 in the kernel (speaker port emulated as a dummy)
  Status SetUserMemoryRegion(uint32_t slot, uint64_t guest_phys, uint64_t size, void* host, uint32_t flags = 0);
  // A write of `datamatch` (len bytes) to `addr` signals `eventfd` inside the kernel instead of
  // exiting to userspace. `pio` selects the port space.
  Status AddIoeventfd(int eventfd, uint64_t addr, uint32_t len, uint64_t datamatch, bool pio = false);
  Status RemoveIoeventfd(int eventfd, uint64_t addr, uint32_t len, uint64_t datamatch, bool pio = false);
  // Writing to `eventfd` raises `gsi` (edge) without a trip through userspace.
  Status AddIrqfd(int eventfd, uint32_t gsi);
  Status RemoveIrqfd(int eventfd, uint32_t gsi);
  Status IrqLine(uint32_t gsi, bool level);
  Result<VcpuFd> CreateVcpu(uint32_t id);
  // Snapshot state (kvm/kvm_state.cc): chip is KVM_IRQCHIP_PIC_MASTER, _PIC_SLAVE or _IOAPIC.
  Status GetIrqchip(kvm_irqchip* chip) const;
  Status SetIrqchip(const kvm_irqchip& chip);
  Status GetPit2(kvm_pit_state2* pit) const;
  Status SetPit2(const kvm_pit_state2& pit);
  Status GetClock(kvm_clock_data* clock) const;
  Status SetClock(const kvm_clock_data& clock);

 private:
  UniqueFd fd_;
  size_t vcpu_mmap_size_ = 0;
};

// The KVM device this process uses: $VC_KVM_DEVICE when set and non-empty, else /dev/kvm. The
// override lets a test hide the device (a path that does not exist) or replace it, so every host
// kind (real KVM, PVM, none) can be exercised on any machine; the addon's probe reads the same.
const char* DevicePath();

class Kvm {
 public:
  // Opens the device (nullptr: DevicePath()) and checks KVM_GET_API_VERSION == 12.
  static Result<Kvm> Open(const char* path = nullptr);

  int fd() const { return fd_.get(); }
  int CheckExtension(long cap) const;
  size_t vcpu_mmap_size() const { return vcpu_mmap_size_; }

  Result<std::vector<kvm_cpuid_entry2>> SupportedCpuid() const;
  // The MSRs KVM saves and restores for a vCPU (KVM_GET_MSR_INDEX_LIST).
  Result<std::vector<uint32_t>> MsrIndexList() const;
  Result<VmFd> CreateVm() const;

 private:
  UniqueFd fd_;
  size_t vcpu_mmap_size_ = 0;
};

// The KVM_CAP_* answers this build cares about, by name, for `vc-vmm caps` and the status reply.
struct CapabilityReport {
  std::string name;
  int value;  // KVM_CHECK_EXTENSION's return: 0 absent, >0 present (some give a count)
  bool required;  // the core refuses to start without it
};
std::vector<CapabilityReport> ReportCapabilities(const Kvm& kvm);
// The first required capability that is missing, or an ok Status.
Status CheckRequiredCapabilities(const Kvm& kvm);

}  // namespace vmm::kvm
