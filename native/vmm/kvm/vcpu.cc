#include "kvm/vcpu.h"

#include <signal.h>
#include <time.h>

#include <cerrno>
#include <cstring>

namespace vmm::kvm {

using vc::Format;
using ull = unsigned long long;

uint64_t MonotonicMicros() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000 + uint64_t(ts.tv_nsec) / 1000;
}

const char* StopReasonName(StopReason r) {
  switch (r) {
    case StopReason::kNone: return "none";
    case StopReason::kRequested: return "requested";
    case StopReason::kSignal: return "signal";
    case StopReason::kGuestReset: return "guest-reset";
    case StopReason::kGuestPoweroff: return "guest-poweroff";
    case StopReason::kGuestShutdown: return "guest-triple-fault";
    case StopReason::kError: return "error";
  }
  return "unknown";
}

// --- RunControl ---

void RunControl::Stop(StopReason reason, const std::string& detail) {
  {
    std::lock_guard lock(mutex_);
    if (reason_ == StopReason::kNone) {
      reason_ = reason;
      detail_ = detail;
    }
    stop_.store(true, std::memory_order_release);
  }
  cv_.notify_all();
}

StopReason RunControl::reason() const {
  std::lock_guard lock(mutex_);
  return reason_;
}

std::string RunControl::detail() const {
  std::lock_guard lock(mutex_);
  return detail_;
}

void RunControl::SetPaused(bool paused) {
  {
    std::lock_guard lock(mutex_);
    pause_.store(paused, std::memory_order_release);
  }
  cv_.notify_all();
}

void RunControl::WaitParked(size_t n) {
  std::unique_lock lock(mutex_);
  cv_.wait(lock, [&] { return parked_ >= n || stop_.load() || !pause_.load(); });
}

bool RunControl::Checkpoint(uint32_t vcpu_index) {
  if (stop_.load(std::memory_order_acquire)) return false;
  if (!pause_.load(std::memory_order_acquire)) return true;
  std::unique_lock lock(mutex_);
  parked_++;
  cv_.notify_all();
  uint64_t seen = task_generation_;
  while (true) {
    cv_.wait(lock, [&] { return stop_.load() || !pause_.load() || task_generation_ != seen; });
    // A task handed out is run even when a stop came with it: RunOnParked waits for every one.
    if (task_generation_ == seen) break;
    seen = task_generation_;
    std::function<void(uint32_t)> task = task_;
    lock.unlock();
    task(vcpu_index);
    lock.lock();
    tasks_done_++;
    cv_.notify_all();
  }
  parked_--;
  return !stop_.load();
}

Status RunControl::RunOnParked(size_t n, const std::function<void(uint32_t)>& task) {
  std::unique_lock lock(mutex_);
  if (!pause_.load() || parked_ < n)
    return Status::Error(Format("%zu of %zu vCPUs are parked; a paused VM has all of them parked", parked_, n));
  task_ = task;
  tasks_done_ = 0;
  task_generation_++;
  cv_.notify_all();
  cv_.wait(lock, [&] { return tasks_done_ >= n; });
  task_ = nullptr;
  return Status();
}

// --- Vcpu ---

namespace {
void KickHandler(int) {}  // only there to make KVM_RUN return EINTR

void InstallKickHandler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_handler = KickHandler;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;  // no SA_RESTART: the ioctl must come back to us
    sigaction(Vcpu::KickSignal(), &sa, nullptr);
  });
}

void PutU32(kvm_lapic_state* l, size_t offset, uint32_t v) { std::memcpy(l->regs + offset, &v, 4); }
uint32_t GetU32(const kvm_lapic_state& l, size_t offset) {
  uint32_t v;
  std::memcpy(&v, l.regs + offset, 4);
  return v;
}

kvm_segment ToKvm(const x86::Segment& s) {
  kvm_segment k{};
  k.base = s.base;
  k.limit = s.limit;
  k.selector = s.selector;
  k.type = s.type;
  k.present = s.present;
  k.dpl = s.dpl;
  k.db = s.db;
  k.s = s.s;
  k.l = s.l;
  k.g = s.g;
  k.avl = s.avl;
  k.unusable = s.unusable;
  return k;
}
}  // namespace

int Vcpu::KickSignal() { return SIGRTMIN; }

Vcpu::Vcpu(uint32_t index, VcpuFd fd, Bus* pio, Bus* mmio, RunControl* control)
    : index_(index), fd_(std::move(fd)), pio_(pio), mmio_(mmio), control_(control) {
  InstallKickHandler();
}

Vcpu::~Vcpu() { Join(); }

Status Vcpu::Configure(const std::vector<kvm_cpuid_entry2>& cpuid, const std::vector<kvm_msr_entry>& msrs) {
  Status s = fd_.SetCpuid(cpuid);
  if (!s.ok()) return s;
  cpuid_ = cpuid;
  if (!(s = fd_.SetMsrs(msrs)).ok()) return s;
  kvm_fpu fpu{};
  fpu.fcw = 0x37f;     // x87 default: all exceptions masked, 64-bit precision
  fpu.mxcsr = 0x1f80;  // SSE default: all exceptions masked
  if (!(s = fd_.SetFpu(fpu)).ok()) return s;
  // LINT0 as ExtINT (the 8259's output, for guests that still use the PIC) and LINT1 as NMI, the
  // virtual-wire setup the MP spec has firmware leave behind.
  kvm_lapic_state lapic;
  if (!(s = fd_.GetLapic(&lapic)).ok()) return s;
  constexpr size_t kLvtLint0 = 0x350, kLvtLint1 = 0x360;
  constexpr uint32_t kModeMask = 0x700, kModeExtInt = 0x700, kModeNmi = 0x400;
  PutU32(&lapic, kLvtLint0, (GetU32(lapic, kLvtLint0) & ~kModeMask) | kModeExtInt);
  PutU32(&lapic, kLvtLint1, (GetU32(lapic, kLvtLint1) & ~kModeMask) | kModeNmi);
  return fd_.SetLapic(lapic);
}

Status Vcpu::SetBootState(const x86::BootCpuState& c) {
  kvm_sregs sregs;
  Status s = fd_.GetSregs(&sregs);  // keeps apic_base and the interrupt bitmap KVM set up
  if (!s.ok()) return s;
  sregs.cs = ToKvm(c.cs);
  sregs.ds = ToKvm(c.ds);
  sregs.es = ToKvm(c.es);
  sregs.fs = ToKvm(c.fs);
  sregs.gs = ToKvm(c.gs);
  sregs.ss = ToKvm(c.ss);
  sregs.tr = ToKvm(c.tr);
  sregs.ldt = ToKvm(c.ldt);
  sregs.gdt.base = c.gdt.base;
  sregs.gdt.limit = c.gdt.limit;
  sregs.idt.base = c.idt.base;
  sregs.idt.limit = c.idt.limit;
  sregs.cr0 = c.cr0;
  sregs.cr3 = c.cr3;
  sregs.cr4 = c.cr4;
  sregs.efer = c.efer;
  if (!(s = fd_.SetSregs(sregs)).ok()) return s;
  kvm_regs regs{};
  regs.rax = c.rax, regs.rbx = c.rbx, regs.rcx = c.rcx, regs.rdx = c.rdx;
  regs.rsi = c.rsi, regs.rdi = c.rdi, regs.rsp = c.rsp, regs.rbp = c.rbp;
  regs.rip = c.rip;
  regs.rflags = c.rflags;
  return fd_.SetRegs(regs);
}

void Vcpu::Start(std::function<Status()> setup) {
  setup_ = std::move(setup);
  running_.store(true);
  thread_ = std::thread([this] { ThreadMain(); });
}

void Vcpu::Kick() {
  if (kvm_run* run = fd_.run()) __atomic_store_n(&run->immediate_exit, 1, __ATOMIC_SEQ_CST);
  if (started_.load(std::memory_order_acquire) && running_.load(std::memory_order_acquire))
    pthread_kill(handle_, KickSignal());
}

void Vcpu::Join() {
  if (thread_.joinable()) thread_.join();
}

std::string Vcpu::DescribeRegs() {
  kvm_regs r{};
  kvm_sregs s{};
  if (!fd_.GetRegs(&r).ok() || !fd_.GetSregs(&s).ok()) return "(registers unavailable)";
  return Format("rip=0x%llx rsp=0x%llx rflags=0x%llx cs=0x%x cpl=%u cr0=0x%llx cr2=0x%llx cr3=0x%llx "
                "cr4=0x%llx efer=0x%llx",
                (ull)r.rip, (ull)r.rsp, (ull)r.rflags, s.cs.selector, s.cs.dpl, (ull)s.cr0, (ull)s.cr2,
                (ull)s.cr3, (ull)s.cr4, (ull)s.efer);
}

void Vcpu::Fail(StopReason reason, const std::string& what) {
  control_->Stop(reason, Format("vCPU %u: ", index_) + what + "; " + DescribeRegs());
}

void Vcpu::ThreadMain() {
  handle_ = pthread_self();
  started_.store(true, std::memory_order_release);
  // The thread inherits its creator's mask (vc-vmm blocks SIGTERM and friends for its signalfd);
  // the kick signal must get through.
  sigset_t kick;
  sigemptyset(&kick);
  sigaddset(&kick, KickSignal());
  pthread_sigmask(SIG_UNBLOCK, &kick, nullptr);
  if (setup_) {
    Status s = setup_();
    if (!s.ok()) {
      control_->Stop(StopReason::kError, Format("vCPU %u: ", index_) + s.error());
      running_.store(false, std::memory_order_release);
      return;
    }
  }

  kvm_run* run = fd_.run();
  first_run_us_.store(MonotonicMicros(), std::memory_order_relaxed);
  while (true) {
    __atomic_store_n(&run->immediate_exit, 0, __ATOMIC_SEQ_CST);
    if (!control_->Checkpoint(index_)) break;
    const int rc = fd_.Run();
    if (rc == -EINTR || rc == -EAGAIN) {  // kicked, or an AP woken without a SIPI yet
      exits_.intr.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    if (rc < 0) {
      errno = -rc;
      Fail(StopReason::kError, ErrnoStatus("KVM_RUN").error());
      break;
    }
    if (first_exit_us_.load(std::memory_order_relaxed) == 0)
      first_exit_us_.store(MonotonicMicros(), std::memory_order_relaxed);
    if (!HandleExit()) break;
  }
  running_.store(false, std::memory_order_release);
}

bool Vcpu::HandleExit() {
  kvm_run* run = fd_.run();
  switch (run->exit_reason) {
    case KVM_EXIT_IO: {
      exits_.io.fetch_add(1, std::memory_order_relaxed);
      uint8_t* data = reinterpret_cast<uint8_t*>(run) + run->io.data_offset;
      const uint32_t size = run->io.size;
      // `rep ins/outs` arrive as one exit with count > 1 and the bytes back to back.
      for (uint32_t i = 0; i < run->io.count; i++, data += size) {
        if (run->io.direction == KVM_EXIT_IO_OUT) pio_->write(run->io.port, data, size);
        else pio_->read(run->io.port, data, size);
      }
      return true;
    }
    case KVM_EXIT_MMIO:
      exits_.mmio.fetch_add(1, std::memory_order_relaxed);
      if (run->mmio.len > sizeof run->mmio.data) {
        Fail(StopReason::kError, Format("MMIO exit with length %u", run->mmio.len));
        return false;
      }
      if (run->mmio.is_write) mmio_->write(run->mmio.phys_addr, run->mmio.data, run->mmio.len);
      else mmio_->read(run->mmio.phys_addr, run->mmio.data, run->mmio.len);
      return true;
    case KVM_EXIT_IRQ_WINDOW_OPEN:
    case KVM_EXIT_INTR:
      exits_.intr.fetch_add(1, std::memory_order_relaxed);
      return true;
    case KVM_EXIT_SHUTDOWN:
      Fail(StopReason::kGuestShutdown, "guest triple fault (KVM_EXIT_SHUTDOWN)");
      return false;
    case KVM_EXIT_SYSTEM_EVENT:
      switch (run->system_event.type) {
        case KVM_SYSTEM_EVENT_SHUTDOWN:
          control_->Stop(StopReason::kGuestPoweroff, Format("vCPU %u: system event shutdown", index_));
          return false;
        case KVM_SYSTEM_EVENT_RESET:
          control_->Stop(StopReason::kGuestReset, Format("vCPU %u: system event reset", index_));
          return false;
        default:
          Fail(StopReason::kError, Format("system event %u", run->system_event.type));
          return false;
      }
    case KVM_EXIT_HLT:
      // Only without an in-kernel LAPIC; we always create one, so a HLT exit means KVM chose
      // to hand the halt to us: nothing can wake this vCPU any more.
      Fail(StopReason::kError, "unexpected KVM_EXIT_HLT");
      return false;
    case KVM_EXIT_FAIL_ENTRY:
      Fail(StopReason::kError, Format("KVM_EXIT_FAIL_ENTRY, hardware reason 0x%llx",
                                      (ull)run->fail_entry.hardware_entry_failure_reason));
      return false;
    case KVM_EXIT_INTERNAL_ERROR: {
      // Suberror 1 is an instruction the in-kernel emulator could not handle; under PVM, where
      // guest kernel mode is emulated, that is the usual way a guest dies.
      std::string what = Format("KVM_EXIT_INTERNAL_ERROR suberror %u%s", run->internal.suberror,
                                run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION ? " (emulation failure)" : "");
      for (uint32_t i = 0; i < run->internal.ndata && i < 16; i++)
        what += Format(" data[%u]=0x%llx", i, (ull)run->internal.data[i]);
      Fail(StopReason::kError, what);
      return false;
    }
    default:
      exits_.other.fetch_add(1, std::memory_order_relaxed);
      Fail(StopReason::kError, Format("unhandled exit reason %u", run->exit_reason));
      return false;
  }
}

}  // namespace vmm::kvm
