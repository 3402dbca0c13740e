// One interrupt line as a device sees it. Devices only ever pulse the line (edge semantics):
// under KVM that is a write to an irqfd registered with KVM_IRQFD, in unit tests a counter.
#pragma once

#include <atomic>
#include <cstdint>

namespace vmm {

class Interrupt {
 public:
  virtual ~Interrupt() = default;
  virtual void trigger() = 0;
};

// Writes 1 to an eventfd the core registered with KVM_IRQFD. The fd is borrowed, not owned: the
// core creates it before the device and closes it after.
class EventFdInterrupt final : public Interrupt {
 public:
  explicit EventFdInterrupt(int eventfd) : fd_(eventfd) {}
  void trigger() override;
  int fd() const { return fd_; }

 private:
  int fd_;
};

// Counts triggers; for tests and for devices whose line is not wired.
class CountingInterrupt final : public Interrupt {
 public:
  void trigger() override { count_.fetch_add(1, std::memory_order_relaxed); }
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> count_{0};
};

}  // namespace vmm
