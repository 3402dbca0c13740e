// Firecracker-style hybrid vsock: the guest's vsock device is reached from the host through Unix
// sockets.
//  - Host to guest: a host process connects to `uds_path` and writes "CONNECT <port>\n"; the
//    backend opens a connection to guest port <port> from a fresh host port H and, once the guest
//    accepts, answers "OK H\n". From then on the Unix stream carries the connection's bytes.
//  - Guest to host: a guest connection to CID 2 port P is forwarded to the Unix socket
//    "<uds_path>_<P>"; if nothing listens there the guest gets a reset.
// Flow control follows the virtio-vsock credit scheme in both directions, so neither side can
// make the VMM buffer more than kBufAlloc bytes per connection.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <sys/uio.h>

#include "devices/event_loop.h"
#include "devices/virtio/vsock.h"

namespace vmm {

class VsockUnixBackend final : public virtio::VsockBackend {
 public:
  // Bytes the backend buffers per connection towards the host socket (the buf_alloc it
  // advertises to the guest). Most of it is normally in the host socket's own buffer, not ours:
  // we only hold what the host has not read when its socket is full. 512 KiB: a guest-to-host
  // stream gets a credit update (a packet and, for Linux 6.1, an interrupt) every 256 KiB rather
  // than every 128 KiB, and tx completions ride on those (virtio/vsock.h, kTxSignalBatch).
  static constexpr uint32_t kBufAlloc = 512 * 1024;
  // A host CONNECT the guest neither accepts nor refuses is abandoned after this long.
  static constexpr int kConnectTimeoutMs = 2000;
  // Host ports for host-initiated connections are allocated from here up.
  static constexpr uint32_t kFirstHostPort = 1u << 30;

  // `loop` must outlive the backend; its callbacks lock the device's mutex.
  VsockUnixBackend(EventLoop* loop, std::string uds_path);
  ~VsockUnixBackend() override;

  // Creates the listening socket at uds_path (replacing a stale socket file). False with *error.
  bool listen(std::string* error);
  size_t connection_count() const { return conns_.size(); }
  // For tests: a shorter wait for the guest's answer to a host CONNECT.
  void set_connect_timeout_ms(int ms) { connect_timeout_ms_ = ms; }

  // VsockBackend
  void attach(virtio::VsockDevice* device) override { device_ = device; }
  void from_guest(const virtio::VsockHeader& hdr, virtio::ChainReader* payload) override;
  bool has_rx() const override;
  size_t to_guest(virtio::VsockRxBuffer* buffers, size_t count) override;
  void reset() override;

  struct Connection;

 private:
  using Key = std::pair<uint32_t, uint32_t>;  // (host port, guest port)

  // Host-side events (run on the loop thread, take the device mutex).
  void on_listener_ready();
  void on_pending_readable(int fd);
  void on_connection_event(Key key, uint32_t events);
  void on_timer();

  // Helpers, called with the device mutex held.
  void handle_guest_request(const virtio::VsockHeader& hdr);
  void handle_connected_packet(Connection* c, const virtio::VsockHeader& hdr,
                               virtio::ChainReader* payload);
  void queue_control(Connection* c, uint16_t op, uint32_t flags = 0);
  void schedule(Connection* c);
  void queue_rst(uint32_t host_port, uint32_t guest_port);
  void flush_to_host(Connection* c);
  // Reads host bytes for c into as many of buffers[0..count) as its credit allows, with one
  // readv, and finishes those packets: the number of buffers filled, 0 at the host's end of
  // stream, -1 with errno (EAGAIN also when there is no credit or room).
  ssize_t read_to_guest(Connection* c, virtio::VsockRxBuffer* buffers, size_t count);
  void update_interest(Connection* c);
  void close_connection(Key key);
  void maybe_finish_shutdown(Connection* c);
  void arm_timer();
  virtio::VsockHeader header_for(const Connection& c, uint16_t op, uint32_t flags, uint32_t len) const;
  void wake_device();

  EventLoop* loop_;
  std::string uds_path_;
  virtio::VsockDevice* device_ = nullptr;
  int listen_fd_ = -1;
  int timer_fd_ = -1;
  uint32_t next_host_port_ = kFirstHostPort;
  int connect_timeout_ms_ = kConnectTimeoutMs;
  // Host sockets that have connected but not yet sent their CONNECT line.
  std::map<int, std::string> pending_;
  std::map<Key, std::unique_ptr<Connection>> conns_;
  // Connections with a control packet or data waiting for a guest rx buffer, in order.
  std::deque<Key> rx_ready_;
  // RSTs for packets that matched no connection.
  std::deque<virtio::VsockHeader> orphan_rsts_;
  std::vector<iovec> rx_iov_;            // reused by read_to_guest()
  std::vector<uint32_t> rx_buffer_want_;  // bytes asked of each buffer in the last readv
};

}  // namespace vmm
