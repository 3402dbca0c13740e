// The guest half of the hybrid-vsock backend: packets from the guest (connection requests,
// data, credit, shutdown, reset) and the packets it is owed, written into its rx buffers.
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <string>

#include "backends/vsock_connection.h"
#include "backends/vsock_unix.h"
#include "devices/log.h"

namespace vmm {

using virtio::VsockHeader;
using namespace vsock_unix;

VsockHeader VsockUnixBackend::header_for(const Connection& c, uint16_t op, uint32_t flags,
                                         uint32_t len) const {
  VsockHeader h{};
  h.src_cid = virtio::kVsockHostCid;
  h.dst_cid = device_ ? device_->guest_cid() : 0;
  h.src_port = c.host_port;
  h.dst_port = c.guest_port;
  h.len = len;
  h.type = virtio::kVsockTypeStream;
  h.op = op;
  h.flags = flags;
  h.buf_alloc = kBufAlloc;
  h.fwd_cnt = c.fwd_cnt;
  return h;
}

void VsockUnixBackend::queue_control(Connection* c, uint16_t op, uint32_t flags) {
  c->control.emplace_back(op, flags);
  schedule(c);
}

void VsockUnixBackend::schedule(Connection* c) {
  if (c->scheduled) return;
  c->scheduled = true;
  rx_ready_.push_back({c->host_port, c->guest_port});
}

void VsockUnixBackend::queue_rst(uint32_t host_port, uint32_t guest_port) {
  if (orphan_rsts_.size() >= kMaxConnections) return;
  VsockHeader h{};
  h.src_cid = virtio::kVsockHostCid;
  h.dst_cid = device_ ? device_->guest_cid() : 0;
  h.src_port = host_port;
  h.dst_port = guest_port;
  h.type = virtio::kVsockTypeStream;
  h.op = virtio::kVsockOpRst;
  orphan_rsts_.push_back(h);
}

void VsockUnixBackend::from_guest(const VsockHeader& hdr, virtio::ChainReader* payload) {
  Key key{hdr.dst_port, hdr.src_port};
  auto it = conns_.find(key);
  if (it == conns_.end()) {
    if (hdr.op == virtio::kVsockOpRequest) handle_guest_request(hdr);
    else if (hdr.op != virtio::kVsockOpRst) queue_rst(hdr.dst_port, hdr.src_port);
    return;
  }
  handle_connected_packet(it->second.get(), hdr, payload);
}

void VsockUnixBackend::handle_guest_request(const VsockHeader& hdr) {
  std::string path = uds_path_ + "_" + std::to_string(hdr.dst_port);
  sockaddr_un addr;
  int fd = -1;
  if (conns_.size() < kMaxConnections && fill_sockaddr(path, &addr)) {
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    // A Unix stream connect completes at once or fails (nothing listening, backlog full).
    if (fd >= 0 && connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      close(fd);
      fd = -1;
    }
  }
  Key key{hdr.dst_port, hdr.src_port};
  auto on_event = [this, key](uint32_t ev) { on_connection_event(key, ev); };
  if (fd < 0 || !loop_->add(fd, EPOLLONESHOT, on_event)) {
    if (fd >= 0) close(fd);
    queue_rst(hdr.dst_port, hdr.src_port);
    return;
  }
  auto c = std::make_unique<Connection>();
  c->fd = fd;
  c->host_port = hdr.dst_port;
  c->guest_port = hdr.src_port;
  c->established = true;
  c->peer_buf_alloc = hdr.buf_alloc;
  c->peer_fwd_cnt = hdr.fwd_cnt;
  Connection* raw = c.get();
  conns_[key] = std::move(c);
  queue_control(raw, virtio::kVsockOpResponse);
  update_interest(raw);
}

void VsockUnixBackend::handle_connected_packet(Connection* c, const VsockHeader& hdr,
                                               virtio::ChainReader* payload) {
  Key key{c->host_port, c->guest_port};
  // Every packet carries the guest's current receive credit.
  c->peer_buf_alloc = hdr.buf_alloc;
  c->peer_fwd_cnt = hdr.fwd_cnt;
  if (c->peer_credit() > 0) {
    c->credit_requested = false;
    // Host bytes that waited for credit can go now.
    if (c->host_readable) schedule(c);
  }
  switch (hdr.op) {
    case virtio::kVsockOpRst:
      close_connection(key);  // the host client sees EOF (or never gets its OK)
      return;
    case virtio::kVsockOpResponse: {
      if (c->established) break;  // a duplicate: ignore it
      c->established = true;
      std::string ok = "OK " + std::to_string(c->host_port) + "\n";
      // A freshly accepted socket has an empty send buffer, so this short line goes in whole.
      ssize_t sent = send(c->fd, ok.data(), ok.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      if (sent != static_cast<ssize_t>(ok.size())) {
        queue_rst(c->host_port, c->guest_port);
        close_connection(key);
        return;
      }
      arm_timer();
      break;
    }
    case virtio::kVsockOpRequest:
      // The guest reused a live connection's ports: both ends are confused, so end it.
      queue_rst(c->host_port, c->guest_port);
      close_connection(key);
      return;
    case virtio::kVsockOpRw: {
      if (!c->established || (c->guest_shutdown & virtio::kVsockShutdownSend)) {
        queue_rst(c->host_port, c->guest_port);
        close_connection(key);
        return;
      }
      uint32_t len = hdr.len;
      if (c->to_host_pending() + len > kBufAlloc) {
        // The guest ignored the credit we gave it; buffering more would be unbounded.
        device_warn("virtio-vsock: guest port %u overran its credit; resetting", c->guest_port);
        queue_rst(c->host_port, c->guest_port);
        close_connection(key);
        return;
      }
      // With nothing queued ahead of it, the payload goes from guest memory straight into the
      // socket; only what the socket cannot take now is copied and queued.
      if (c->to_host_pending() == 0 && len > 0) {
        std::vector<iovec> iov;
        payload->iovecs(len, &iov);
        msghdr msg{};
        msg.msg_iov = iov.data();
        msg.msg_iovlen = iov.size();
        ssize_t n;
        do {
          n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        } while (n < 0 && errno == EINTR);
        if (n < 0 && errno != EAGAIN) {
          queue_rst(c->host_port, c->guest_port);
          close_connection(key);
          return;
        }
        if (n > 0) {
          payload->skip(static_cast<uint32_t>(n));
          c->fwd_cnt += static_cast<uint32_t>(n);
          len -= static_cast<uint32_t>(n);
        }
      }
      size_t old = c->to_host.size();
      c->to_host.resize(old + len);
      payload->read(c->to_host.data() + old, len);
      flush_to_host(c);
      if (conns_.count(key) == 0) return;
      break;
    }
    case virtio::kVsockOpShutdown:
      c->guest_shutdown |= hdr.flags & kShutdownBoth;
      maybe_finish_shutdown(c);
      if (conns_.count(key) == 0) return;
      break;
    case virtio::kVsockOpCreditRequest:
      if (!c->credit_update_queued) {
        c->credit_update_queued = true;
        queue_control(c, virtio::kVsockOpCreditUpdate);
      }
      break;
    case virtio::kVsockOpCreditUpdate:
      break;  // the credit fields were taken above
  }
  update_interest(c);
}

bool VsockUnixBackend::has_rx() const { return !orphan_rsts_.empty() || !rx_ready_.empty(); }

ssize_t VsockUnixBackend::read_to_guest(Connection* c, virtio::VsockRxBuffer* buffers,
                                        size_t count) {
  rx_iov_.clear();
  rx_buffer_want_.clear();
  uint32_t credit = c->peer_credit(), want = 0;
  for (size_t i = 0; i < count && want < credit; i++) {
    uint32_t w = buffers[i].payload_iovecs(credit - want, &rx_iov_);
    if (w == 0) break;
    rx_buffer_want_.push_back(w);
    want += w;
  }
  if (want == 0) {
    errno = EAGAIN;
    return -1;
  }
  size_t iovcnt = std::min(rx_iov_.size(), static_cast<size_t>(IOV_MAX));
  ssize_t n;
  do {
    n = readv(c->fd, rx_iov_.data(), static_cast<int>(iovcnt));
  } while (n < 0 && errno == EINTR);
  if (n <= 0) return n;
  uint32_t got = static_cast<uint32_t>(n);
  c->rx_cnt += got;
  // A short read most likely drained the socket; stop polling it and let epoll say.
  if (got < want) c->host_readable = false;
  c->announced_fwd_cnt = c->fwd_cnt;
  size_t used = 0;
  for (uint32_t left = got; used < rx_buffer_want_.size() && left > 0; used++) {
    uint32_t take = std::min(left, rx_buffer_want_[used]);
    buffers[used].payload_filled(take);
    buffers[used].finish(header_for(*c, virtio::kVsockOpRw, 0, 0));
    left -= take;
  }
  return static_cast<ssize_t>(used);
}

size_t VsockUnixBackend::to_guest(virtio::VsockRxBuffer* buffers, size_t count) {
  if (count == 0) return 0;
  virtio::VsockRxBuffer* buffer = &buffers[0];
  if (!orphan_rsts_.empty()) {
    buffer->finish(orphan_rsts_.front());
    orphan_rsts_.pop_front();
    return 1;
  }
  while (!rx_ready_.empty()) {
    Key key = rx_ready_.front();
    auto it = conns_.find(key);
    if (it == conns_.end()) {
      rx_ready_.pop_front();
      continue;
    }
    Connection* c = it->second.get();
    if (!c->control.empty()) {
      auto [op, flags] = c->control.front();
      c->control.pop_front();
      if (op == virtio::kVsockOpCreditUpdate) c->credit_update_queued = false;
      c->announced_fwd_cnt = c->fwd_cnt;
      buffer->finish(header_for(*c, op, flags, 0));
      return 1;
    }
    bool wants_read = c->established && c->host_readable && !c->host_eof &&
                      !(c->guest_shutdown & virtio::kVsockShutdownRcv);
    if (wants_read && c->peer_credit() == 0) {
      // The guest's receive buffer is full; ask it to tell us when it drains.
      wants_read = false;
      if (!c->credit_requested) {
        c->credit_requested = true;
        c->announced_fwd_cnt = c->fwd_cnt;
        buffer->finish(header_for(*c, virtio::kVsockOpCreditRequest, 0, 0));
        return 1;
      }
    }
    if (wants_read) {
      ssize_t filled = read_to_guest(c, buffers, count);
      if (filled > 0) {
        rx_ready_.pop_front();
        if (!c->host_readable) {
          c->scheduled = false;
          update_interest(c);
        } else {
          rx_ready_.push_back(key);  // round robin: other connections get the next buffers
        }
        return static_cast<size_t>(filled);
      }
      c->host_readable = false;
      if (filled == 0) {
        // End of the host's stream. A full close (HUP) means it will not read either.
        c->host_eof = true;
        c->announced_fwd_cnt = c->fwd_cnt;
        buffer->finish(header_for(*c, virtio::kVsockOpShutdown,
                                  c->hup_seen ? kShutdownBoth : virtio::kVsockShutdownSend, 0));
        rx_ready_.pop_front();
        c->scheduled = false;
        update_interest(c);
        return 1;
      }
      if (errno != EAGAIN && errno != EINTR) {
        queue_rst(c->host_port, c->guest_port);
        close_connection(key);
        rx_ready_.pop_front();
        return to_guest(buffers, count);
      }
    }
    rx_ready_.pop_front();
    c->scheduled = false;
    update_interest(c);
  }
  return 0;
}

}  // namespace vmm
