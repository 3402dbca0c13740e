// The host side of a network device: TapBackend implements virtio-net's NetBackend
// (devices/virtio/net.h) over a Linux tap. The tap carries the same 12-byte virtio_net_hdr_v1 as
// the virtqueues (IFF_VNET_HDR with TUNSETVNETHDRSZ 12), so frames pass through unchanged, and
// TUNSETOFFLOAD tells the kernel which offloaded frames (checksum, TSO) the guest accepts.
//
// The fd is non-blocking. A write that meets EAGAIN (the tap's queue is full) reports kAgain:
// the device stops pulling tx and the backend watches for EPOLLOUT; reads return 0 when the tap
// is empty. The backend watches its fd on the device thread's EventLoop for exactly the
// readiness the device asks for (want()), and calls the device with its mutex held.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "devices/event_loop.h"
#include "devices/virtio/net.h"

namespace vmm {

class TapBackend final : public virtio::NetBackend {
 public:
  // Opens (creating it if it does not exist) the tap `name` in the calling thread's network
  // namespace through /dev/net/tun. nullptr with *error on failure.
  static std::unique_ptr<TapBackend> open(const std::string& name, std::string* error);
  // Takes ownership of an fd already attached to a tap (opened by someone else, e.g. in another
  // namespace) with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR; the fd is closed on failure too.
  static std::unique_ptr<TapBackend> adopt(int fd, std::string* error);
  ~TapBackend() override;

  // Watches the tap on `loop` (which must outlive the backend). Before this the device's
  // want() calls are only remembered.
  bool start(EventLoop* loop, std::string* error);
  int fd() const { return fd_; }
  const std::string& name() const { return name_; }

  // NetBackend (called with the device's mutex held)
  void attach(virtio::NetDevice* device) override { device_ = device; }
  bool supports_offloads() const override { return offloads_; }
  bool set_offloads(uint64_t driver_features) override;
  virtio::NetSend send(const iovec* iov, size_t iovcnt) override;
  int64_t recv(uint8_t* buf, size_t len) override;
  bool can_scatter() const override { return true; }
  int64_t recv_iov(const iovec* iov, size_t iovcnt) override;
  void want(bool readable, bool writable) override;

  // TUN_F_* flags for a driver's features (exposed for tests).
  static unsigned offload_flags(uint64_t driver_features);

 private:
  TapBackend(int fd, std::string name, bool offloads)
      : fd_(fd), name_(std::move(name)), offloads_(offloads) {}
  static std::unique_ptr<TapBackend> setup(int fd, std::string name, std::string* error);
  void on_event(uint32_t events);
  uint32_t interest() const;

  int fd_;
  std::string name_;
  bool offloads_;
  virtio::NetDevice* device_ = nullptr;
  EventLoop* loop_ = nullptr;
  bool want_read_ = false, want_write_ = false;
  bool dead_ = false;
  std::vector<uint8_t> bounce_;  // for frames in more than IOV_MAX pieces
};

}  // namespace vmm
