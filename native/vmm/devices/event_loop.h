// A small epoll loop for the VMM's device thread: ioeventfds (queue notifications), host sockets
// of the vsock backend, and whatever else the core wants to watch. add/modify/remove may be called
// from any thread and from inside a callback (a callback may remove its own fd).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace vmm {

class EventLoop {
 public:
  // Called with the epoll event bits (EPOLLIN, EPOLLOUT, EPOLLHUP, ...).
  using Callback = std::function<void(uint32_t events)>;

  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // False when epoll or the stop eventfd could not be created (errno is kept).
  bool ok() const { return epfd_ >= 0 && stopfd_ >= 0; }

  // Watches `fd` for `events` (level-triggered unless EPOLLET is given). The fd stays owned by
  // the caller, who must remove() it before closing it. False with errno set on failure.
  bool add(int fd, uint32_t events, Callback callback);
  bool modify(int fd, uint32_t events);
  bool remove(int fd);

  // Waits up to timeout_ms (-1: forever) and dispatches ready events. Returns the number of
  // callbacks run, or -1 when stop() was called.
  int run_once(int timeout_ms);

  // Dispatches until stop() is called (from any thread, or from a callback).
  void run();
  void stop();

 private:
  struct Entry {
    int fd;
    Callback callback;
  };

  int epfd_ = -1;
  int stopfd_ = -1;
  std::atomic<bool> stop_requested_{false};
  std::mutex mutex_;  // guards entries_ and next_token_, never held while a callback runs
  uint64_t next_token_ = 1;
  std::unordered_map<int, uint64_t> tokens_;                     // fd -> token
  std::unordered_map<uint64_t, std::shared_ptr<Entry>> entries_;  // token -> entry
};

}  // namespace vmm
