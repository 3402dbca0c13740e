#include "devices/event_loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>

namespace vmm {

namespace {
constexpr uint64_t kStopToken = 0;  // entries start at 1
constexpr int kMaxEvents = 64;
}  // namespace

EventLoop::EventLoop() {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  stopfd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (epfd_ >= 0 && stopfd_ >= 0) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kStopToken;
    epoll_ctl(epfd_, EPOLL_CTL_ADD, stopfd_, &ev);
  }
}

EventLoop::~EventLoop() {
  if (stopfd_ >= 0) close(stopfd_);
  if (epfd_ >= 0) close(epfd_);
}

bool EventLoop::add(int fd, uint32_t events, Callback callback) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (tokens_.count(fd)) {
    errno = EEXIST;
    return false;
  }
  uint64_t token = next_token_++;
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = token;
  if (epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) != 0) return false;
  tokens_[fd] = token;
  entries_[token] = std::make_shared<Entry>(Entry{fd, std::move(callback)});
  return true;
}

bool EventLoop::modify(int fd, uint32_t events) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = tokens_.find(fd);
  if (it == tokens_.end()) {
    errno = ENOENT;
    return false;
  }
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = it->second;
  return epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) == 0;
}

bool EventLoop::remove(int fd) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = tokens_.find(fd);
  if (it == tokens_.end()) {
    errno = ENOENT;
    return false;
  }
  // An event for this fd may already sit in the array run_once() is dispatching; dropping the
  // token makes that stale event find nothing instead of reaching a reused fd's callback.
  entries_.erase(it->second);
  tokens_.erase(it);
  return epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr) == 0;
}

int EventLoop::run_once(int timeout_ms) {
  epoll_event events[kMaxEvents];
  int n = epoll_wait(epfd_, events, kMaxEvents, timeout_ms);
  if (n < 0) return errno == EINTR ? 0 : -1;
  int ran = 0;
  for (int i = 0; i < n; i++) {
    // struct epoll_event is packed on x86-64: copy the fields out rather than bind references
    // to misaligned members.
    uint64_t token = events[i].data.u64;
    uint32_t bits = events[i].events;
    if (token == kStopToken) {
      uint64_t value;
      ssize_t r = read(stopfd_, &value, sizeof(value));
      (void)r;
      continue;
    }
    if (stop_requested_.load()) break;  // stop() takes effect before the next callback
    std::shared_ptr<Entry> entry;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = entries_.find(token);
      if (it == entries_.end()) continue;
      entry = it->second;  // keeps the callback alive even if it removes itself
    }
    entry->callback(bits);
    ran++;
  }
  return stop_requested_.exchange(false) ? -1 : ran;
}

void EventLoop::run() {
  while (run_once(-1) >= 0) {
  }
}

void EventLoop::stop() {
  stop_requested_.store(true);
  uint64_t one = 1;  // wakes an epoll_wait in progress
  ssize_t r = write(stopfd_, &one, sizeof(one));
  (void)r;
}

}  // namespace vmm
