// One virtual machine: the KVM VM and its vCPUs, guest RAM, the two buses, the devices, and the
// threads that run them. The vc-vmm executable holds exactly one; the addon can hold several in
// one process (nothing here is process-global except the vCPU kick signal's no-op handler).
//
// Threads: one per vCPU (KVM_RUN loop, see vcpu.h) and one device thread running the EventLoop
// (queue-notify ioeventfds, vsock host sockets, the control socket). Control calls (Pause, Resume,
// Stop, AttachBlock, StatusJson) may come from any thread.
//
// Lifecycle: Create (everything built, kernel loaded, nothing running) -> Start -> [Pause <->
// Resume] -> Stop (any thread, idempotent) -> Wait (joins the threads) -> destructor.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/json.h"
#include "arch/x86/boot.h"
#include "backends/vsock_unix.h"
#include "bus.h"
#include "devices/event_loop.h"
#include "devices/i8042.h"
#include "devices/interrupt.h"
#include "devices/serial.h"
#include "devices/virtio/blk.h"
#include "devices/virtio/net.h"
#include "devices/virtio/mmio.h"
#include "devices/virtio/rng.h"
#include "devices/virtio/vsock.h"
#include "vm/config.h"
#include "kvm/guest_ram.h"
#include "kvm/kvm.h"
#include "vm/system_devices.h"
#include "kvm/vcpu.h"
#include "snapshot/snapshot.h"
#include "vm/thread_kind.h"

namespace vmm::kvm {

enum class VmState { kCreated, kRunning, kPaused, kStopped };
const char* VmStateName(VmState s);

class Vm {
 public:
  static Result<std::unique_ptr<Vm>> Create(const VmConfig& config);
  // Asks KVM for what the host supports (CPUID leaves, MSR indices: kept once per process) ahead
  // of the first Create that needs it, e.g. on a helper thread while Create builds the VM; safe
  // to run beside Create (which then waits for the answer instead of asking twice).
  static Status PrefetchHostLists();
  // A VM from a snapshot (vm/restore.cc): the state file read and checked whole, the memory
  // file checked and mapped MAP_PRIVATE as guest RAM, the VM built from `config` (which must
  // describe the same machine: vCPUs, memory, devices; its sockets, taps and disks are this
  // VM's own), no kernel loaded, every vCPU, the irqchip, PIT, clock and devices loaded. Start
  // runs it from where the snapshot stopped.
  static Result<std::unique_ptr<Vm>> Restore(const std::string& state_path, const std::string& memory_path,
                                             const VmConfig& config);
  ~Vm();
  Vm(const Vm&) = delete;
  Vm& operator=(const Vm&) = delete;

  // `setup` (may be empty) runs on the device thread and on each vCPU thread before it serves the
  // guest (vc-vmm installs their seccomp filters there).
  Status Start(const ThreadSetup& setup = nullptr);
  // Returns once no vCPU executes guest code. Devices keep serving the event loop (host sockets
  // may still deliver into guest buffers), as with Firecracker's pause.
  Status Pause();
  Status Resume();
  void Stop(StopReason reason, const std::string& detail = "");
  // Blocks until the VM has stopped and all its threads are joined.
  void Wait();

  // Pauses, writes `dir`/state then `dir`/memory (0600, fsynced; `dir` must exist and be empty)
  // and stops the VM: a snapshot's source never runs on (vm/snapshot.cc). On failure the files
  // are removed and the VM stays paused. Answers {"bytes":{"state","memory"},"us":{parts}}.
  Result<json::Value> Snapshot(const std::string& dir);
  // vc-vmm --snapshot-dir: a jailed VMM cannot reach the host's paths, so the one directory it
  // may snapshot into is opened before the jail; Snapshot then takes only that path. `jailed`
  // without a directory (fd -1) makes Snapshot refuse, saying so.
  void SetSnapshotDir(const std::string& path, UniqueFd fd, bool jailed);

  // Fills the first free block slot whose read-only flag matches; returns the slot index.
  Result<uint32_t> AttachBlock(const std::string& path, bool read_only, const std::string& serial);
  // Empties the slot holding the disk with this serial (the guest sees capacity 0 after a
  // config-change interrupt); the guest must have stopped using it. Returns the slot index.
  Result<uint32_t> DetachBlock(const std::string& serial);

  VmState state() const;
  StopReason stop_reason() const { return control_.reason(); }
  std::string stop_detail() const { return control_.detail(); }
  json::Value StatusJson() const;

  EventLoop* loop() { return &loop_; }
  GuestMemory memory() const { return ram_->memory(); }
  const VmConfig& config() const { return config_; }
  const x86::LinuxBootInfo& boot_info() const { return boot_; }
  // CLOCK_MONOTONIC microseconds: when Create began, and the first exit of any vCPU (0: none).
  uint64_t created_us() const { return created_us_; }
  uint64_t first_exit_us() const;
  // Where construction and start spent their time: each step's name and the CLOCK_MONOTONIC
  // microseconds at its end, in order from created_us() (the bench's per-part breakdown).
  json::Value StartPartsJson() const;

 private:
  // One virtio-mmio slot: its transport, the device model behind it, and the eventfd wired to
  // its GSI with KVM_IRQFD.
  struct Slot {
    uint32_t index = 0;
    std::string kind;  // "vsock", "rng", "blk", "net"
    UniqueFd irq_fd;
    UniqueFd timer_fd;  // net: the rate limiter's timer (declared first, so closed last)
    std::unique_ptr<EventFdInterrupt> irq;
    std::unique_ptr<virtio::Device> device;
    std::unique_ptr<virtio::MmioTransport> transport;
    virtio::BlkDevice* blk = nullptr;  // device.get() when kind == "blk"
    virtio::NetDevice* net = nullptr;  // device.get() when kind == "net"
    bool read_only = false;
    std::string path, serial;  // the attached disk, for status
  };

  explicit Vm(const VmConfig& config);
  Status Build();
  Status BuildLegacyDevices();
  Status AddSlot(const std::string& kind, std::unique_ptr<virtio::Device> device);
  Status AddNet(size_t index, const NetConfig& n);
  Status LoadKernel();
  Status CreateVcpus();
  // Snapshot helpers (vm/snapshot.cc, vm/restore.cc, vm/device_snapshot.cc).
  Status ParkDeviceThread();
  void UnparkDeviceThread();
  Status SaveDevices(snapshot::StateFileBuilder* out);
  Status LoadDevices(const snapshot::SnapshotInfo& info);
  Status LoadMachineState(const snapshot::SnapshotInfo& info);
  // CPUID checked against what this host offers (`host_cpuid`: a fresh boot's for this vCPU),
  // TSC frequency matched or scaled, then the vCPU's state.
  Status RestoreVcpu(Vcpu* vcpu, const std::vector<kvm_cpuid_entry2>& host_cpuid, const snapshot::VcpuState& saved);
  std::vector<uint32_t> SnapshotMsrIndices();
  Result<UniqueFd> IrqEventFd(uint32_t gsi);
  void KickAll();
  void Mark(const char* step) { marks_.emplace_back(step, MonotonicMicros()); }

  VmConfig config_;
  uint64_t created_us_ = 0;
  std::vector<std::pair<const char*, uint64_t>> marks_;  // written before Start returns, read after
  Kvm kvm_;
  VmFd vm_fd_;
  std::unique_ptr<GuestRam> ram_;
  x86::LinuxBootInfo boot_;

  Bus pio_{"pio"};
  Bus mmio_{"mmio"};
  RunControl control_;
  EventLoop loop_;
  std::thread loop_thread_;

  UniqueFd serial_out_;  // owned unless it is stdout
  int serial_fd_ = -1;
  UniqueFd serial_irq_fd_, i8042_irq_fd_;
  std::unique_ptr<EventFdInterrupt> serial_irq_, i8042_irq_;
  std::unique_ptr<Serial> serial_;
  std::unique_ptr<I8042> i8042_;
  std::unique_ptr<AcpiSleepPort> sleep_port_;
  DebugPort debug_port_;

  std::unique_ptr<VsockUnixBackend> vsock_backend_;
  std::vector<std::unique_ptr<Slot>> slots_;
  std::vector<std::unique_ptr<Vcpu>> vcpus_;

  mutable std::mutex mutex_;  // state_ and slot attachment
  std::mutex join_mutex_;     // serializes Wait()
  VmState state_ = VmState::kCreated;
  bool joined_ = false;

  // Restore: the snapshot being loaded (Build maps RAM from it and skips the kernel) and where
  // it came from (status "restoredFrom").
  const snapshot::SnapshotInfo* restore_ = nullptr;
  int restore_memory_fd_ = -1;
  std::vector<uint32_t> host_msr_indices_;  // what KVM saves per vCPU (snapshots read these)
  std::string restored_from_;
  // Parking the device thread for a snapshot taken from another thread.
  std::mutex park_mutex_;
  std::condition_variable park_cv_;
  bool device_parked_ = false, device_release_ = false;
  UniqueFd park_fd_;
  std::string snapshot_dir_;  // --snapshot-dir, opened as snapshot_dir_fd_
  UniqueFd snapshot_dir_fd_;
  bool jailed_ = false;
};

}  // namespace vmm::kvm
