// rtnetlink requests, built and sent one at a time: a header, the family's fixed struct (ifinfomsg,
// tcmsg), then attributes, nested ones included. Enough for the host side of pod networking
// (native/host/pod_net.cc) without spawning `ip` or `tc`. No Node, no exceptions, no threads: the
// socket belongs to whichever namespace its creating thread was in.
#pragma once

#include <linux/netlink.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace vc {
namespace host {

class NetlinkRequest {
 public:
  NetlinkRequest(uint16_t type, uint16_t flags);

  // The family's fixed header, right after the netlink header (call once, first).
  template <class T>
  void Fixed(const T& value) {
    Append(&value, sizeof value);
  }
  void Attr(uint16_t type, const void* data, size_t length);
  void AttrU8(uint16_t type, uint8_t value) { Attr(type, &value, sizeof value); }
  void AttrU32(uint16_t type, uint32_t value) { Attr(type, &value, sizeof value); }
  // With its terminating NUL, as the kernel's NLA_STRING policies expect.
  void AttrString(uint16_t type, const std::string& value) { Attr(type, value.c_str(), value.size() + 1); }
  // Opens a nested attribute; its length is set by End(offset).
  size_t Begin(uint16_t type);
  void End(size_t offset);

  // The whole message with its length and `sequence` set.
  const std::vector<uint8_t>& Finish(uint32_t sequence);

 private:
  void Append(const void* data, size_t length);
  void Pad();
  std::vector<uint8_t> bytes_;
};

// A NETLINK_ROUTE socket of the calling thread's network namespace, asking for extended acks.
class RouteSocket {
 public:
  RouteSocket();
  ~RouteSocket();
  RouteSocket(const RouteSocket&) = delete;
  RouteSocket& operator=(const RouteSocket&) = delete;

  // 0 once the socket is open, else the errno of socket().
  int open_error() const { return open_error_; }
  // Sends the request (which must ask for an ack) and waits for its answer: 0, or the negative
  // errno the kernel answered; `detail` gets the kernel's extended-ack text when it gave one.
  int Talk(NetlinkRequest& request, std::string* detail);
  // Sends a dump request (NLM_F_DUMP) and hands each answer to `each` until the kernel's
  // NLMSG_DONE: 0, or the negative errno of the dump or of a malformed answer.
  int Dump(NetlinkRequest& request, const std::function<void(const nlmsghdr&)>& each);

 private:
  // The request's sequence number once sent, or the negative errno.
  int64_t Send(NetlinkRequest& request);

  int fd_ = -1;
  int open_error_ = 0;
  uint32_t sequence_ = 0;
};

// An attribute of a received message: its type (flags masked off) and payload, bounds checked.
struct ReceivedAttr {
  uint16_t type;
  const uint8_t* data;
  size_t length;
};

// The attributes in [data, data + length), in order; a malformed one ends the list.
std::vector<ReceivedAttr> AttrsOf(const uint8_t* data, size_t length);
// The attributes after a message's fixed header of `fixed` bytes (none if the message is shorter).
std::vector<ReceivedAttr> AttrsAfter(const nlmsghdr& message, size_t fixed);

}  // namespace host
}  // namespace vc
