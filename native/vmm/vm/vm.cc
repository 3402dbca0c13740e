#include "vm/vm.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "arch/x86/layout.h"
#include "backends/blk_file.h"
#include "backends/tap.h"
#include "kvm/cpuid.h"
#include "kvm/msrs.h"

namespace vmm::kvm {

namespace layout = x86::layout;
using vc::Format;
using ull = unsigned long long;

const char* VmStateName(VmState s) {
  switch (s) {
    case VmState::kCreated: return "created";
    case VmState::kRunning: return "running";
    case VmState::kPaused: return "paused";
    case VmState::kStopped: return "stopped";
  }
  return "unknown";
}

namespace {

// Addresses KVM wants for its own use on Intel (real-mode TSS, identity page for unrestricted
// guests), inside the MMIO gap and clear of the IOAPIC/LAPIC pages and the virtio slots.
constexpr uint64_t kTssAddr = 0xfffbd000;
constexpr uint64_t kIdentityMapAddr = 0xfffbc000;

// Reads a whole file that must fit in guest RAM; the size bound comes first so a huge or endless
// file (a FIFO, /dev/zero) cannot exhaust host memory.
Result<std::vector<uint8_t>> ReadFile(const std::string& what, const std::string& path, uint64_t max) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus((what + " " + path).c_str());
  struct stat st;
  if (::fstat(fd.get(), &st) < 0) return ErrnoStatus((what + " " + path).c_str());
  if (!S_ISREG(st.st_mode)) return Status::Error(what + " " + path + ": not a regular file");
  if (uint64_t(st.st_size) > max)
    return Status::Error(Format("%s %s: %llu bytes do not fit in %llu bytes of guest RAM", what.c_str(), path.c_str(),
                                (ull)st.st_size, (ull)max));
  std::vector<uint8_t> bytes(size_t(st.st_size));
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::read(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoStatus((what + " " + path).c_str());
    if (n == 0) return Status::Error(what + " " + path + ": file shrank while it was read");
    done += size_t(n);
  }
  return bytes;
}

// What KVM supports (CPUID leaves, MSR indices) is the host's, not the VM's: asked once per process
// and device, not per VM. KVM_GET_SUPPORTED_CPUID alone took ~0.1 ms here, where every host CPUID
// it runs traps to the outer hypervisor. Only answers are kept; a failure is asked again next time.
struct HostLists {
  std::vector<kvm_cpuid_entry2> cpuid;
  std::vector<uint32_t> msrs;
};

Result<HostLists> CachedHostLists(const Kvm& kvm) {
  static std::mutex mutex;
  static std::string cached_for;
  static HostLists cached;
  std::lock_guard lock(mutex);
  const std::string device = DevicePath();
  if (!cached.cpuid.empty() && cached_for == device) return cached;
  auto cpuid = kvm.SupportedCpuid();
  if (!cpuid.ok()) return cpuid.status();
  auto msrs = kvm.MsrIndexList();
  if (!msrs.ok()) return msrs.status();
  cached = HostLists{std::move(cpuid.value()), std::move(msrs.value())};
  cached_for = device;
  return cached;
}

}  // namespace

Status Vm::PrefetchHostLists() {
  auto kvm = Kvm::Open();
  if (!kvm.ok()) return kvm.status();
  auto lists = CachedHostLists(kvm.value());
  return lists.ok() ? Status() : lists.status();
}

Vm::Vm(const VmConfig& config) : config_(config), created_us_(MonotonicMicros()) {}

Result<std::unique_ptr<Vm>> Vm::Create(const VmConfig& config) {
  std::unique_ptr<Vm> vm(new Vm(config));
  Status s = vm->Build();
  if (!s.ok()) return s;
  return vm;
}

Status Vm::Build() {
  marks_.reserve(16);
  if (!loop_.ok()) return ErrnoStatus("event loop (epoll/eventfd)");
  Mark("eventLoop");
  auto kvm = Kvm::Open();
  if (!kvm.ok()) return kvm.status();
  kvm_ = std::move(kvm.value());
  Status s = CheckRequiredCapabilities(kvm_);
  if (!s.ok()) return s;
  const int max_vcpus = kvm_.CheckExtension(KVM_CAP_MAX_VCPUS);
  if (max_vcpus > 0 && config_.vcpus > uint32_t(max_vcpus))
    return Status::Error(Format("config.vcpus %u exceeds this host's KVM_CAP_MAX_VCPUS %d", config_.vcpus, max_vcpus));

  Mark("kvmOpen");
  auto vm_fd = kvm_.CreateVm();
  if (!vm_fd.ok()) return vm_fd.status();
  vm_fd_ = std::move(vm_fd.value());
  Mark("createVm");
  // RAM before the irqchip: a memory slot added once the in-kernel irqchip exists waits for an
  // SRCU grace period, measured at 5-11 ms on this host against 0.1 ms before it.
  auto ram = restore_ ? GuestRam::MapFile(restore_memory_fd_, restore_->memory.ram_offset, restore_->memory.ram_bytes)
                      : GuestRam::Create(config_.memory_mib << 20, config_.hugepages);
  if (!ram.ok()) return ram.status();
  ram_ = std::move(ram.value());
  if (!(s = ram_->Register(&vm_fd_)).ok()) return s;
  Mark("memory");
  if (!(s = vm_fd_.SetTssAddr(kTssAddr)).ok()) return s;
  if (!(s = vm_fd_.SetIdentityMapAddr(kIdentityMapAddr)).ok()) return s;
  Mark("tssIdentity");
  if (!(s = vm_fd_.CreateIrqchip()).ok()) return s;
  Mark("irqchip");
  if (!(s = vm_fd_.CreatePit2()).ok()) return s;
  Mark("pit");

  if (!(s = BuildLegacyDevices()).ok()) return s;
  if (config_.vsock.enabled) {
    vsock_backend_ = std::make_unique<VsockUnixBackend>(&loop_, config_.vsock.uds_path);
    std::string error;
    if (!vsock_backend_->listen(&error)) return Status::Error("vsock: " + error);
    if (!(s = AddSlot("vsock", std::make_unique<virtio::VsockDevice>(config_.vsock.guest_cid, vsock_backend_.get()))).ok())
      return s;
  }
  if (config_.rng && !(s = AddSlot("rng", std::make_unique<virtio::RngDevice>())).ok()) return s;
  for (size_t i = 0; i < config_.blocks.size(); i++) {
    const BlockConfig& b = config_.blocks[i];
    if (!(s = AddSlot("blk", std::make_unique<virtio::BlkDevice>(b.read_only))).ok()) return s;
    Slot* slot = slots_.back().get();
    slot->read_only = b.read_only;
    if (b.path.empty()) continue;
    std::string error;
    auto backend = FileBlockBackend::open(b.path, b.read_only, &error);
    if (!backend) return Status::Error(Format("config.blocks[%zu]: ", i) + error);
    if (!slot->blk->attach(std::move(backend), b.serial, &error)) return Status::Error("block: " + error);
    slot->path = b.path;
    slot->serial = b.serial;
  }
  for (size_t i = 0; i < config_.nets.size(); i++)
    if (!(s = AddNet(i, config_.nets[i])).ok()) return s;
  Mark("devices");
  if (!restore_ && !(s = LoadKernel()).ok()) return s;  // a restored guest is in its RAM already
  Mark("loadGuest");
  return CreateVcpus();
}

Status Vm::AddNet(size_t index, const NetConfig& n) {
  std::string error;
  std::unique_ptr<TapBackend> tap =
      n.tap.empty() ? TapBackend::adopt(n.tap_fd, &error) : TapBackend::open(n.tap, &error);
  if (!tap) return Status::Error(Format("config.net[%zu]: ", index) + error);
  TapBackend* backend = tap.get();
  virtio::NetDeviceConfig dc;
  dc.mac = n.mac;
  dc.mtu = n.mtu;
  dc.rx = {n.rx.bytes_per_sec, n.rx.bytes_burst, n.rx.packets_per_sec, n.rx.packets_burst};
  dc.tx = {n.tx.bytes_per_sec, n.tx.bytes_burst, n.tx.packets_per_sec, n.tx.packets_burst};
  auto device = std::make_unique<virtio::NetDevice>(dc, std::move(tap));
  virtio::NetDevice* net = device.get();
  Status s = AddSlot("net", std::move(device));
  if (!s.ok()) return s;
  Slot* slot = slots_.back().get();
  slot->path = backend->name();
  UniqueFd timer(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!timer.valid()) return ErrnoStatus("net: timerfd");
  const int tfd = timer.get();
  slot->timer_fd = std::move(timer);
  // Build runs before the loop thread starts, so the device needs no lock here.
  net->set_timer([tfd](uint64_t ns) {
    itimerspec its{};
    its.it_value.tv_sec = time_t(ns / 1000000000ull);
    its.it_value.tv_nsec = long(ns % 1000000000ull);
    ::timerfd_settime(tfd, 0, &its, nullptr);
  });
  if (!loop_.add(tfd, EPOLLIN, [tfd, net](uint32_t) {
        uint64_t expirations;
        if (::read(tfd, &expirations, sizeof(expirations)) < 0) return;
        std::lock_guard<std::mutex> lock(net->mutex());
        net->on_timer();
      }))
    return ErrnoStatus("net: watch timerfd");
  if (!backend->start(&loop_, &error)) return Status::Error("net: " + error);
  return Status();
}

Result<UniqueFd> Vm::IrqEventFd(uint32_t gsi) {
  UniqueFd fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus("eventfd for an interrupt line");
  Status s = vm_fd_.AddIrqfd(fd.get(), gsi);
  if (!s.ok()) return Status::Error(s.error() + Format(" (GSI %u)", gsi));
  return fd;
}

Status Vm::BuildLegacyDevices() {
  if (config_.serial_output == "-") {
    serial_fd_ = STDOUT_FILENO;
  } else if (!config_.serial_output.empty()) {
    serial_out_.reset(::open(config_.serial_output.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));  // the guest's console: its owner's only
    if (!serial_out_.valid()) return ErrnoStatus(("config.serialOutput " + config_.serial_output).c_str());
    serial_fd_ = serial_out_.get();
  }
  auto irq = IrqEventFd(layout::kCom1Irq);
  if (!irq.ok()) return irq.status();
  serial_irq_fd_ = std::move(irq.value());
  serial_irq_ = std::make_unique<EventFdInterrupt>(serial_irq_fd_.get());
  serial_ = std::make_unique<Serial>(serial_fd_, serial_irq_.get());
  std::string error;
  if (!pio_.insert(serial_.get(), layout::kCom1Port, Serial::kPortCount, &error)) return Status::Error(error);

  if (config_.i8042) {
    auto kirq = IrqEventFd(layout::kI8042Irq);
    if (!kirq.ok()) return kirq.status();
    i8042_irq_fd_ = std::move(kirq.value());
    i8042_irq_ = std::make_unique<EventFdInterrupt>(i8042_irq_fd_.get());
    i8042_ = std::make_unique<I8042>([this] { Stop(StopReason::kGuestReset, "i8042 reset line"); }, i8042_irq_.get());
    if (!pio_.insert(i8042_.get(), layout::kI8042DataPort, I8042::kPortCount, &error)) return Status::Error(error);
  }
  if (config_.acpi_poweroff) {
    sleep_port_ = std::make_unique<AcpiSleepPort>([this] { Stop(StopReason::kGuestPoweroff, "ACPI S5"); });
    if (!pio_.insert(sleep_port_.get(), layout::kAcpiSleepPort, 1, &error)) return Status::Error(error);
  }
  if (!pio_.insert(&debug_port_, DebugPort::kPort, 1, &error)) return Status::Error(error);
  return Status();
}

Status Vm::AddSlot(const std::string& kind, std::unique_ptr<virtio::Device> device) {
  auto slot = std::make_unique<Slot>();
  slot->index = uint32_t(slots_.size());
  slot->kind = kind;
  if (slot->index >= layout::kVirtioMaxSlots) return Status::Error("virtio: out of slots");
  const uint64_t base = layout::VirtioMmioSlotAddr(slot->index);
  auto irq = IrqEventFd(layout::VirtioMmioSlotGsi(slot->index));
  if (!irq.ok()) return irq.status();
  slot->irq_fd = std::move(irq.value());
  slot->irq = std::make_unique<EventFdInterrupt>(slot->irq_fd.get());
  if (kind == "blk") slot->blk = static_cast<virtio::BlkDevice*>(device.get());
  if (kind == "net") slot->net = static_cast<virtio::NetDevice*>(device.get());
  slot->device = std::move(device);
  slot->transport = std::make_unique<virtio::MmioTransport>(ram_->memory(), slot->device.get(), slot->irq.get());
  // Queue notifications through ioeventfds: the vCPU's MMIO write completes inside KVM and the
  // device thread picks it up, instead of an exit to this process per notification.
  if (!slot->transport->create_notify_eventfds(&loop_)) return ErrnoStatus("virtio: queue notify eventfd");
  for (size_t q = 0; q < slot->device->num_queues(); q++) {
    Status s = vm_fd_.AddIoeventfd(slot->transport->queue_notify_eventfd(q), base + virtio::kQueueNotifyOffset, 4, q);
    if (!s.ok()) return s;
  }
  std::string error;
  if (!mmio_.insert(slot->transport.get(), base, virtio::kMmioSize, &error)) return Status::Error(error);
  slots_.push_back(std::move(slot));
  return Status();
}

Status Vm::LoadKernel() {
  const uint64_t ram_bytes = ram_->bytes();
  auto kernel = ReadFile("config.kernel", config_.kernel_path, ram_bytes);
  if (!kernel.ok()) return kernel.status();
  std::vector<uint8_t> initrd;
  if (!config_.initrd_path.empty()) {
    auto r = ReadFile("config.initrd", config_.initrd_path, ram_bytes);
    if (!r.ok()) return r.status();
    initrd = std::move(r.value());
  }
  x86::LinuxBootConfig boot;
  boot.kernel = kernel->data();
  boot.kernel_size = kernel->size();
  boot.initrd = initrd.empty() ? nullptr : initrd.data();
  boot.initrd_size = initrd.size();
  boot.cmdline = config_.cmdline;
  boot.ram_bytes = ram_bytes;
  boot.ram_zeroed = true;  // mapped by GuestRam::Create just now, untouched until here
  boot.acpi.vcpus = config_.vcpus;
  boot.acpi.virtio_slots = uint32_t(slots_.size());
  boot.acpi.com1 = true;
  boot.acpi.i8042 = config_.i8042;
  boot.acpi.sleep_port = config_.acpi_poweroff ? layout::kAcpiSleepPort : 0;
  auto info = x86::LoadLinux(ram_->memory(), boot);
  if (!info.ok()) return info.status();
  boot_ = info.value();
  return Status();
}

Status Vm::CreateVcpus() {
  auto host = CachedHostLists(kvm_);
  if (!host.ok()) return host.status();
  const std::vector<kvm_cpuid_entry2>& supported = host->cpuid;
  const std::vector<kvm_msr_entry> msrs = BootMsrs(host->msrs);
  host_msr_indices_ = host->msrs;
  Mark("cpuidMsrLists");
  CpuTopology topo;
  topo.vcpus = config_.vcpus;
  for (uint32_t i = 0; i < config_.vcpus; i++) {
    auto fd = vm_fd_.CreateVcpu(i);
    if (!fd.ok()) return fd.status();
    auto vcpu = std::make_unique<Vcpu>(i, std::move(fd.value()), &pio_, &mmio_, &control_);
    if (restore_) {
      Status s = RestoreVcpu(vcpu.get(), VcpuCpuid(supported, i, topo), restore_->vcpus[i]);
      if (!s.ok()) return s;
      vcpus_.push_back(std::move(vcpu));
      continue;
    }
    Status s = vcpu->Configure(VcpuCpuid(supported, i, topo), msrs);
    if (!s.ok()) return Status::Error(Format("vCPU %u: ", i) + s.error());
    // Only the boot vCPU gets registers; the others stay in wait-for-SIPI until the guest
    // starts them through its local APIC.
    if (i == 0 && !(s = vcpu->SetBootState(boot_.cpu)).ok()) return Status::Error("vCPU 0: " + s.error());
    vcpus_.push_back(std::move(vcpu));
  }
  Mark("vcpus");
  return Status();
}

Vm::~Vm() {
  Stop(StopReason::kRequested, "VM destroyed");
  Wait();
}

Status Vm::Start(const ThreadSetup& setup) {
  {
    std::lock_guard lock(mutex_);
    if (state_ != VmState::kCreated) return Status::Error(Format("cannot start a VM that is %s", VmStateName(state_)));
    state_ = VmState::kRunning;
  }
  Mark("startCalled");
  loop_thread_ = std::thread([this, setup] {
    Status s = setup ? setup(ThreadKind::kDevice) : Status();
    if (!s.ok()) return Stop(StopReason::kError, "device thread: " + s.error());
    loop_.run();
  });
  for (auto& v : vcpus_) v->Start(setup ? std::function<Status()>([setup] { return setup(ThreadKind::kVcpu); }) : nullptr);
  return Status();
}

void Vm::KickAll() {
  for (auto& v : vcpus_) v->Kick();
}

Status Vm::Pause() {
  {
    std::lock_guard lock(mutex_);
    if (state_ == VmState::kPaused) return Status();
    if (state_ != VmState::kRunning) return Status::Error(Format("cannot pause a VM that is %s", VmStateName(state_)));
  }
  control_.SetPaused(true);
  KickAll();
  control_.WaitParked(vcpus_.size());
  std::lock_guard lock(mutex_);
  if (control_.stopping()) return Status::Error("the VM stopped while pausing");
  state_ = VmState::kPaused;
  return Status();
}

Status Vm::Resume() {
  std::lock_guard lock(mutex_);
  if (state_ == VmState::kRunning) return Status();
  if (state_ != VmState::kPaused) return Status::Error(Format("cannot resume a VM that is %s", VmStateName(state_)));
  control_.SetPaused(false);
  state_ = VmState::kRunning;
  return Status();
}

void Vm::Stop(StopReason reason, const std::string& detail) {
  control_.Stop(reason, detail);
  KickAll();
  loop_.stop();
}

void Vm::Wait() {
  // One joiner at a time, under its own mutex: the threads being joined may need mutex_ (a
  // control request on the device thread) before they can finish.
  std::lock_guard join_lock(join_mutex_);
  bool started;
  {
    std::lock_guard lock(mutex_);
    if (joined_) return;
    started = state_ != VmState::kCreated;
  }
  if (started) {
    for (auto& v : vcpus_) v->Join();
    // Each vCPU leaves its run loop only when the VM is stopping; the device thread ends when
    // Stop() stops the loop.
    if (!control_.stopping()) control_.Stop(StopReason::kError, "all vCPUs ended");
    loop_.stop();
    if (loop_thread_.joinable()) loop_thread_.join();
  }
  std::lock_guard lock(mutex_);
  state_ = VmState::kStopped;
  joined_ = true;
}

Result<uint32_t> Vm::AttachBlock(const std::string& path, bool read_only, const std::string& serial) {
  std::lock_guard lock(mutex_);
  if (state_ == VmState::kStopped) return Status::Error("cannot attach a disk to a stopped VM");
  if (serial.size() > virtio::kBlkIdBytes)
    return Status::Error(Format("serial \"%s\" is longer than %zu bytes", serial.c_str(), virtio::kBlkIdBytes));
  Slot* free_slot = nullptr;
  size_t same_kind = 0;
  for (auto& s : slots_) {
    if (!s->blk || s->read_only != read_only) continue;
    same_kind++;
    if (!free_slot && !s->blk->attached()) free_slot = s.get();
  }
  const char* kind = read_only ? "read-only" : "read-write";
  if (same_kind == 0) return Status::Error(Format("no %s block slot: the VM was configured without one", kind));
  if (!free_slot) return Status::Error(Format("no free %s block slot (%zu configured, all in use)", kind, same_kind));
  std::string error;
  auto backend = FileBlockBackend::open(path, read_only, &error);
  if (!backend) return Status::Error(error);
  if (!free_slot->blk->attach(std::move(backend), serial, &error)) return Status::Error(error);
  free_slot->path = path;
  free_slot->serial = serial;
  return free_slot->index;
}

Result<uint32_t> Vm::DetachBlock(const std::string& serial) {
  std::lock_guard lock(mutex_);
  if (serial.empty()) return Status::Error("a serial is needed to name the disk to detach");
  for (auto& s : slots_) {
    if (!s->blk || s->serial != serial || !s->blk->attached()) continue;
    s->blk->detach();
    s->path.clear();
    s->serial.clear();
    return s->index;
  }
  return Status::Error(Format("no attached disk has serial \"%s\"", serial.c_str()));
}

VmState Vm::state() const {
  std::lock_guard lock(mutex_);
  if (state_ != VmState::kCreated && state_ != VmState::kStopped && control_.stopping()) return VmState::kStopped;
  return state_;
}

uint64_t Vm::first_exit_us() const {
  uint64_t first = 0;
  for (const auto& v : vcpus_) {
    const uint64_t t = v->first_exit_us();
    if (t && (!first || t < first)) first = t;
  }
  return first;
}

json::Value Vm::StartPartsJson() const {
  // Each construction step since the one before it, then: Build's end to start(), start() to the
  // boot vCPU entering KVM_RUN (thread creation, its seccomp filter), and the guest's own code up
  // to its first exit (on PVM, kernel mode is emulated instruction by instruction). They add up
  // to firstExitUs.
  json::Value parts = json::Value::object();
  uint64_t prev = created_us_;
  for (const auto& [step, us] : marks_) {
    parts.set(step, json::Value::number(double(us - prev)));
    prev = us;
  }
  const uint64_t run = vcpus_.empty() ? 0 : vcpus_[0]->first_run_us();
  const uint64_t first = vcpus_.empty() ? 0 : vcpus_[0]->first_exit_us();
  if (run && run >= prev) parts.set("vcpuThreadToRun", json::Value::number(double(run - prev)));
  if (run && first >= run) parts.set("guestToFirstExit", json::Value::number(double(first - run)));
  return parts;
}

json::Value Vm::StatusJson() const {
  using json::Value;
  Value out = Value::object();
  out.set("state", Value::string(VmStateName(state())));
  out.set("vcpus", Value::number(config_.vcpus));
  out.set("memoryMiB", Value::number(double(config_.memory_mib)));
  out.set("hugepages", Value::boolean(ram_ && ram_->hugepages()));
  out.set("bootFormat", Value::string(boot_.format == x86::KernelFormat::kElfPvh ? "pvh" : "bzimage"));
  if (!restored_from_.empty()) out.set("restoredFrom", Value::string(restored_from_));
  if (control_.stopping()) {
    out.set("stopReason", Value::string(StopReasonName(control_.reason())));
    out.set("stopDetail", Value::string(control_.detail()));
  }
  uint64_t io = 0, mmio = 0, intr = 0;
  for (const auto& v : vcpus_) {
    io += v->exits().io.load(std::memory_order_relaxed);
    mmio += v->exits().mmio.load(std::memory_order_relaxed);
    intr += v->exits().intr.load(std::memory_order_relaxed);
  }
  Value exits = Value::object();
  exits.set("io", Value::number(double(io)));
  exits.set("mmio", Value::number(double(mmio)));
  exits.set("interrupted", Value::number(double(intr)));
  exits.set("unclaimedIo", Value::number(double(pio_.unclaimed())));
  exits.set("unclaimedMmio", Value::number(double(mmio_.unclaimed())));
  out.set("exits", exits);
  const uint64_t first = first_exit_us();
  if (first) out.set("firstExitUs", Value::number(double(first - created_us_)));
  out.set("startPartsUs", StartPartsJson());
  Value debug = Value::object();
  debug.set("last", Value::number(debug_port_.last()));
  debug.set("count", Value::number(double(debug_port_.count())));
  out.set("debugPort", debug);
  Value slots = Value::array();
  std::lock_guard lock(mutex_);
  for (const auto& s : slots_) {
    Value v = Value::object();
    v.set("slot", Value::number(s->index));
    v.set("device", Value::string(s->kind));
    v.set("address", Value::number(double(layout::VirtioMmioSlotAddr(s->index))));
    v.set("gsi", Value::number(layout::VirtioMmioSlotGsi(s->index)));
    if (s->blk) {
      v.set("readOnly", Value::boolean(s->read_only));
      v.set("attached", Value::boolean(!s->path.empty()));
      if (!s->path.empty()) {
        v.set("path", Value::string(s->path));
        v.set("serial", Value::string(s->serial));
      }
    }
    if (s->net) {
      v.set("tap", Value::string(s->path));
      std::lock_guard device_lock(s->net->mutex());
      const virtio::NetStats& st = s->net->stats();
      Value stats = Value::object();
      stats.set("rxFrames", Value::number(double(st.rx_frames)));
      stats.set("rxBytes", Value::number(double(st.rx_bytes)));
      stats.set("txFrames", Value::number(double(st.tx_frames)));
      stats.set("txBytes", Value::number(double(st.tx_bytes)));
      stats.set("dropped", Value::number(double(st.rx_oversize + st.rx_too_big + st.tx_oversize +
                                                st.tx_malformed + st.tx_errors)));
      v.set("net", std::move(stats));
    }
    slots.push(std::move(v));
  }
  out.set("slots", std::move(slots));
  return out;
}

}  // namespace vmm::kvm
