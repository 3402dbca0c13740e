// Vm::Snapshot: pause, complete pending I/O, quiesce the device thread, capture, checksum RAM,
// write the state file then the memory file, stop (docs/snapshots.md "Order of operations").
#include <dirent.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "kvm/msrs.h"
#include "vm/vm.h"

namespace vmm::kvm {

using vc::Format;
using ull = unsigned long long;

namespace {

constexpr const char* kVmmVersion = "vc-vmm 0.1.0";

// `dir` must be a directory with nothing in it: a snapshot never overwrites or mixes with files
// it did not write. Returns its fd for the openat calls.
// `base` (or -1): the directory already open (--snapshot-dir), reopened so each attempt reads it
// from its start.
Result<UniqueFd> OpenEmptyDir(const std::string& dir, int base) {
  if (dir.empty() || dir[0] != '/') return Status::Error("snapshot: dir \"" + dir + "\" is not an absolute path");
  // Without O_DIRECTORY: the device thread's seccomp list refuses that bit (it is half of
  // O_TMPFILE); fstat says whether it is a directory instead.
  UniqueFd fd(base >= 0 ? ::openat(base, ".", O_RDONLY | O_CLOEXEC) : ::open(dir.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return ErrnoStatus(("snapshot: dir " + dir).c_str());
  struct stat st;
  if (::fstat(fd.get(), &st) < 0) return ErrnoStatus(("snapshot: dir " + dir).c_str());
  if (!S_ISDIR(st.st_mode)) return Status::Error("snapshot: dir " + dir + " is not a directory");
  // getdents64 itself rather than opendir: one call the device thread's seccomp list names.
  alignas(8) char buf[4096];
  long n;
  while ((n = ::syscall(SYS_getdents64, fd.get(), buf, sizeof buf)) > 0) {
    for (long at = 0; at < n;) {
      auto* e = reinterpret_cast<dirent64*>(buf + at);
      if (std::strcmp(e->d_name, ".") && std::strcmp(e->d_name, ".."))
        return Status::Error("snapshot: dir " + dir + " is not empty (it holds \"" + e->d_name + "\")");
      at += e->d_reclen;
    }
  }
  if (n < 0) return ErrnoStatus(("snapshot: read dir " + dir).c_str());
  return fd;
}

Status WriteFileAt(int dirfd, const char* name, const std::vector<iovec>& parts) {
  UniqueFd fd(::openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd.valid()) return ErrnoStatus(Format("snapshot: create %s", name).c_str());
  uint64_t offset = 0;
  for (const iovec& part : parts) {
    const auto* p = static_cast<const uint8_t*>(part.iov_base);
    uint64_t done = 0;
    while (done < part.iov_len) {
      // At most 1 GiB per call: pwritev's count is an ssize_t, and a shorter write just loops.
      iovec v{const_cast<uint8_t*>(p + done), std::min<uint64_t>(part.iov_len - done, 1ull << 30)};
      ssize_t n = ::pwritev(fd.get(), &v, 1, off_t(offset));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return ErrnoStatus(Format("snapshot: write %s at byte %llu", name, (ull)offset).c_str());
      done += uint64_t(n);
      offset += uint64_t(n);
    }
  }
  if (::fsync(fd.get()) < 0) return ErrnoStatus(Format("snapshot: fsync %s", name).c_str());
  return Status();
}

}  // namespace

std::vector<uint32_t> Vm::SnapshotMsrIndices() {
  std::vector<uint32_t> list = host_msr_indices_;  // KVM_GET_MSR_INDEX_LIST, kept by CreateVcpus
  // KVM emulates the MTRRs for every vCPU without listing them; Linux programs them at boot.
  list.push_back(msr::kIa32MtrrDefType);
  for (uint32_t i = 0x200; i < 0x210; i++) list.push_back(i);  // 8 variable ranges (base, mask)
  for (uint32_t i : {0x250u, 0x258u, 0x259u}) list.push_back(i);
  for (uint32_t i = 0x268; i < 0x270; i++) list.push_back(i);  // fixed ranges
  std::sort(list.begin(), list.end());
  list.erase(std::unique(list.begin(), list.end()), list.end());
  return list;
}

void Vm::SetSnapshotDir(const std::string& path, UniqueFd fd, bool jailed) {
  snapshot_dir_ = path;
  snapshot_dir_fd_ = std::move(fd);
  jailed_ = jailed;
}

Status Vm::ParkDeviceThread() {
  // Called on the device thread (the control op), nothing else runs there while it works.
  if (!loop_thread_.joinable() || std::this_thread::get_id() == loop_thread_.get_id()) return Status();
  if (!park_fd_.valid()) {
    park_fd_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!park_fd_.valid()) return ErrnoStatus("snapshot: eventfd to park the device thread");
    const int fd = park_fd_.get();
    if (!loop_.add(fd, EPOLLIN, [this, fd](uint32_t) {
          uint64_t n;
          if (::read(fd, &n, sizeof n) < 0) return;
          std::unique_lock lock(park_mutex_);
          device_parked_ = true;
          park_cv_.notify_all();
          park_cv_.wait(lock, [this] { return device_release_; });
          device_parked_ = false;
          device_release_ = false;
          park_cv_.notify_all();
        }))
      return ErrnoStatus("snapshot: watch the park eventfd");
  }
  const uint64_t one = 1;
  if (::write(park_fd_.get(), &one, sizeof one) != sizeof one) return ErrnoStatus("snapshot: park the device thread");
  std::unique_lock lock(park_mutex_);
  park_cv_.wait(lock, [this] { return device_parked_ || control_.stopping(); });
  if (!device_parked_) return Status::Error("snapshot: the VM stopped while its device thread was being parked");
  return Status();
}

void Vm::UnparkDeviceThread() {
  std::unique_lock lock(park_mutex_);
  if (!device_parked_) return;
  device_release_ = true;
  park_cv_.notify_all();
  park_cv_.wait(lock, [this] { return !device_parked_; });
}

Result<json::Value> Vm::Snapshot(const std::string& dir) {
  const uint64_t t0 = MonotonicMicros();
  json::Value us = json::Value::object();
  uint64_t mark = t0;
  auto part = [&](const char* name) {
    const uint64_t now = MonotonicMicros();
    us.set(name, json::Value::number(double(now - mark)));
    mark = now;
  };
  {
    std::lock_guard lock(mutex_);
    if (state_ != VmState::kRunning && state_ != VmState::kPaused)
      return Status::Error(Format("cannot snapshot a VM that is %s", VmStateName(state_)));
  }
  if (jailed_ && !snapshot_dir_fd_.valid())
    return Status::Error("snapshot: this VMM runs jailed, where the host's paths are out of reach; start it with "
                         "--snapshot-dir DIR to snapshot into DIR");
  if (snapshot_dir_fd_.valid() && dir != snapshot_dir_)
    return Status::Error("snapshot: dir " + dir + " is not " + snapshot_dir_ + ", the --snapshot-dir this VMM opened");
  auto dirfd = OpenEmptyDir(dir, snapshot_dir_fd_.valid() ? snapshot_dir_fd_.get() : -1);
  if (!dirfd.ok()) return dirfd.status();
  Status s = Pause();
  if (!s.ok()) return s;
  part("pause");
  if (!(s = ParkDeviceThread()).ok()) return s;
  part("quiesceDevices");

  snapshot::StateFileBuilder builder;
  // vCPUs, each on its own thread.
  const std::vector<uint32_t> msrs = SnapshotMsrIndices();
  const int xsave2 = vm_fd_.CheckExtension(KVM_CAP_XSAVE2);
  std::vector<snapshot::VcpuState> states(vcpus_.size());
  std::vector<Status> results(vcpus_.size());
  s = control_.RunOnParked(vcpus_.size(), [&](uint32_t i) {
    results[i] = vcpus_[i]->CaptureState(msrs, xsave2 > 0 ? xsave2 : 0, &states[i]);
  });
  for (size_t i = 0; s.ok() && i < results.size(); i++) s = results[i];
  for (size_t i = 0; s.ok() && i < states.size(); i++)
    builder.add(snapshot::Tag::kVcpu, uint32_t(i), snapshot::EncodeVcpuState(states[i]));
  part("vcpus");
  // The VM-wide KVM state, on this thread.
  snapshot::IrqchipState irq;
  kvm_irqchip chip{};
  for (uint32_t id : {KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE, KVM_IRQCHIP_IOAPIC}) {
    if (!s.ok()) break;
    chip = kvm_irqchip{};
    chip.chip_id = id;
    s = vm_fd_.GetIrqchip(&chip);
    if (id == KVM_IRQCHIP_PIC_MASTER) irq.pic_master = chip.chip.pic;
    if (id == KVM_IRQCHIP_PIC_SLAVE) irq.pic_slave = chip.chip.pic;
    if (id == KVM_IRQCHIP_IOAPIC) irq.ioapic = chip.chip.ioapic;
  }
  kvm_pit_state2 pit{};
  kvm_clock_data clock{};
  if (s.ok()) s = vm_fd_.GetPit2(&pit);
  if (s.ok()) s = vm_fd_.GetClock(&clock);
  // A restore sets the clock's value only; the host-side fields describe this host's moment.
  clock.flags &= 2 | 4 | 8;
  clock.pad0 = 0;
  std::memset(clock.pad, 0, sizeof clock.pad);
  if (s.ok()) {
    builder.add(snapshot::Tag::kIrqchip, 0, snapshot::EncodeIrqchipState(irq));
    builder.add(snapshot::Tag::kPit, 0, snapshot::EncodePitState(pit));
    builder.add(snapshot::Tag::kClock, 0, snapshot::EncodeClockState(clock));
    s = SaveDevices(&builder);
  }
  part("machineAndDevices");

  snapshot::SnapshotId id;
  if (s.ok() && ::getrandom(id.bytes, sizeof id.bytes, 0) != sizeof id.bytes) s = ErrnoStatus("snapshot: getrandom for the snapshot id");
  snapshot::MemoryFileInfo memory;
  if (s.ok()) {
    memory = snapshot::DescribeMemory(ram_->host(), ram_->bytes(), id);
    builder.add(snapshot::Tag::kMemory, 0, snapshot::EncodeMemoryFileInfo(memory));
    builder.add(snapshot::Tag::kVm, 0, snapshot::EncodeVmInfo({config_.vcpus, ram_->bytes(), VmConfigJson(config_)}));
  }
  part("ramChecksum");
  std::vector<uint8_t> state_bytes;
  if (s.ok()) {
    auto file = builder.finish(kVmmVersion);
    if (file.ok()) state_bytes = std::move(file.value());
    else s = file.status();
  }
  bool state_written = false;
  if (s.ok()) {
    s = WriteFileAt(dirfd->get(), "state", {{state_bytes.data(), state_bytes.size()}});
    state_written = true;  // or half-written: removed below on failure
  }
  part("writeState");
  std::vector<uint8_t> header;
  if (s.ok()) {
    header = snapshot::EncodeMemoryHeader(ram_->bytes(), id);
    s = WriteFileAt(dirfd->get(), "memory", {{header.data(), header.size()}, {ram_->host(), ram_->bytes()}});
  }
  if (s.ok() && ::fsync(dirfd->get()) < 0) s = ErrnoStatus("snapshot: fsync dir");
  part("writeMemory");
  if (!s.ok()) {
    // Nothing half-done is left behind to be mistaken for a snapshot; the VM stays paused.
    if (state_written) ::unlinkat(dirfd->get(), "state", 0);
    ::unlinkat(dirfd->get(), "memory", 0);
    UnparkDeviceThread();
    return s;
  }
  // The source never runs on: it would be a second guest going on from the same random state as
  // every VM restored from this snapshot.
  Stop(StopReason::kRequested, "snapshot taken to " + dir);
  UnparkDeviceThread();
  part("stop");
  json::Value out = json::Value::object();
  json::Value bytes = json::Value::object();
  bytes.set("state", json::Value::number(double(state_bytes.size())));
  bytes.set("memory", json::Value::number(double(header.size() + ram_->bytes())));
  out.set("bytes", std::move(bytes));
  us.set("total", json::Value::number(double(MonotonicMicros() - t0)));
  out.set("us", std::move(us));
  return out;
}

}  // namespace vmm::kvm
