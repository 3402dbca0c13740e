#include "backends/vsock_unix.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "backends/vsock_connection.h"
#include "devices/log.h"

namespace vmm {

using virtio::VsockHeader;
using namespace vsock_unix;

namespace {

uint64_t now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000 + uint64_t(ts.tv_nsec) / 1000000;
}

// Parses "CONNECT <port>" (the newline already stripped).
bool parse_connect(const std::string& line, uint32_t* port) {
  static const char kPrefix[] = "CONNECT ";
  if (line.compare(0, sizeof(kPrefix) - 1, kPrefix) != 0) return false;
  std::string digits = line.substr(sizeof(kPrefix) - 1);
  if (!digits.empty() && digits.back() == '\r') digits.pop_back();
  if (digits.empty() || digits.size() > 10) return false;
  uint64_t value = 0;
  for (char ch : digits) {
    if (ch < '0' || ch > '9') return false;
    value = value * 10 + uint64_t(ch - '0');
  }
  if (value > UINT32_MAX) return false;
  *port = static_cast<uint32_t>(value);
  return true;
}

}  // namespace

VsockUnixBackend::VsockUnixBackend(EventLoop* loop, std::string uds_path)
    : loop_(loop), uds_path_(std::move(uds_path)) {}

VsockUnixBackend::~VsockUnixBackend() {
  reset();
  for (auto& [fd, line] : pending_) {
    loop_->remove(fd);
    close(fd);
  }
  if (timer_fd_ >= 0) {
    loop_->remove(timer_fd_);
    close(timer_fd_);
  }
  if (listen_fd_ >= 0) {
    loop_->remove(listen_fd_);
    close(listen_fd_);
    unlink(uds_path_.c_str());
  }
}

bool VsockUnixBackend::listen(std::string* error) {
  sockaddr_un addr;
  if (!fill_sockaddr(uds_path_, &addr)) {
    *error = "vsock socket path " + uds_path_ + " is too long for a Unix socket";
    return false;
  }
  listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  timer_fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (listen_fd_ < 0 || timer_fd_ < 0) {
    *error = std::string("vsock: cannot create sockets: ") + std::strerror(errno);
    return false;
  }
  unlink(uds_path_.c_str());  // a stale socket from a VMM that died
  // The guest's agent answers here: only the socket's owner may connect. chmod between bind and
  // listen, so no connection is ever accepted under the umask's mode.
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      chmod(uds_path_.c_str(), 0600) != 0 || ::listen(listen_fd_, 64) != 0) {
    *error = "vsock: cannot listen on " + uds_path_ + ": " + std::strerror(errno);
    return false;
  }
  if (!loop_->add(listen_fd_, EPOLLIN, [this](uint32_t) { on_listener_ready(); }) ||
      !loop_->add(timer_fd_, EPOLLIN, [this](uint32_t) { on_timer(); })) {
    *error = std::string("vsock: cannot watch sockets: ") + std::strerror(errno);
    return false;
  }
  return true;
}

// ---- Host side -------------------------------------------------------------------------------

void VsockUnixBackend::on_listener_ready() {
  for (;;) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    if (!device_) {
      close(fd);
      continue;
    }
    std::lock_guard<std::mutex> lock(device_->mutex());
    auto on_readable = [this, fd](uint32_t) { on_pending_readable(fd); };
    if (pending_.size() >= kMaxPendingClients || !loop_->add(fd, EPOLLIN, on_readable)) {
      close(fd);
      continue;
    }
    pending_[fd] = std::string();
  }
}

void VsockUnixBackend::on_pending_readable(int fd) {
  if (!device_) return;  // the device is gone (teardown)
  std::lock_guard<std::mutex> lock(device_->mutex());
  auto it = pending_.find(fd);
  if (it == pending_.end()) return;
  std::string& line = it->second;
  // Whatever follows the newline is connection data for the guest and must stay in the socket
  // until the connection exists: peek, then take the line's bytes only (was one recv per byte).
  for (;;) {
    char peeked[kMaxConnectLine + 1];
    ssize_t n = recv(fd, peeked, sizeof(peeked), MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    const char* newline = n > 0 ? static_cast<const char*>(std::memchr(peeked, '\n', size_t(n))) : nullptr;
    size_t take = n <= 0 ? 0 : newline ? size_t(newline - peeked) + 1 : size_t(n);
    if (take > 0 && recv(fd, peeked, take, 0) != static_cast<ssize_t>(take)) n = -1;
    uint32_t port = 0;
    bool complete = newline != nullptr && n > 0;
    if (n > 0) line.append(peeked, complete ? take - 1 : take);
    if (n > 0 && !complete && line.size() <= kMaxConnectLine) continue;
    if (line.size() > kMaxConnectLine) complete = false;
    loop_->remove(fd);
    bool ok = complete && parse_connect(line, &port) && conns_.size() < kMaxConnections;
    pending_.erase(it);
    if (!ok) {
      close(fd);
      return;
    }
    uint32_t host_port;
    do {
      host_port = next_host_port_++;
      if (next_host_port_ == 0) next_host_port_ = kFirstHostPort;
    } while (conns_.count({host_port, port}));
    auto c = std::make_unique<Connection>();
    c->fd = fd;
    c->host_port = host_port;
    c->guest_port = port;
    c->deadline_ms = now_ms() + static_cast<uint64_t>(connect_timeout_ms_);
    Key key{host_port, port};
    if (!loop_->add(fd, EPOLLONESHOT, [this, key](uint32_t ev) { on_connection_event(key, ev); })) {
      close(fd);
      return;
    }
    Connection* raw = c.get();
    conns_[key] = std::move(c);
    queue_control(raw, virtio::kVsockOpRequest);
    arm_timer();
    wake_device();
    return;
  }
}

void VsockUnixBackend::on_connection_event(Key key, uint32_t events) {
  if (!device_) return;  // the device is gone (teardown)
  std::lock_guard<std::mutex> lock(device_->mutex());
  auto it = conns_.find(key);
  if (it == conns_.end()) return;
  Connection* c = it->second.get();
  if (events & EPOLLHUP) c->hup_seen = true;
  if (!c->established) {
    // The host client gave up before the guest answered.
    if (events & (EPOLLHUP | EPOLLERR | EPOLLRDHUP)) {
      queue_rst(c->host_port, c->guest_port);
      close_connection(key);
      wake_device();
    } else {
      update_interest(c);
    }
    return;
  }
  if (events & EPOLLOUT) flush_to_host(c);
  if (conns_.count(key) == 0) return;  // flushing may have ended it
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR | EPOLLRDHUP)) {
    c->host_readable = true;
    schedule(c);
  }
  update_interest(c);
  wake_device();
}

void VsockUnixBackend::on_timer() {
  if (!device_) return;  // the device is gone (teardown)
  std::lock_guard<std::mutex> lock(device_->mutex());
  uint64_t expirations;
  ssize_t n = read(timer_fd_, &expirations, sizeof(expirations));
  (void)n;
  uint64_t now = now_ms();
  std::vector<Key> expired;
  for (auto& [key, c] : conns_)
    if (!c->established && c->deadline_ms <= now) expired.push_back(key);
  for (const Key& key : expired) {
    queue_rst(key.first, key.second);
    close_connection(key);
  }
  arm_timer();
  if (!expired.empty()) wake_device();
}

void VsockUnixBackend::arm_timer() {
  uint64_t earliest = 0;
  for (auto& [key, c] : conns_)
    if (!c->established && (earliest == 0 || c->deadline_ms < earliest)) earliest = c->deadline_ms;
  itimerspec spec{};
  if (earliest) {
    spec.it_value.tv_sec = static_cast<time_t>(earliest / 1000);
    spec.it_value.tv_nsec = static_cast<long>(earliest % 1000) * 1000000;
  }
  timerfd_settime(timer_fd_, TFD_TIMER_ABSTIME, &spec, nullptr);
}

// Re-arms the one-shot registration with what the connection can use now. One-shot, because a
// hung-up socket reports EPOLLHUP on every wait, even with no events requested, and we may have
// to sit on it until the guest grants credit.
void VsockUnixBackend::update_interest(Connection* c) {
  uint32_t events = 0;
  if (c->established) {
    bool guest_receives = !(c->guest_shutdown & virtio::kVsockShutdownRcv);
    if (!c->host_readable && !c->host_eof && !c->hup_seen && guest_receives && c->peer_credit() > 0)
      events |= EPOLLIN;
    if (c->to_host_pending() > 0) events |= EPOLLOUT;
  }
  if (c->hup_seen && events == 0) return;
  loop_->modify(c->fd, events | EPOLLRDHUP | EPOLLONESHOT);
}

void VsockUnixBackend::flush_to_host(Connection* c) {
  while (c->to_host_pending() > 0) {
    ssize_t n = send(c->fd, c->to_host.data() + c->to_host_off, c->to_host_pending(),
                     MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    if (n <= 0) {  // the host end is gone: the guest's stream cannot be delivered
      queue_rst(c->host_port, c->guest_port);
      close_connection({c->host_port, c->guest_port});
      return;
    }
    c->to_host_off += static_cast<size_t>(n);
    c->fwd_cnt += static_cast<uint32_t>(n);
  }
  if (c->to_host_pending() == 0) {
    c->to_host.clear();
    c->to_host_off = 0;
  }
  if (c->fwd_cnt - c->announced_fwd_cnt >= kCreditUpdateThreshold && !c->credit_update_queued) {
    c->credit_update_queued = true;
    queue_control(c, virtio::kVsockOpCreditUpdate);
  }
  maybe_finish_shutdown(c);
}

// The guest's SHUTDOWN takes effect once everything it sent before has reached the host.
void VsockUnixBackend::maybe_finish_shutdown(Connection* c) {
  if (c->to_host_pending() > 0 || !(c->guest_shutdown & virtio::kVsockShutdownSend)) return;
  if ((c->guest_shutdown & kShutdownBoth) == kShutdownBoth) {
    // A full close: Linux waits for our RST to finish its side.
    queue_rst(c->host_port, c->guest_port);
    close_connection({c->host_port, c->guest_port});
    return;
  }
  shutdown(c->fd, SHUT_WR);
}

void VsockUnixBackend::close_connection(Key key) {
  auto it = conns_.find(key);
  if (it == conns_.end()) return;
  loop_->remove(it->second->fd);
  close(it->second->fd);
  conns_.erase(it);  // a stale rx_ready_ entry finds nothing and is skipped
}

void VsockUnixBackend::wake_device() {
  if (device_) device_->wake_rx();
}

void VsockUnixBackend::reset() {
  std::vector<Key> keys;
  for (auto& [key, c] : conns_) keys.push_back(key);
  for (const Key& key : keys) close_connection(key);
  rx_ready_.clear();
  orphan_rsts_.clear();
  if (timer_fd_ >= 0) arm_timer();
}

}  // namespace vmm
