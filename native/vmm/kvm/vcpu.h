// One vCPU and the thread that runs it. The thread loops on KVM_RUN and handles each exit in one
// switch on the exit reason: port I/O and MMIO go to the buses, everything that ends the VM goes to
// RunControl::Stop with a reason a person can act on (the failing RIP, the KVM error code).
//
// Kicking: a vCPU inside KVM_RUN is interrupted by a signal (kKickSignal, a no-op handler
// installed without SA_RESTART) and, for the window between its last check and the ioctl, by
// kvm_run.immediate_exit. The thread clears immediate_exit *before* re-reading the control flags,
// so a kick can never be lost between the two.
#pragma once

#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "arch/x86/regs.h"
#include "bus.h"
#include "kvm/kvm.h"
#include "snapshot/vcpu_state.h"

namespace vmm::kvm {

// Why a VM stopped. The order is not meaningful; the first reason given wins.
enum class StopReason {
  kNone,
  kRequested,      // stop from the control socket / API
  kSignal,         // SIGTERM / SIGINT to the VMM process
  kGuestReset,     // i8042 reset line (Linux reboot=k)
  kGuestPoweroff,  // ACPI sleep register, S5
  kGuestShutdown,  // triple fault (KVM_EXIT_SHUTDOWN)
  kError,          // KVM or VMM failure: internal error, failed entry, unexpected exit
};
const char* StopReasonName(StopReason r);

// Pause / resume / stop shared by all vCPUs of a VM. Every method may be called from any thread,
// including a vCPU thread (a guest reset arrives on one).
class RunControl {
 public:
  // Sets the stop reason (if none yet) and wakes everything that waits.
  void Stop(StopReason reason, const std::string& detail);
  bool stopping() const { return stop_.load(std::memory_order_acquire); }
  StopReason reason() const;
  std::string detail() const;

  void SetPaused(bool paused);
  bool pause_requested() const { return pause_.load(std::memory_order_acquire); }
  // Blocks until `n` vCPU threads are parked (or the VM stops): pause is complete only when no
  // vCPU runs guest code any more.
  void WaitParked(size_t n);

  // vCPU side, between two KVM_RUNs: parks while paused, running the tasks RunOnParked hands
  // out; false once the VM is stopping.
  bool Checkpoint(uint32_t vcpu_index);

  // Runs task(i) on each of the `n` parked vCPU threads (KVM wants a vCPU's state read by the
  // thread that runs it) and returns once all have: only while paused with all `n` parked.
  Status RunOnParked(size_t n, const std::function<void(uint32_t)>& task);

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> pause_{false};
  size_t parked_ = 0;
  std::function<void(uint32_t)> task_;
  uint64_t task_generation_ = 0;
  size_t tasks_done_ = 0;
  StopReason reason_ = StopReason::kNone;
  std::string detail_;
};

// Per-vCPU exit counters (relaxed atomics: read by the status reply while the vCPU runs).
struct ExitCounters {
  std::atomic<uint64_t> io{0}, mmio{0}, intr{0}, other{0};
};

class Vcpu {
 public:
  // The process-wide signal used to kick vCPU threads out of KVM_RUN (SIGRTMIN).
  static int KickSignal();

  Vcpu(uint32_t index, VcpuFd fd, Bus* pio, Bus* mmio, RunControl* control);
  ~Vcpu();

  // CPUID, MSRs, FPU defaults and the local APIC's LINT0 (ExtINT) / LINT1 (NMI), as firmware
  // leaves them for an OS.
  Status Configure(const std::vector<kvm_cpuid_entry2>& cpuid, const std::vector<kvm_msr_entry>& msrs);
  // Registers of the boot vCPU at the kernel's entry.
  Status SetBootState(const x86::BootCpuState& state);
  // Snapshot (kvm/vcpu_snapshot.cc). Capture runs on this vCPU's own thread while parked: it
  // first re-enters KVM_RUN with immediate_exit so a port I/O or MMIO read handled in userspace
  // lands in the registers, then reads every piece of state. `msrs` are the indices to save.
  Status CaptureState(const std::vector<uint32_t>& msrs, int xsave2_size, snapshot::VcpuState* out);
  // Loads a captured state into a vCPU that has not run, in the order docs/snapshots.md gives.
  Status RestoreState(const snapshot::VcpuState& state);
  const std::vector<kvm_cpuid_entry2>& cpuid() const { return cpuid_; }

  // `setup` (may be empty) runs first on the new thread; an error stops the VM before KVM_RUN.
  void Start(std::function<Status()> setup = nullptr);
  void Kick();
  void Join();

  uint32_t index() const { return index_; }
  const ExitCounters& exits() const { return exits_; }
  VcpuFd& fd() { return fd_; }
  // A one-line register dump for error messages (taken on the vCPU's own thread).
  std::string DescribeRegs();
  // Microseconds on CLOCK_MONOTONIC at this vCPU's first exit to userspace (0: none yet).
  uint64_t first_exit_us() const { return first_exit_us_.load(std::memory_order_relaxed); }
  // When the thread first entered KVM_RUN (0: not yet): thread start and setup are done by then.
  uint64_t first_run_us() const { return first_run_us_.load(std::memory_order_relaxed); }

 private:
  void ThreadMain();
  // Handles the exit in fd_.run(); false when the VM must stop.
  bool HandleExit();
  void Fail(StopReason reason, const std::string& what);

  uint32_t index_;
  VcpuFd fd_;
  Bus* pio_;
  Bus* mmio_;
  RunControl* control_;
  std::thread thread_;
  std::function<Status()> setup_;
  std::atomic<bool> started_{false};
  pthread_t handle_{};
  std::atomic<bool> running_{false};  // the thread is between Start() and its exit
  ExitCounters exits_;
  std::atomic<uint64_t> first_exit_us_{0};
  std::atomic<uint64_t> first_run_us_{0};
  std::vector<kvm_cpuid_entry2> cpuid_;  // what Configure or RestoreState set: the snapshot keeps it
};

uint64_t MonotonicMicros();

}  // namespace vmm::kvm
