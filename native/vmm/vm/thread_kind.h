// The kinds of thread a VM runs (vm.h "Threads"), and the hook each calls on itself once its setup
// is done and before it serves the guest. vc-vmm installs a seccomp filter there
// (native/vmm/seccomp); the addon, whose VMs share Node's process, passes no hook.
#pragma once

#include <functional>

#include "common/result.h"

namespace vmm {

enum class ThreadKind {
  kMain,    // vc-vmm's main thread: waits for the VM to stop, then reports and tears it down
  kDevice,  // the event loop: queue notifications, host sockets, taps, the control socket
  kVcpu,    // one per vCPU: KVM_RUN and the exits it hands to the buses
};

inline const char* ThreadKindName(ThreadKind k) {
  switch (k) {
    case ThreadKind::kMain: return "main";
    case ThreadKind::kDevice: return "device";
    case ThreadKind::kVcpu: return "vcpu";
  }
  return "unknown";
}

// Runs on the thread it names; an error stops the VM (that thread serves nothing).
using ThreadSetup = std::function<vc::Status(ThreadKind)>;

}  // namespace vmm
