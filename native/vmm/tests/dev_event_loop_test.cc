// The epoll event loop: dispatch, self-removal inside a callback, and stop from a callback.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "devices/event_loop.h"
#include "tests/check.h"

VMM_TEST(dev_event_loop_dispatches_modifies_and_removes) {
  vmm::EventLoop loop;
  CHECK(loop.ok());
  int a = eventfd(1, EFD_NONBLOCK), b = eventfd(1, EFD_NONBLOCK);
  int a_calls = 0, b_calls = 0;
  CHECK(loop.add(a, EPOLLIN, [&](uint32_t ev) {
    a_calls++;
    CHECK(ev & EPOLLIN);
    loop.remove(a);  // removing itself while running
  }));
  CHECK(loop.add(b, EPOLLIN, [&](uint32_t) { b_calls++; }));
  CHECK(!loop.add(b, EPOLLIN, [](uint32_t) {}));  // already watched
  CHECK_EQ(loop.run_once(100), 2);
  CHECK(loop.modify(b, 0));
  CHECK_EQ(loop.run_once(10), 0);
  CHECK_EQ(a_calls, 1);
  CHECK_EQ(b_calls, 1);
  CHECK(!loop.remove(a));
  CHECK(loop.remove(b));
  close(a);
  close(b);
}

VMM_TEST(dev_event_loop_stops_from_a_callback) {
  vmm::EventLoop loop;
  int fd = eventfd(1, EFD_NONBLOCK);
  int calls = 0;
  loop.add(fd, EPOLLIN, [&](uint32_t) {
    calls++;
    loop.stop();
  });
  loop.run();  // returns because the callback stopped it
  CHECK_EQ(calls, 1);
  loop.remove(fd);
  close(fd);
}
