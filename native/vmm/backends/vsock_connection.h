// Private to the hybrid-vsock backend (vsock_unix.cc: host sockets, vsock_unix_guest.cc: guest
// packets): one connection's state, and the limits both halves enforce.
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <cstdint>
#include <cstring>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "backends/vsock_unix.h"

namespace vmm {

namespace vsock_unix {

constexpr size_t kMaxConnections = 1024;
constexpr size_t kMaxPendingClients = 64;
constexpr size_t kMaxConnectLine = 32;  // "CONNECT 4294967295\n" with room to spare
// Tell the guest about freed buffer space once this much has accumulated unannounced, so a
// one-way guest-to-host stream never stalls waiting for a credit update: the guest keeps at
// least half the buffer (two of its largest packets) in hand. Each update is a packet and most
// often an interrupt for the guest; at a quarter there was one per 64 KiB of guest output.
constexpr uint32_t kCreditUpdateThreshold = VsockUnixBackend::kBufAlloc / 2;
constexpr uint32_t kShutdownBoth = virtio::kVsockShutdownRcv | virtio::kVsockShutdownSend;

inline bool fill_sockaddr(const std::string& path, sockaddr_un* addr) {
  std::memset(addr, 0, sizeof(*addr));
  addr->sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr->sun_path)) return false;
  std::memcpy(addr->sun_path, path.c_str(), path.size() + 1);
  return true;
}

}  // namespace vsock_unix

struct VsockUnixBackend::Connection {
  int fd = -1;
  uint32_t host_port = 0, guest_port = 0;
  bool established = false;  // false: a host CONNECT waits for the guest's RESPONSE
  uint64_t deadline_ms = 0;  // for !established
  bool scheduled = false;    // listed in rx_ready_
  std::deque<std::pair<uint16_t, uint32_t>> control;  // (op, flags) owed to the guest
  // Guest to host.
  std::vector<uint8_t> to_host;  // payload the host socket has not taken yet
  size_t to_host_off = 0;
  uint32_t fwd_cnt = 0;            // payload bytes passed on to the host socket
  uint32_t announced_fwd_cnt = 0;  // the fwd_cnt the guest last heard
  bool credit_update_queued = false;
  uint32_t guest_shutdown = 0;  // SHUTDOWN flags the guest sent
  // Host to guest.
  uint32_t rx_cnt = 0;  // payload bytes sent to the guest
  uint32_t peer_buf_alloc = 0, peer_fwd_cnt = 0;
  bool host_readable = false;  // the socket may have bytes (or EOF) for the guest
  bool host_eof = false;       // read() returned 0: the guest was told with SHUTDOWN
  bool hup_seen = false;       // the host closed both directions
  bool credit_requested = false;

  size_t to_host_pending() const { return to_host.size() - to_host_off; }
  uint32_t peer_credit() const {
    uint32_t in_flight = rx_cnt - peer_fwd_cnt;
    return in_flight >= peer_buf_alloc ? 0 : peer_buf_alloc - in_flight;
  }
};

}  // namespace vmm
