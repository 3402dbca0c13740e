#include "devices/virtio/net.h"

#include <time.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "devices/log.h"
#include "devices/virtio/chain_io.h"

namespace vmm::virtio {

namespace {

constexpr uint64_t kNsPerSec = 1000000000ull;

uint64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * kNsPerSec + static_cast<uint64_t>(ts.tv_nsec);
}

void init_bucket(TokenBucket* b, uint64_t rate, uint64_t burst) {
  b->rate = rate;
  // A bucket without a burst holds one second's worth.
  b->burst = std::min(burst ? burst : rate, TokenBucket::kMaxBurst);
  b->started = false;
  b->nano_tokens = 0;
}

}  // namespace

static int64_t nano(uint64_t tokens) { return static_cast<int64_t>(tokens * kNsPerSec); }

void TokenBucket::refill(uint64_t now_ns) {
  if (unlimited()) return;
  if (!started) {
    started = true;
    nano_tokens = nano(burst);
    last_ns = now_ns;
    return;
  }
  if (now_ns <= last_ns) return;
  unsigned __int128 add = static_cast<unsigned __int128>(now_ns - last_ns) * rate;
  __int128 sum = static_cast<__int128>(nano_tokens) + static_cast<__int128>(add);
  nano_tokens = sum > nano(burst) ? nano(burst) : static_cast<int64_t>(sum);
  last_ns = now_ns;
}

bool TokenBucket::ready(uint64_t cost) const {
  return unlimited() || nano_tokens >= nano(std::min(cost, burst));
}

void TokenBucket::take(uint64_t cost) {
  if (unlimited()) return;
  // Debt is bounded too (a frame costs at most 64 KiB), so this cannot wrap.
  nano_tokens -= nano(std::min(cost, kMaxBurst));
}

uint64_t TokenBucket::wait_ns(uint64_t cost) const {
  if (ready(cost)) return 0;
  uint64_t need = static_cast<uint64_t>(nano(std::min(cost, burst)) - nano_tokens);
  return (need + rate - 1) / rate;
}

NetDevice::NetDevice(const NetDeviceConfig& config, std::unique_ptr<NetBackend> backend,
                     Clock clock)
    : config_(config),
      backend_(std::move(backend)),
      clock_(clock ? std::move(clock) : Clock(monotonic_ns)),
      offloads_(backend_->supports_offloads()),
      rx_buf_(kNetHdrSize + kNetMaxFrame + 1) {
  init_bucket(&rx_bytes_, config.rx.bytes_per_sec, config.rx.bytes_burst);
  init_bucket(&rx_packets_, config.rx.packets_per_sec, config.rx.packets_burst);
  init_bucket(&tx_bytes_, config.tx.bytes_per_sec, config.tx.bytes_burst);
  init_bucket(&tx_packets_, config.tx.packets_per_sec, config.tx.packets_burst);
  backend_->attach(this);
}

NetDevice::~NetDevice() { backend_->attach(nullptr); }

uint64_t NetDevice::now() { return clock_(); }

uint64_t NetDevice::device_features() const {
  return kFVersion1 | kFRingEventIdx | kFRingIndirectDesc | kNetFMac | kNetFMtu | kNetFStatus |
         kNetFMrgRxbuf | (offloads_ ? kNetOffloadFeatures : 0);
}

bool NetDevice::accept_features(uint64_t f) const {
  // §5.1.3.1: guest TSO needs GUEST_CSUM, host TSO needs CSUM.
  if ((f & (kNetFGuestTso4 | kNetFGuestTso6)) && !(f & kNetFGuestCsum)) return false;
  if ((f & (kNetFHostTso4 | kNetFHostTso6)) && !(f & kNetFCsum)) return false;
  return true;
}

void NetDevice::read_config(uint64_t offset, uint8_t* data, uint32_t len) {
  NetConfigSpace c{};
  std::copy(config_.mac.begin(), config_.mac.end(), c.mac);
  c.status = kNetSLinkUp;
  c.max_virtqueue_pairs = 1;
  c.mtu = config_.mtu;
  read_config_bytes(&c, sizeof(c), offset, data, len);
}

static_assert(kNetOffloadFeatures == snapshot::kNetOffloadBits, "the snapshot checks the same offload bits");

void NetDevice::activate() {
  applied_offloads_ = host_->driver_features() & kNetOffloadFeatures;
  if (!backend_->set_offloads(host_->driver_features()))
    device_warn("virtio-net: the backend refused the negotiated offloads");
  interest_known_ = false;
  update_interest();
}

void NetDevice::reset() {
  // A held frame and the buffers popped for it belong to the old rings: forget both.
  rx_len_ = 0;
  rx_chains_.clear();
  tx_pending_ = tx_blocked_ = tx_limited_ = rx_limited_ = false;
  timer_armed_ = false;
  want_read_ = want_write_ = false;
  interest_known_ = true;
  backend_->want(false, false);
  backend_->set_offloads(0);
  applied_offloads_ = 0;
}

void NetDevice::release_held_buffers() {
  if (!host_) return;
  // Buffers popped for a frame (or reserved for the next one) and a tx frame the backend did not
  // take yet: back to the driver unused. Linux counts the empty rx buffer as a length error and
  // frees the tx one; the frames are lost, as a lossy link loses them.
  Queue& rx = host_->queue(kRxQueue);
  for (const DescriptorChain& c : rx_chains_) rx.push_used(c.head, 0);
  bool rx_used = !rx_chains_.empty();
  rx_chains_.clear();
  rx_len_ = 0;
  if (tx_pending_) host_->queue(kTxQueue).push_used(tx_chain_.head, 0);
  bool tx_used = tx_pending_;
  tx_pending_ = tx_blocked_ = false;
  if (rx_used) host_->signal_used(kRxQueue);
  if (tx_used) host_->signal_used(kTxQueue);
  update_interest();
}

std::vector<uint8_t> NetDevice::save_state() const {
  snapshot::VirtioDeviceState s;
  s.kind = snapshot::kVirtioNet;
  s.net_mac = config_.mac;
  s.net_mtu = config_.mtu;
  s.net_offloads = applied_offloads_;
  return snapshot::EncodeVirtioDeviceState(s);
}

vc::Status NetDevice::load_state(const uint8_t* data, size_t size, uint32_t slot) {
  auto decoded = decode_own_state(data, size, slot);
  if (!decoded.ok()) return decoded.status();
  const snapshot::VirtioDeviceState& s = decoded.value();
  std::string what = vc::Format("snapshot section virtio-device[%u]: ", slot);
  if (s.net_mtu != config_.mtu)
    return vc::Status::Error(what + vc::Format("net mtu %u, but the restore's config says %u", s.net_mtu, config_.mtu));
  if (s.net_offloads & ~device_features())
    return vc::Status::Error(what + vc::Format("the guest negotiated net offloads 0x%llx, which this backend cannot take",
                                               static_cast<unsigned long long>(s.net_offloads)));
  applied_offloads_ = s.net_offloads;
  return vc::Status();
}

void NetDevice::queue_notify(size_t index) {
  if (index == kTxQueue) process_tx();
  else if (index == kRxQueue) process_rx();
}

void NetDevice::backend_ready(bool readable, bool writable) {
  if (writable && tx_blocked_) {
    tx_blocked_ = false;
    process_tx();
  }
  if (readable) process_rx();
  update_interest();
}

void NetDevice::on_timer() {
  timer_armed_ = false;
  tx_limited_ = rx_limited_ = false;
  process_tx();
  process_rx();
}

bool NetDevice::limited(TokenBucket* bytes, TokenBucket* packets, uint64_t cost) {
  if (bytes->unlimited() && packets->unlimited()) return false;
  uint64_t t = now();
  bytes->refill(t);
  packets->refill(t);
  if (bytes->ready(cost) && packets->ready(1)) return false;
  uint64_t wait = std::max<uint64_t>(std::max(bytes->wait_ns(cost), packets->wait_ns(1)), 1);
  if (timer_ && (!timer_armed_ || t + wait < timer_deadline_)) {
    timer_armed_ = true;
    timer_deadline_ = t + wait;
    timer_(wait);
  }
  return true;
}

void NetDevice::update_interest() {
  bool r = host_ && host_->driver_ok() && rx_len_ == 0 && !rx_limited_;
  bool w = tx_blocked_;
  if (interest_known_ && r == want_read_ && w == want_write_) return;
  want_read_ = r;
  want_write_ = w;
  interest_known_ = true;
  backend_->want(r, w);
}

// --- tx ------------------------------------------------------------------------------------------

void NetDevice::process_tx() {
  if (!host_ || !host_->driver_ok() || tx_blocked_ || tx_limited_) return;
  Queue& q = host_->queue(kTxQueue);
  bool used = false;
  bool stalled = false;
  do {
    for (;;) {
      if (!tx_pending_) {
        if (!next_chain(kTxQueue, &tx_chain_)) break;
        tx_pending_ = true;
      }
      if (!send_chain(tx_chain_, &used)) {
        stalled = true;
        break;
      }
      tx_pending_ = false;
    }
  } while (!stalled && host_->driver_ok() && q.enable_notification());
  if (used) host_->signal_used(kTxQueue);
  update_interest();
}

bool NetDevice::send_chain(const DescriptorChain& chain, bool* used) {
  Queue& q = host_->queue(kTxQueue);
  auto drop = [&](uint64_t* counter, const char* why) {
    ++*counter;
    device_warn("virtio-net: tx chain %u dropped: %s (%u readable, %u writable bytes)", chain.head,
                why, chain.readable_bytes, chain.writable_bytes);
    q.push_used(chain.head, 0);
    *used = true;
    return true;
  };
  if (chain.writable_bytes) return drop(&stats_.tx_malformed, "device-writable descriptors");
  if (chain.readable_bytes < kNetHdrSize) return drop(&stats_.tx_malformed, "shorter than the header");
  if (chain.readable_bytes > kNetHdrSize + kNetMaxFrame) return drop(&stats_.tx_oversize, "oversize frame");
  uint32_t frame = chain.readable_bytes - kNetHdrSize;
  if (limited(&tx_bytes_, &tx_packets_, frame)) {
    tx_limited_ = true;
    return false;
  }
  iov_.clear();
  ChainReader reader(host_->memory(), chain);
  if (reader.iovecs(chain.readable_bytes, &iov_) != chain.readable_bytes)
    return drop(&stats_.tx_malformed, "unreadable");
  switch (backend_->send(iov_.data(), iov_.size())) {
    case NetSend::kAgain:
      tx_blocked_ = true;
      return false;
    case NetSend::kError:
      stats_.tx_errors++;
      break;
    case NetSend::kSent:
      stats_.tx_frames++;
      stats_.tx_bytes += frame;
      tx_bytes_.take(frame);
      tx_packets_.take(1);
      break;
  }
  q.push_used(chain.head, 0);
  *used = true;
  return true;
}

// --- rx ------------------------------------------------------------------------------------------

void NetDevice::process_rx() {
  if (!host_ || !host_->driver_ok() || rx_limited_) return;
  bool used = false;
  for (int i = 0; i < kBudget; i++) {
    if (rx_len_ == 0) {
      bool stop = false;
      if (rx_direct(&used, &stop)) {
        if (stop) break;
        continue;
      }
      int64_t n = backend_->recv(rx_buf_.data(), rx_buf_.size());
      if (n == 0) break;
      if (n < 0) {
        stats_.rx_errors++;
        break;
      }
      if (static_cast<uint64_t>(n) > kNetHdrSize + kNetMaxFrame) {
        stats_.rx_oversize++;
        continue;
      }
      if (n < static_cast<int64_t>(kNetHdrSize)) {
        stats_.rx_errors++;
        continue;
      }
      rx_len_ = static_cast<uint32_t>(n);
      rx_charged_ = false;
    }
    // The limiter sees the frame's real size, so a frame it holds back stays held in the device.
    if (!rx_charged_) {
      if (limited(&rx_bytes_, &rx_packets_, rx_len_ - kNetHdrSize)) {
        rx_limited_ = true;
        break;
      }
      rx_bytes_.take(rx_len_ - kNetHdrSize);
      rx_packets_.take(1);
      rx_charged_ = true;
    }
    if (!deliver_rx(&used)) break;
  }
  if (used) host_->signal_used(kRxQueue);
  update_interest();
}

bool NetDevice::take_rx_buffer(DescriptorChain* chain, bool* used) {
  Queue& q = host_->queue(kRxQueue);
  for (;;) {
    if (!next_chain(kRxQueue, chain)) {
      // Ask for a notification, then look again: buffers added meanwhile would otherwise wait.
      if (host_->driver_ok() && q.active() && q.enable_notification()) continue;
      return false;
    }
    // Every rx buffer must hold at least a header (§5.1.6.3.1); readable parts are ignored.
    if (chain->writable_bytes < kNetHdrSize) {
      stats_.rx_bad_buffers++;
      device_warn("virtio-net: rx chain %u has %u writable bytes", chain->head, chain->writable_bytes);
      q.push_used(chain->head, 0);
      *used = true;
      continue;
    }
    return true;
  }
}

bool NetDevice::deliver_rx(bool* used) {
  Queue& q = host_->queue(kRxQueue);
  bool mrg = host_->driver_features() & kNetFMrgRxbuf;
  for (;;) {
    uint64_t room = 0;
    for (const DescriptorChain& c : rx_chains_) room += c.writable_bytes;
    if (!rx_chains_.empty() && room >= rx_len_) break;
    // Without mergeable buffers the frame must fit one buffer; with them, the whole ring.
    if ((!mrg && !rx_chains_.empty()) || rx_chains_.size() >= q.size) {
      stats_.rx_too_big++;
      rx_len_ = 0;  // the buffers stay reserved for the next frame
      return true;
    }
    rx_chains_.emplace_back();
    if (!take_rx_buffer(&rx_chains_.back(), used)) {
      rx_chains_.pop_back();
      return false;
    }
  }
  const GuestMemory& mem = host_->memory();
  uint32_t off = 0;
  for (size_t i = 0; off < rx_len_; i++) {
    const DescriptorChain& c = rx_chains_[i];
    uint32_t take = std::min(c.writable_bytes, rx_len_ - off);
    ChainWriter writer(mem, c);
    writer.write(rx_buf_.data() + off, take);
    off += take;
  }
  publish_rx(rx_len_, mrg);
  rx_len_ = 0;
  *used = true;
  return true;
}

void NetDevice::publish_rx(uint32_t len, bool mrg) {
  Queue& q = host_->queue(kRxQueue);
  if (!q.active()) {  // the ring broke while buffers were being taken: the frame is lost
    rx_chains_.clear();
    return;
  }
  // Which buffers the frame filled: as many as it needs (without mrg, always exactly one).
  uint16_t count = 0;
  uint64_t covered = 0;
  while (covered < len) covered += rx_chains_[count++].writable_bytes;
  uint16_t num_buffers = mrg ? count : 1;
  ChainWriter header(host_->memory(), rx_chains_[0]);
  header.skip(offsetof(NetHeader, num_buffers));
  header.write(&num_buffers, sizeof(num_buffers));
  uint32_t off = 0;
  for (uint16_t i = 0; i < count; i++) {
    uint32_t take = std::min(rx_chains_[i].writable_bytes, len - off);
    q.push_used(rx_chains_[i].head, take);
    off += take;
  }
  rx_chains_.erase(rx_chains_.begin(), rx_chains_.begin() + count);
  stats_.rx_frames++;
  stats_.rx_bytes += len - kNetHdrSize;
}

bool NetDevice::rx_direct(bool* used, bool* stop) {
  if (!backend_->can_scatter() || !rx_bytes_.unlimited() || !rx_packets_.unlimited()) return false;
  bool mrg = host_->driver_features() & kNetFMrgRxbuf;
  const uint32_t max = kNetHdrSize + kNetMaxFrame;
  Queue& q = host_->queue(kRxQueue);
  // Reserve buffers until any frame fits (one more byte, so that a longer one shows as such).
  for (;;) {
    uint64_t room = 0;
    for (const DescriptorChain& c : rx_chains_) room += c.writable_bytes;
    if (!mrg && !rx_chains_.empty()) room = rx_chains_[0].writable_bytes;
    if (room > max) break;
    if (!mrg && !rx_chains_.empty()) return false;
    if (rx_chains_.size() >= q.size) return false;
    rx_chains_.emplace_back();
    if (!take_rx_buffer(&rx_chains_.back(), used)) {
      rx_chains_.pop_back();
      return false;
    }
  }
  iov_.clear();
  uint32_t want = max + 1;
  for (const DescriptorChain& c : rx_chains_) {
    ChainWriter writer(host_->memory(), c);
    want -= writer.iovecs(want, &iov_);
    if (want == 0 || !mrg) break;
  }
  // Backends read with one readv: at most kMaxRxIovecs pieces (else the copying path serves it).
  if (want != 0 || iov_.size() > kMaxRxIovecs) return false;
  int64_t n = backend_->recv_iov(iov_.data(), iov_.size());
  if (n == 0) {
    *stop = true;
  } else if (n < 0) {
    stats_.rx_errors++;
    *stop = true;
  } else if (static_cast<uint64_t>(n) > max) {
    stats_.rx_oversize++;  // nothing published: the buffers stay reserved
  } else if (n < static_cast<int64_t>(kNetHdrSize)) {
    stats_.rx_errors++;
  } else {
    publish_rx(static_cast<uint32_t>(n), mrg);
    *used = true;
  }
  return true;
}

}  // namespace vmm::virtio
