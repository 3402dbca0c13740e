#include "host/netlink.h"

#include <linux/netlink.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vc {
namespace host {
namespace {

constexpr size_t Align4(size_t n) { return (n + 3) & ~size_t{3}; }

// The attribute header the kernel reads: length (header included, padding not), type.
struct AttrHeader {
  uint16_t length;
  uint16_t type;
};

}  // namespace

NetlinkRequest::NetlinkRequest(uint16_t type, uint16_t flags) {
  nlmsghdr header{};
  header.nlmsg_type = type;
  header.nlmsg_flags = flags;
  Append(&header, sizeof header);
}

void NetlinkRequest::Append(const void* data, size_t length) {
  const auto* p = static_cast<const uint8_t*>(data);
  bytes_.insert(bytes_.end(), p, p + length);
}

void NetlinkRequest::Pad() { bytes_.resize(Align4(bytes_.size()), 0); }

void NetlinkRequest::Attr(uint16_t type, const void* data, size_t length) {
  Pad();
  AttrHeader header{static_cast<uint16_t>(sizeof(AttrHeader) + length), type};
  Append(&header, sizeof header);
  Append(data, length);
  Pad();
}

size_t NetlinkRequest::Begin(uint16_t type) {
  Pad();
  size_t offset = bytes_.size();
  AttrHeader header{sizeof(AttrHeader), type};
  Append(&header, sizeof header);
  return offset;
}

void NetlinkRequest::End(size_t offset) {
  auto length = static_cast<uint16_t>(bytes_.size() - offset);
  std::memcpy(bytes_.data() + offset, &length, sizeof length);
}

const std::vector<uint8_t>& NetlinkRequest::Finish(uint32_t sequence) {
  Pad();
  auto* header = reinterpret_cast<nlmsghdr*>(bytes_.data());
  header->nlmsg_len = static_cast<uint32_t>(bytes_.size());
  header->nlmsg_seq = sequence;
  return bytes_;
}

RouteSocket::RouteSocket() {
  fd_ = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd_ < 0) {
    open_error_ = errno;
    return;
  }
  int on = 1;
  // Best effort: without it an error is only its errno.
  setsockopt(fd_, SOL_NETLINK, NETLINK_EXT_ACK, &on, sizeof on);
  // The kernel answers at once; a lost answer (ENOBUFS) must fail the call, not hang it.
  timeval limit{5, 0};
  setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
}

RouteSocket::~RouteSocket() {
  if (fd_ >= 0) close(fd_);
}

int64_t RouteSocket::Send(NetlinkRequest& request) {
  if (fd_ < 0) return -open_error_;
  const uint32_t sequence = ++sequence_;
  const std::vector<uint8_t>& message = request.Finish(sequence);
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(fd_, message.data(), message.size(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0) return -errno;
  return sequence;
}

int RouteSocket::Talk(NetlinkRequest& request, std::string* detail) {
  const int64_t sent = Send(request);
  if (sent < 0) return static_cast<int>(sent);
  const auto sequence = static_cast<uint32_t>(sent);
  alignas(nlmsghdr) uint8_t buffer[8192];
  for (;;) {
    ssize_t got = recv(fd_, buffer, sizeof buffer, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    // Walk the answers with every length checked against what was received.
    size_t at = 0;
    while (at + sizeof(nlmsghdr) <= static_cast<size_t>(got)) {
      const auto* header = reinterpret_cast<const nlmsghdr*>(buffer + at);
      if (header->nlmsg_len < sizeof(nlmsghdr) || at + header->nlmsg_len > static_cast<size_t>(got)) return -EPROTO;
      if (header->nlmsg_seq == sequence && header->nlmsg_type == NLMSG_ERROR) {
        if (header->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) return -EPROTO;
        const auto* error = reinterpret_cast<const nlmsgerr*>(NLMSG_DATA(header));
        if (error->error != 0 && detail && (header->nlmsg_flags & NLM_F_ACK_TLVS)) {
          // The TLVs follow the error and the request it echoes (only its header with CAPPED).
          size_t echoed = (header->nlmsg_flags & NLM_F_CAPPED) ? sizeof(nlmsghdr) : error->msg.nlmsg_len;
          size_t tlv = at + NLMSG_HDRLEN + Align4(sizeof(int) + echoed);
          const size_t end = at + header->nlmsg_len;
          while (tlv + sizeof(AttrHeader) <= end) {
            AttrHeader attr;
            std::memcpy(&attr, buffer + tlv, sizeof attr);
            if (attr.length < sizeof attr || tlv + attr.length > end) break;
            if (attr.type == NLMSGERR_ATTR_MSG) {
              detail->assign(reinterpret_cast<const char*>(buffer + tlv + sizeof attr), strnlen(reinterpret_cast<const char*>(buffer + tlv + sizeof attr), attr.length - sizeof attr));
              break;
            }
            tlv += Align4(attr.length);
          }
        }
        return error->error;
      }
      at += Align4(header->nlmsg_len);
    }
  }
}

int RouteSocket::Dump(NetlinkRequest& request, const std::function<void(const nlmsghdr&)>& each) {
  const int64_t sent = Send(request);
  if (sent < 0) return static_cast<int>(sent);
  const auto sequence = static_cast<uint32_t>(sent);
  std::vector<uint8_t> buffer(32768);
  for (;;) {
    ssize_t got = recv(fd_, buffer.data(), buffer.size(), 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    size_t at = 0;
    while (at + sizeof(nlmsghdr) <= static_cast<size_t>(got)) {
      nlmsghdr header;
      std::memcpy(&header, buffer.data() + at, sizeof header);
      if (header.nlmsg_len < sizeof(nlmsghdr) || at + header.nlmsg_len > static_cast<size_t>(got)) return -EPROTO;
      if (header.nlmsg_seq == sequence) {
        if (header.nlmsg_type == NLMSG_DONE) return 0;
        if (header.nlmsg_type == NLMSG_ERROR) {
          if (header.nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) return -EPROTO;
          int error;
          std::memcpy(&error, buffer.data() + at + NLMSG_HDRLEN, sizeof error);
          return error != 0 ? error : -EPROTO;
        }
        each(*reinterpret_cast<const nlmsghdr*>(buffer.data() + at));
      }
      at += Align4(header.nlmsg_len);
    }
  }
}

std::vector<ReceivedAttr> AttrsOf(const uint8_t* data, size_t length) {
  std::vector<ReceivedAttr> attrs;
  size_t at = 0;
  while (at + sizeof(AttrHeader) <= length) {
    AttrHeader header;
    std::memcpy(&header, data + at, sizeof header);
    if (header.length < sizeof header || at + header.length > length) break;
    attrs.push_back({static_cast<uint16_t>(header.type & NLA_TYPE_MASK), data + at + sizeof header, header.length - sizeof header});
    at += Align4(header.length);
  }
  return attrs;
}

std::vector<ReceivedAttr> AttrsAfter(const nlmsghdr& message, size_t fixed) {
  const size_t start = NLMSG_HDRLEN + Align4(fixed);
  if (message.nlmsg_len < start) return {};
  return AttrsOf(reinterpret_cast<const uint8_t*>(&message) + start, message.nlmsg_len - start);
}

}  // namespace host
}  // namespace vc
