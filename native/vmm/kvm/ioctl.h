// The ioctl wrapper kvm.cc and kvm_state.cc share (internal to native/vmm/kvm).
#pragma once

#include <sys/ioctl.h>

#include <cerrno>

#include "kvm/kvm.h"

namespace vmm::kvm::detail {

// ioctl that retries when a signal interrupted it: only KVM_RUN is meant to return EINTR to us
// (that is how a vCPU is kicked); for every other call an interruption is noise.
inline int Ioctl(int fd, unsigned long request, const void* arg) {
  int rc;
  do rc = ::ioctl(fd, request, arg);
  while (rc < 0 && errno == EINTR);
  return rc;
}

inline Status Check(int rc, const char* what) { return rc < 0 ? ErrnoStatus(what) : Status(); }

}  // namespace vmm::kvm::detail
