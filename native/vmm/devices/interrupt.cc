#include "devices/interrupt.h"

#include <unistd.h>

namespace vmm {

void EventFdInterrupt::trigger() {
  uint64_t one = 1;
  // EAGAIN means the counter is saturated: the interrupt is pending anyway.
  ssize_t n = ::write(fd_, &one, sizeof(one));
  (void)n;
}

}  // namespace vmm
