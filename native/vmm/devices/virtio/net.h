// virtio-net (§5.1), one queue pair: queue 0 = rx (device to guest), queue 1 = tx (guest to
// device), no control queue. Frames move between the guest's virtqueues and a NetBackend (the
// host side: a tap in backends/tap.h).
//
// Framing: every frame, in both directions, is the 12-byte struct virtio_net_hdr_v1 followed by
// the Ethernet frame. The header is passed to and from the backend unchanged (a tap opened with
// IFF_VNET_HDR and TUNSETVNETHDRSZ 12 uses the same layout), except num_buffers, which the device
// sets on rx: the number of guest buffers the frame spans with VIRTIO_NET_F_MRG_RXBUF, else 1.
//
// tx: each chain's device-readable bytes are one frame, handed to the backend as iovecs into
// guest memory (no copy). A chain with device-writable descriptors, shorter than the header or
// longer than kNetMaxFrame + header is dropped and counted; the guest gets it back as used.
// When the backend is full (EAGAIN) the device keeps the chain, stops pulling tx and resumes when
// the backend reports that it can take more (backend_ready with writable).
// rx: when the guest has posted room for a frame of the largest size (with MRG_RXBUF across
// buffers, else in its next buffer) and no rx rate limit is set, a backend that can scatter reads
// the frame straight into the guest buffers (no copy); the buffers it did not fill stay reserved
// for the next frame. Otherwise the frame is read into one host buffer and then copied into guest
// rx buffers: with MRG_RXBUF across as many as it needs, else into one buffer (a frame that does
// not fit the buffer is dropped and counted; the buffer is kept for the next frame). Either way
// num_buffers is the number of buffers the frame spans.
// When the guest has no (or not enough) rx buffers the frame is HELD, not dropped: the device
// stops reading the backend, keeps the frame and the buffers it has already taken, and goes on
// when the driver adds buffers. A frame the backend reports longer than kNetMaxFrame + header is
// dropped and counted.
//
// Rate limits (optional, per direction): token buckets for bytes/s and frames/s, each with a
// burst. A frame goes when every bucket has at least min(cost, burst) tokens; it then takes its
// full cost (a bucket may go negative, so frames larger than the burst still pass, at the rate).
// A limited direction waits for the timer the owner arms through set_timer(); on rx the frame is
// read first (its size is its cost) and held in the device while it waits.
#pragma once

#include <sys/uio.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "devices/virtio/device.h"

namespace vmm::virtio {

// Feature bits (§5.1.3).
constexpr uint64_t kNetFCsum = 1ull << 0;
constexpr uint64_t kNetFGuestCsum = 1ull << 1;
constexpr uint64_t kNetFMtu = 1ull << 3;
constexpr uint64_t kNetFMac = 1ull << 5;
constexpr uint64_t kNetFGuestTso4 = 1ull << 7;
constexpr uint64_t kNetFGuestTso6 = 1ull << 8;
constexpr uint64_t kNetFHostTso4 = 1ull << 11;
constexpr uint64_t kNetFHostTso6 = 1ull << 12;
constexpr uint64_t kNetFMrgRxbuf = 1ull << 15;
constexpr uint64_t kNetFStatus = 1ull << 16;
constexpr uint64_t kNetOffloadFeatures =
    kNetFCsum | kNetFGuestCsum | kNetFGuestTso4 | kNetFGuestTso6 | kNetFHostTso4 | kNetFHostTso6;

constexpr uint16_t kNetSLinkUp = 1;

// The largest Ethernet frame (a 64 KiB GSO packet with its headers) and the header before it.
constexpr uint32_t kNetMaxFrame = 65550;
constexpr uint32_t kNetHdrSize = 12;

#pragma pack(push, 1)
struct NetHeader {  // struct virtio_net_hdr_v1
  uint8_t flags;
  uint8_t gso_type;
  uint16_t hdr_len;
  uint16_t gso_size;
  uint16_t csum_start;
  uint16_t csum_offset;
  uint16_t num_buffers;
};
struct NetConfigSpace {  // the prefix of struct virtio_net_config our features make meaningful
  uint8_t mac[6];
  uint16_t status;
  uint16_t max_virtqueue_pairs;
  uint16_t mtu;
};
#pragma pack(pop)
static_assert(sizeof(NetHeader) == kNetHdrSize, "virtio_net_hdr_v1 is 12 bytes");
static_assert(sizeof(NetConfigSpace) == 12, "mtu ends at offset 12");

// A token bucket: `rate` tokens per second up to `burst`; rate 0 means unlimited. Tokens are
// kept in billionths (integer arithmetic, so waits are exact to the nanosecond).
struct TokenBucket {
  static constexpr uint64_t kMaxBurst = 1ull << 32;  // keeps burst * 1e9 within 64 bits

  uint64_t rate = 0;
  uint64_t burst = 0;
  int64_t nano_tokens = 0;
  uint64_t last_ns = 0;
  bool started = false;

  bool unlimited() const { return rate == 0; }
  void refill(uint64_t now_ns);
  // True when `cost` may go now (see the file comment); does not take tokens.
  bool ready(uint64_t cost) const;
  void take(uint64_t cost);
  // Nanoseconds until ready(cost) (0 when ready now).
  uint64_t wait_ns(uint64_t cost) const;
};

struct NetRateLimit {
  uint64_t bytes_per_sec = 0, bytes_burst = 0;      // 0: no byte limit
  uint64_t packets_per_sec = 0, packets_burst = 0;  // 0: no frame limit
};

struct NetDeviceConfig {
  std::array<uint8_t, 6> mac{};
  uint16_t mtu = 1500;
  uint16_t queue_size = 256;
  NetRateLimit rx, tx;
};

struct NetStats {
  uint64_t rx_frames = 0, rx_bytes = 0, tx_frames = 0, tx_bytes = 0;
  uint64_t rx_oversize = 0;    // backend frames longer than kNetMaxFrame + header (dropped)
  uint64_t rx_too_big = 0;     // frames that did not fit one buffer without MRG_RXBUF (dropped)
  uint64_t rx_bad_buffers = 0; // rx chains with no room for a header (returned unused)
  uint64_t rx_errors = 0;      // backend read errors and runt frames
  uint64_t tx_oversize = 0;    // tx chains longer than kNetMaxFrame + header (dropped)
  uint64_t tx_malformed = 0;   // tx chains shorter than the header or with writable parts
  uint64_t tx_errors = 0;      // frames the backend refused (dropped)
};

enum class NetSend { kSent, kAgain, kError };

class NetDevice;

// The host side. Every call happens with the device's mutex held; a backend whose fd becomes
// readable or writable locks device->mutex() and calls device->backend_ready().
class NetBackend {
 public:
  virtual ~NetBackend() = default;
  virtual void attach(NetDevice* device) = 0;
  // Whether the backend can take and deliver checksum/TSO offloaded frames (HOST_*/GUEST_* and
  // CSUM/GUEST_CSUM are offered only then).
  virtual bool supports_offloads() const = 0;
  // The driver's features: the backend may hand the device frames needing the GUEST_* offloads
  // negotiated here, and no others (TUNSETOFFLOAD).
  virtual bool set_offloads(uint64_t driver_features) = 0;
  // One frame (header + Ethernet frame) gathered from the iovecs. kAgain: nothing was sent and
  // the backend will report writable; kError: the frame is lost.
  virtual NetSend send(const iovec* iov, size_t iovcnt) = 0;
  // The next frame (header + Ethernet frame) into buf: its length (which may exceed len when the
  // frame was truncated), 0 when there is none now, -1 on an error (the frame is lost).
  virtual int64_t recv(uint8_t* buf, size_t len) = 0;
  // Whether recv_iov works; it is recv scattered over iovecs (guest buffers).
  virtual bool can_scatter() const { return false; }
  virtual int64_t recv_iov(const iovec* /*iov*/, size_t /*iovcnt*/) { return -1; }
  // Which readiness the device waits for (the backend watches its fd for exactly these).
  virtual void want(bool readable, bool writable) = 0;
};

class NetDevice final : public Device {
 public:
  static constexpr size_t kRxQueue = 0, kTxQueue = 1;
  // Frames moved per call before the device lets its thread do other work.
  static constexpr int kBudget = 256;
  // The most iovecs one direct rx read may use (IOV_MAX on Linux).
  static constexpr size_t kMaxRxIovecs = 1024;
  using Clock = std::function<uint64_t()>;                  // monotonic nanoseconds
  using TimerArm = std::function<void(uint64_t delay_ns)>;  // call on_timer() after delay_ns

  NetDevice(const NetDeviceConfig& config, std::unique_ptr<NetBackend> backend,
            Clock clock = nullptr);
  ~NetDevice() override;

  // Called with mutex() held.
  void set_timer(TimerArm arm) { timer_ = std::move(arm); }
  void on_timer();
  void backend_ready(bool readable, bool writable);
  const NetStats& stats() const { return stats_; }
  NetBackend* backend() { return backend_.get(); }
  bool rx_held() const { return rx_len_ != 0; }
  bool tx_blocked() const { return tx_blocked_; }

  uint32_t device_id() const override { return kIdNet; }
  uint64_t device_features() const override;
  size_t num_queues() const override { return 2; }
  uint16_t max_queue_size(size_t) const override { return config_.queue_size; }
  bool accept_features(uint64_t features) const override;
  void read_config(uint64_t offset, uint8_t* data, uint32_t len) override;
  void activate() override;
  void reset() override;
  void queue_notify(size_t index) override;
  void release_held_buffers() override;

 protected:
  // MAC, MTU and the offloads applied to the backend. Loading keeps the restore's MAC (the agent
  // sets the interface to it); the MTU must be the one the guest was shown, and the offloads ones
  // this backend can take (the transport's activation applies them to it).
  std::vector<uint8_t> save_state() const override;
  vc::Status load_state(const uint8_t* data, size_t size, uint32_t slot) override;

 private:
  void process_tx();
  void process_rx();
  // Sends one popped tx chain; false when the backend was full (the chain is kept).
  bool send_chain(const DescriptorChain& chain, bool* used);
  // Copies the held frame into rx buffers; false when the guest has too few buffers.
  bool deliver_rx(bool* used);
  // Reads one frame straight into reserved guest buffers when there is room for any frame; false
  // when it could not try (too little room, a rate limit, a backend that cannot scatter).
  bool rx_direct(bool* used, bool* stop);
  // Publishes the first buffers of rx_chains_ covering `len` bytes of a frame written into them.
  void publish_rx(uint32_t len, bool mrg);
  // Takes the next rx buffer (a reserved one first); false when the ring is empty.
  bool take_rx_buffer(DescriptorChain* chain, bool* used);
  bool limited(TokenBucket* bytes, TokenBucket* packets, uint64_t cost);
  void update_interest();
  uint64_t now();

  NetDeviceConfig config_;
  std::unique_ptr<NetBackend> backend_;
  Clock clock_;
  TimerArm timer_;
  bool offloads_;
  uint64_t applied_offloads_ = 0;  // the driver's offload features, set on the backend at activation
  NetStats stats_;
  TokenBucket rx_bytes_, rx_packets_, tx_bytes_, tx_packets_;
  bool timer_armed_ = false;
  uint64_t timer_deadline_ = 0;

  // rx: the frame read from the backend and not yet delivered, and the guest buffers popped for
  // it (kept across calls until the frame is complete).
  std::vector<uint8_t> rx_buf_;
  uint32_t rx_len_ = 0;
  bool rx_charged_ = false;  // the held frame has passed the rate limiter
  std::vector<DescriptorChain> rx_chains_;
  bool rx_limited_ = false;
  // tx: a popped chain the backend could not take yet (EAGAIN) or the limiter held back.
  DescriptorChain tx_chain_;
  bool tx_pending_ = false;
  bool tx_blocked_ = false;  // waiting for the backend to become writable
  bool tx_limited_ = false;  // waiting for the timer
  std::vector<iovec> iov_;
  bool want_read_ = false, want_write_ = false, interest_known_ = false;
};

}  // namespace vmm::virtio
