#include "backends/tap.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "devices/log.h"

namespace vmm {

namespace {

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

}  // namespace

unsigned TapBackend::offload_flags(uint64_t f) {
  // What the tap may hand us is what the guest accepts: its GUEST_* offloads.
  if (!(f & virtio::kNetFGuestCsum)) return 0;
  unsigned flags = TUN_F_CSUM;
  if (f & virtio::kNetFGuestTso4) flags |= TUN_F_TSO4;
  if (f & virtio::kNetFGuestTso6) flags |= TUN_F_TSO6;
  return flags;
}

std::unique_ptr<TapBackend> TapBackend::open(const std::string& name, std::string* error) {
  if (name.empty() || name.size() >= IFNAMSIZ) {
    *error = "tap name \"" + name + "\" must be 1.." + std::to_string(IFNAMSIZ - 1) + " bytes";
    return nullptr;
  }
  int fd = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    *error = errno_text("cannot open /dev/net/tun");
    return nullptr;
  }
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, name.data(), name.size());
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  if (ioctl(fd, TUNSETIFF, &ifr) != 0) {
    *error = errno_text("cannot attach to tap " + name + " (TUNSETIFF)");
    close(fd);
    return nullptr;
  }
  return setup(fd, name, error);
}

std::unique_ptr<TapBackend> TapBackend::adopt(int fd, std::string* error) {
  ifreq ifr{};
  if (ioctl(fd, TUNGETIFF, &ifr) != 0) {
    *error = errno_text("fd " + std::to_string(fd) + " is not a tap (TUNGETIFF)");
    close(fd);
    return nullptr;
  }
  unsigned short need = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  if ((ifr.ifr_flags & need) != need) {
    *error = "tap fd " + std::to_string(fd) + " was not opened with IFF_TAP|IFF_NO_PI|IFF_VNET_HDR";
    close(fd);
    return nullptr;
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
    *error = errno_text("cannot make tap fd non-blocking");
    close(fd);
    return nullptr;
  }
  ifr.ifr_name[IFNAMSIZ - 1] = 0;
  return setup(fd, ifr.ifr_name, error);
}

std::unique_ptr<TapBackend> TapBackend::setup(int fd, std::string name, std::string* error) {
  int hdr = static_cast<int>(virtio::kNetHdrSize);
  if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) != 0) {
    *error = errno_text("cannot set the vnet header size of tap " + name);
    close(fd);
    return nullptr;
  }
  // Offloads are offered to the guest only if the tap takes them; until the driver negotiates,
  // the tap hands us plain, checksummed frames.
  bool offloads = ioctl(fd, TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) == 0;
  if (ioctl(fd, TUNSETOFFLOAD, 0) != 0) {
    *error = errno_text("cannot clear the offloads of tap " + name);
    close(fd);
    return nullptr;
  }
  return std::unique_ptr<TapBackend>(new TapBackend(fd, std::move(name), offloads));
}

TapBackend::~TapBackend() {
  if (loop_ && !dead_) loop_->remove(fd_);
  close(fd_);
}

bool TapBackend::start(EventLoop* loop, std::string* error) {
  if (!loop->add(fd_, interest(), [this](uint32_t events) { on_event(events); })) {
    *error = errno_text("cannot watch tap " + name_);
    return false;
  }
  loop_ = loop;
  return true;
}

uint32_t TapBackend::interest() const {
  return (want_read_ ? EPOLLIN : 0u) | (want_write_ ? EPOLLOUT : 0u);
}

void TapBackend::on_event(uint32_t events) {
  if (!device_) return;
  std::lock_guard<std::mutex> lock(device_->mutex());
  if (dead_) return;
  if (events & (EPOLLERR | EPOLLHUP)) {
    // The tap went away (its interface was deleted): stop watching, or level-triggered ERR
    // would spin the loop. The device sees reads fail and writes drop from now on.
    device_warn("tap %s: error or hang-up on its fd; no longer watched", name_.c_str());
    dead_ = true;
    loop_->remove(fd_);
    return;
  }
  device_->backend_ready((events & EPOLLIN) && want_read_, (events & EPOLLOUT) && want_write_);
}

void TapBackend::want(bool readable, bool writable) {
  if (readable == want_read_ && writable == want_write_) return;
  want_read_ = readable;
  want_write_ = writable;
  if (loop_ && !dead_) loop_->modify(fd_, interest());
}

bool TapBackend::set_offloads(uint64_t driver_features) {
  if (!offloads_) return offload_flags(driver_features) == 0;
  return ioctl(fd_, TUNSETOFFLOAD, offload_flags(driver_features)) == 0;
}

virtio::NetSend TapBackend::send(const iovec* iov, size_t iovcnt) {
  if (iovcnt > IOV_MAX) {
    // A tap write is one frame, so a frame in too many pieces is gathered first.
    bounce_.clear();
    for (size_t i = 0; i < iovcnt; i++) {
      auto* p = static_cast<const uint8_t*>(iov[i].iov_base);
      bounce_.insert(bounce_.end(), p, p + iov[i].iov_len);
    }
    iovec one{bounce_.data(), bounce_.size()};
    return send(&one, 1);
  }
  for (;;) {
    ssize_t n = writev(fd_, iov, static_cast<int>(iovcnt));
    if (n >= 0) return virtio::NetSend::kSent;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return virtio::NetSend::kAgain;
    device_warn("tap %s: write: %s", name_.c_str(), std::strerror(errno));
    return virtio::NetSend::kError;
  }
}

int64_t TapBackend::recv(uint8_t* buf, size_t len) {
  iovec one{buf, len};
  return recv_iov(&one, 1);
}

}  // namespace vmm

namespace vmm {

int64_t TapBackend::recv_iov(const iovec* iov, size_t iovcnt) {
  if (iovcnt > IOV_MAX) return -1;  // the device never asks for more (NetDevice::kMaxRxIovecs)
  for (;;) {
    // A frame longer than the iovecs is cut short, and readv returns its full length: the device
    // sees more than it offered and drops it.
    ssize_t n = readv(fd_, iov, static_cast<int>(iovcnt));
    if (n >= 0) return n;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    device_warn("tap %s: read: %s", name_.c_str(), std::strerror(errno));
    return -1;
  }
}

}  // namespace vmm
