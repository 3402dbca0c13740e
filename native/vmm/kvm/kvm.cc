#include "kvm/kvm.h"
#include "kvm/ioctl.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace vmm::kvm {

using vc::Format;
using ull = unsigned long long;

Status ErrnoStatus(const char* what) {
  const int err = errno;
  return Status::Error(std::string(what) + ": " + std::strerror(err));
}

namespace {

using detail::Check;
using detail::Ioctl;

// struct kvm_cpuid2, kvm_msrs and kvm_msr_list end in __DECLARE_FLEX_ARRAY, which in C++ wraps
// an empty struct of size 1: sizeof() grows by 4 and the entries move by 4, so both the ioctl
// numbers (they encode the size) and the layout are wrong when compiled as C++ (KVM answers
// EINVAL). These are the C layouts, spelled out, with the ioctl numbers computed from them.
struct CpuidHeader {
  uint32_t nent;
  uint32_t padding;
};
struct MsrsHeader {
  uint32_t nmsrs;
  uint32_t pad;
};
struct MsrListHeader {
  uint32_t nmsrs;
};
static_assert(sizeof(CpuidHeader) == 8 && sizeof(MsrsHeader) == 8 && sizeof(MsrListHeader) == 4, "C layouts");
constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, CpuidHeader);
constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, CpuidHeader);
constexpr unsigned long kGetMsrs = _IOWR(KVMIO, 0x88, MsrsHeader);
constexpr unsigned long kSetMsrs = _IOW(KVMIO, 0x89, MsrsHeader);
constexpr unsigned long kGetMsrIndexList = _IOWR(KVMIO, 0x02, MsrListHeader);

// A header followed by `count` entries, zeroed, as one allocation (what those ioctls take).
template <typename Header, typename Entry>
struct Flex {
  explicit Flex(size_t count) : buf(new uint8_t[sizeof(Header) + count * sizeof(Entry)]()) {}
  Header* header() { return reinterpret_cast<Header*>(buf.get()); }
  Entry* entries() { return reinterpret_cast<Entry*>(buf.get() + sizeof(Header)); }
  std::unique_ptr<uint8_t[]> buf;
};

}  // namespace

// --- VcpuFd ---

VcpuFd::~VcpuFd() { Unmap(); }

VcpuFd::VcpuFd(VcpuFd&& other) noexcept
    : fd_(std::move(other.fd_)), run_(std::exchange(other.run_, nullptr)), run_size_(other.run_size_) {}

VcpuFd& VcpuFd::operator=(VcpuFd&& other) noexcept {
  if (this != &other) {
    Unmap();
    fd_ = std::move(other.fd_);
    run_ = std::exchange(other.run_, nullptr);
    run_size_ = other.run_size_;
  }
  return *this;
}

void VcpuFd::Unmap() {
  if (run_) ::munmap(run_, run_size_);
  run_ = nullptr;
}

int VcpuFd::Run() { return ::ioctl(fd_.get(), KVM_RUN, 0) < 0 ? -errno : 0; }

Status VcpuFd::GetRegs(kvm_regs* regs) const { return Check(Ioctl(fd(), KVM_GET_REGS, regs), "KVM_GET_REGS"); }
Status VcpuFd::SetRegs(const kvm_regs& regs) { return Check(Ioctl(fd(), KVM_SET_REGS, &regs), "KVM_SET_REGS"); }
Status VcpuFd::GetSregs(kvm_sregs* sregs) const { return Check(Ioctl(fd(), KVM_GET_SREGS, sregs), "KVM_GET_SREGS"); }
Status VcpuFd::SetSregs(const kvm_sregs& sregs) { return Check(Ioctl(fd(), KVM_SET_SREGS, &sregs), "KVM_SET_SREGS"); }
Status VcpuFd::GetFpu(kvm_fpu* fpu) const { return Check(Ioctl(fd(), KVM_GET_FPU, fpu), "KVM_GET_FPU"); }
Status VcpuFd::SetFpu(const kvm_fpu& fpu) { return Check(Ioctl(fd(), KVM_SET_FPU, &fpu), "KVM_SET_FPU"); }
Status VcpuFd::GetLapic(kvm_lapic_state* l) const { return Check(Ioctl(fd(), KVM_GET_LAPIC, l), "KVM_GET_LAPIC"); }
Status VcpuFd::SetLapic(const kvm_lapic_state& l) { return Check(Ioctl(fd(), KVM_SET_LAPIC, &l), "KVM_SET_LAPIC"); }
Status VcpuFd::GetMpState(kvm_mp_state* s) const { return Check(Ioctl(fd(), KVM_GET_MP_STATE, s), "KVM_GET_MP_STATE"); }
Status VcpuFd::SetMpState(const kvm_mp_state& s) { return Check(Ioctl(fd(), KVM_SET_MP_STATE, &s), "KVM_SET_MP_STATE"); }

Status VcpuFd::SetCpuid(const std::vector<kvm_cpuid_entry2>& entries) {
  Flex<CpuidHeader, kvm_cpuid_entry2> c(entries.size());
  c.header()->nent = uint32_t(entries.size());
  std::memcpy(c.entries(), entries.data(), entries.size() * sizeof(kvm_cpuid_entry2));
  return Check(Ioctl(fd(), kSetCpuid2, c.header()), "KVM_SET_CPUID2");
}

Status VcpuFd::SetMsrs(const std::vector<kvm_msr_entry>& msrs) {
  Flex<MsrsHeader, kvm_msr_entry> m(msrs.size());
  m.header()->nmsrs = uint32_t(msrs.size());
  std::memcpy(m.entries(), msrs.data(), msrs.size() * sizeof(kvm_msr_entry));
  // KVM_SET_MSRS returns how many it set, stopping at the first it refused.
  const int n = Ioctl(fd(), kSetMsrs, m.header());
  if (n < 0) return ErrnoStatus("KVM_SET_MSRS");
  if (size_t(n) < msrs.size())
    return Status::Error(Format("KVM_SET_MSRS: KVM refused MSR 0x%x (value 0x%llx); %d of %zu set",
                                msrs[n].index, (ull)msrs[n].data, n, msrs.size()));
  return Status();
}

Status VcpuFd::GetMsr(uint32_t index, uint64_t* value) const {
  Flex<MsrsHeader, kvm_msr_entry> m(1);
  m.header()->nmsrs = 1;
  m.entries()[0].index = index;
  const int n = Ioctl(fd(), kGetMsrs, m.header());
  if (n < 0) return ErrnoStatus("KVM_GET_MSRS");
  if (n != 1) return Status::Error(Format("KVM_GET_MSRS: MSR 0x%x is not readable", index));
  *value = m.entries()[0].data;
  return Status();
}

// --- VmFd ---

int VmFd::CheckExtension(long cap) const { return Ioctl(fd(), KVM_CHECK_EXTENSION, reinterpret_cast<void*>(cap)); }

Status VmFd::SetTssAddr(uint64_t addr) {
  return Check(Ioctl(fd(), KVM_SET_TSS_ADDR, reinterpret_cast<void*>(addr)), "KVM_SET_TSS_ADDR");
}

Status VmFd::SetIdentityMapAddr(uint64_t addr) {
  return Check(Ioctl(fd(), KVM_SET_IDENTITY_MAP_ADDR, &addr), "KVM_SET_IDENTITY_MAP_ADDR");
}

Status VmFd::CreateIrqchip() { return Check(Ioctl(fd(), KVM_CREATE_IRQCHIP, nullptr), "KVM_CREATE_IRQCHIP"); }

Status VmFd::CreatePit2() {
  kvm_pit_config config{};
  config.flags = KVM_PIT_SPEAKER_DUMMY;
  return Check(Ioctl(fd(), KVM_CREATE_PIT2, &config), "KVM_CREATE_PIT2");
}

Status VmFd::SetUserMemoryRegion(uint32_t slot, uint64_t guest_phys, uint64_t size, void* host, uint32_t flags) {
  kvm_userspace_memory_region r{};
  r.slot = slot;
  r.flags = flags;
  r.guest_phys_addr = guest_phys;
  r.memory_size = size;
  r.userspace_addr = reinterpret_cast<uint64_t>(host);
  if (Ioctl(fd(), KVM_SET_USER_MEMORY_REGION, &r) < 0) {
    Status s = ErrnoStatus("KVM_SET_USER_MEMORY_REGION");
    return Status::Error(s.error() + Format(" (slot %u, guest 0x%llx, %llu bytes)", slot, (ull)guest_phys, (ull)size));
  }
  return Status();
}

namespace {
kvm_ioeventfd IoeventfdArgs(int eventfd, uint64_t addr, uint32_t len, uint64_t datamatch, bool pio) {
  kvm_ioeventfd e{};
  e.datamatch = datamatch;
  e.addr = addr;
  e.len = len;
  e.fd = eventfd;
  e.flags = KVM_IOEVENTFD_FLAG_DATAMATCH | (pio ? KVM_IOEVENTFD_FLAG_PIO : 0);
  return e;
}
}  // namespace

Status VmFd::AddIoeventfd(int eventfd, uint64_t addr, uint32_t len, uint64_t datamatch, bool pio) {
  kvm_ioeventfd e = IoeventfdArgs(eventfd, addr, len, datamatch, pio);
  return Check(Ioctl(fd(), KVM_IOEVENTFD, &e), "KVM_IOEVENTFD");
}

Status VmFd::RemoveIoeventfd(int eventfd, uint64_t addr, uint32_t len, uint64_t datamatch, bool pio) {
  kvm_ioeventfd e = IoeventfdArgs(eventfd, addr, len, datamatch, pio);
  e.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
  return Check(Ioctl(fd(), KVM_IOEVENTFD, &e), "KVM_IOEVENTFD (deassign)");
}

Status VmFd::AddIrqfd(int eventfd, uint32_t gsi) {
  kvm_irqfd f{};
  f.fd = uint32_t(eventfd);
  f.gsi = gsi;
  return Check(Ioctl(fd(), KVM_IRQFD, &f), "KVM_IRQFD");
}

Status VmFd::RemoveIrqfd(int eventfd, uint32_t gsi) {
  kvm_irqfd f{};
  f.fd = uint32_t(eventfd);
  f.gsi = gsi;
  f.flags = KVM_IRQFD_FLAG_DEASSIGN;
  return Check(Ioctl(fd(), KVM_IRQFD, &f), "KVM_IRQFD (deassign)");
}

Status VmFd::IrqLine(uint32_t gsi, bool level) {
  kvm_irq_level l{};
  l.irq = gsi;
  l.level = level ? 1 : 0;
  return Check(Ioctl(fd(), KVM_IRQ_LINE, &l), "KVM_IRQ_LINE");
}

Result<VcpuFd> VmFd::CreateVcpu(uint32_t id) {
  const int vcpu = Ioctl(fd(), KVM_CREATE_VCPU, reinterpret_cast<void*>(uintptr_t(id)));
  if (vcpu < 0) return ErrnoStatus(Format("KVM_CREATE_VCPU %u", id).c_str());
  UniqueFd owned(vcpu);
  void* run = ::mmap(nullptr, vcpu_mmap_size_, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
  if (run == MAP_FAILED) return ErrnoStatus("mmap of the vCPU's kvm_run area");
  return VcpuFd(std::move(owned), static_cast<kvm_run*>(run), vcpu_mmap_size_);
}

// --- Kvm ---

const char* DevicePath() {
  const char* override = std::getenv("VC_KVM_DEVICE");
  return override != nullptr && *override != '\0' ? override : "/dev/kvm";
}

Result<Kvm> Kvm::Open(const char* path) {
  if (path == nullptr) path = DevicePath();
  Kvm kvm;
  kvm.fd_.reset(::open(path, O_RDWR | O_CLOEXEC));
  if (!kvm.fd_.valid()) return ErrnoStatus((std::string("cannot open ") + path).c_str());
  const int api = Ioctl(kvm.fd(), KVM_GET_API_VERSION, nullptr);
  if (api != KVM_API_VERSION)
    return Status::Error(Format("%s: KVM_GET_API_VERSION is %d, this VMM speaks %d", path, api, KVM_API_VERSION));
  const int size = Ioctl(kvm.fd(), KVM_GET_VCPU_MMAP_SIZE, nullptr);
  if (size < int(sizeof(kvm_run))) return ErrnoStatus("KVM_GET_VCPU_MMAP_SIZE");
  kvm.vcpu_mmap_size_ = size_t(size);
  return kvm;
}

int Kvm::CheckExtension(long cap) const { return Ioctl(fd(), KVM_CHECK_EXTENSION, reinterpret_cast<void*>(cap)); }

Result<std::vector<kvm_cpuid_entry2>> Kvm::SupportedCpuid() const {
  // KVM says E2BIG when the array is too small; grow until it fits.
  for (size_t n = 64; n <= 4096; n *= 2) {
    Flex<CpuidHeader, kvm_cpuid_entry2> c(n);
    c.header()->nent = uint32_t(n);
    if (Ioctl(fd(), kGetSupportedCpuid, c.header()) == 0)
      return std::vector<kvm_cpuid_entry2>(c.entries(), c.entries() + c.header()->nent);
    if (errno != E2BIG) return ErrnoStatus("KVM_GET_SUPPORTED_CPUID");
  }
  return Status::Error("KVM_GET_SUPPORTED_CPUID: more than 4096 entries");
}

Result<std::vector<uint32_t>> Kvm::MsrIndexList() const {
  for (size_t n = 256; n <= 16384; n *= 2) {
    Flex<MsrListHeader, uint32_t> l(n);
    l.header()->nmsrs = uint32_t(n);
    if (Ioctl(fd(), kGetMsrIndexList, l.header()) == 0)
      return std::vector<uint32_t>(l.entries(), l.entries() + l.header()->nmsrs);
    if (errno != E2BIG) return ErrnoStatus("KVM_GET_MSR_INDEX_LIST");
  }
  return Status::Error("KVM_GET_MSR_INDEX_LIST: more than 16384 entries");
}

Result<VmFd> Kvm::CreateVm() const {
  int vm;
  // KVM_CREATE_VM can fail with EINTR on a busy host; retried by Ioctl.
  vm = Ioctl(fd(), KVM_CREATE_VM, nullptr);
  if (vm < 0) return ErrnoStatus("KVM_CREATE_VM");
  return VmFd(UniqueFd(vm), vcpu_mmap_size_);
}

// --- capabilities ---

namespace {
struct Cap {
  const char* name;
  long cap;
  bool required;
};
// Required: what the core uses unconditionally. The rest is reported so that a host's PVM (or a
// future one) can be compared at a glance.
const Cap kCaps[] = {
      {"KVM_CAP_USER_MEMORY", KVM_CAP_USER_MEMORY, true},
      {"KVM_CAP_IRQCHIP", KVM_CAP_IRQCHIP, true},
      {"KVM_CAP_PIT2", KVM_CAP_PIT2, true},
      {"KVM_CAP_IOEVENTFD", KVM_CAP_IOEVENTFD, true},
      {"KVM_CAP_IRQFD", KVM_CAP_IRQFD, true},
      {"KVM_CAP_EXT_CPUID", KVM_CAP_EXT_CPUID, true},
      {"KVM_CAP_IMMEDIATE_EXIT", KVM_CAP_IMMEDIATE_EXIT, true},
      {"KVM_CAP_SET_TSS_ADDR", KVM_CAP_SET_TSS_ADDR, false},
      {"KVM_CAP_SET_IDENTITY_MAP_ADDR", KVM_CAP_SET_IDENTITY_MAP_ADDR, false},
      {"KVM_CAP_MP_STATE", KVM_CAP_MP_STATE, false},
      {"KVM_CAP_NR_VCPUS", KVM_CAP_NR_VCPUS, false},
      {"KVM_CAP_MAX_VCPUS", KVM_CAP_MAX_VCPUS, false},
      {"KVM_CAP_NR_MEMSLOTS", KVM_CAP_NR_MEMSLOTS, false},
      {"KVM_CAP_IRQ_ROUTING", KVM_CAP_IRQ_ROUTING, false},
      {"KVM_CAP_IOEVENTFD_ANY_LENGTH", KVM_CAP_IOEVENTFD_ANY_LENGTH, false},
      {"KVM_CAP_IRQFD_RESAMPLE", KVM_CAP_IRQFD_RESAMPLE, false},
      {"KVM_CAP_SIGNAL_MSI", KVM_CAP_SIGNAL_MSI, false},
      {"KVM_CAP_COALESCED_MMIO", KVM_CAP_COALESCED_MMIO, false},
      {"KVM_CAP_COALESCED_PIO", KVM_CAP_COALESCED_PIO, false},
      {"KVM_CAP_READONLY_MEM", KVM_CAP_READONLY_MEM, false},
      {"KVM_CAP_TSC_CONTROL", KVM_CAP_TSC_CONTROL, false},
      {"KVM_CAP_GET_TSC_KHZ", KVM_CAP_GET_TSC_KHZ, false},
      {"KVM_CAP_TSC_DEADLINE_TIMER", KVM_CAP_TSC_DEADLINE_TIMER, false},
      {"KVM_CAP_ADJUST_CLOCK", KVM_CAP_ADJUST_CLOCK, false},
      {"KVM_CAP_KVMCLOCK_CTRL", KVM_CAP_KVMCLOCK_CTRL, false},
      {"KVM_CAP_X2APIC_API", KVM_CAP_X2APIC_API, false},
      {"KVM_CAP_SPLIT_IRQCHIP", KVM_CAP_SPLIT_IRQCHIP, false},
      {"KVM_CAP_XSAVE", KVM_CAP_XSAVE, false},
      {"KVM_CAP_XCRS", KVM_CAP_XCRS, false},
      {"KVM_CAP_HLT", KVM_CAP_HLT, false},
      {"KVM_CAP_X86_DISABLE_EXITS", KVM_CAP_X86_DISABLE_EXITS, false},
      {"KVM_CAP_SYNC_REGS", KVM_CAP_SYNC_REGS, false},
      {"KVM_CAP_VCPU_EVENTS", KVM_CAP_VCPU_EVENTS, false},
      {"KVM_CAP_X86_USER_SPACE_MSR", KVM_CAP_X86_USER_SPACE_MSR, false},
      {"KVM_CAP_DIRTY_LOG_RING", KVM_CAP_DIRTY_LOG_RING, false},
};
}  // namespace

std::vector<CapabilityReport> ReportCapabilities(const Kvm& kvm) {
  std::vector<CapabilityReport> out;
  for (const Cap& c : kCaps) out.push_back({c.name, kvm.CheckExtension(c.cap), c.required});
  return out;
}

Status CheckRequiredCapabilities(const Kvm& kvm) {
  // Only the required ones: this runs on every VM start.
  for (const Cap& c : kCaps)
    if (c.required && kvm.CheckExtension(c.cap) <= 0)
      return Status::Error(std::string("/dev/kvm lacks ") + c.name + ", which this VMM needs");
  return Status();
}

}  // namespace vmm::kvm
