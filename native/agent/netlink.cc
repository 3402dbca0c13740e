#include "netlink.h"

#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace {

// The kernel sizes a dump's messages to the reader's buffer, at most 32 KiB; twice that is safe.
constexpr size_t kRecvBuf = 65536;

// Appends a message body or attribute at NLMSG_ALIGN/RTA_ALIGN boundaries to a message.
void put(std::vector<char>& msg, const void* data, size_t len) {
  size_t at = msg.size();
  msg.resize(NLMSG_ALIGN(at + len), 0);
  std::memcpy(msg.data() + at, data, len);
}

void put_attr(std::vector<char>& msg, unsigned short type, const void* data, size_t len) {
  rtattr rta{};
  rta.rta_type = type;
  rta.rta_len = static_cast<unsigned short>(RTA_LENGTH(len));
  size_t at = msg.size();
  msg.resize(at + RTA_ALIGN(rta.rta_len), 0);
  std::memcpy(msg.data() + at, &rta, sizeof rta);
  if (len) std::memcpy(msg.data() + at + RTA_LENGTH(0), data, len);
}

void put_u32(std::vector<char>& msg, unsigned short type, uint32_t v) { put_attr(msg, type, &v, 4); }

std::vector<char> start(uint16_t type, uint16_t flags) {
  std::vector<char> msg(NLMSG_HDRLEN, 0);
  nlmsghdr* h = reinterpret_cast<nlmsghdr*>(msg.data());
  h->nlmsg_type = type;
  h->nlmsg_flags = flags;
  return msg;
}

std::string format_mac(const unsigned char* b) {
  char s[18];
  std::snprintf(s, sizeof s, "%02x:%02x:%02x:%02x:%02x:%02x", b[0], b[1], b[2], b[3], b[4], b[5]);
  return s;
}

}  // namespace

Netlink::~Netlink() {
  if (fd_ >= 0) close(fd_);
}

int Netlink::open() {
  fd_ = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd_ < 0) return -errno;
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  if (bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) return -errno;
  int one = 1;
  // Errors come back with only the header of the request, not all of it.
  setsockopt(fd_, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
  return 0;
}

// Sends msg (length, sequence number and flags filled in here) with NLM_F_ACK and reads until
// the kernel's answer to it: 0 for the ACK, else the negative errno it carries.
int Netlink::send_request(std::vector<char>& msg) {
  nlmsghdr* h = reinterpret_cast<nlmsghdr*>(msg.data());
  h->nlmsg_len = static_cast<uint32_t>(msg.size());
  h->nlmsg_seq = ++seq_;
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(fd_, msg.data(), msg.size(), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof kernel) < 0) {
    return -errno;
  }
  return 0;
}

int Netlink::read_answer(const std::function<bool(nlmsghdr*, int*)>& on_message) {
  std::vector<char> buf(kRecvBuf);
  for (;;) {
    ssize_t n = recv(fd_, buf.data(), buf.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    int len = static_cast<int>(n);
    for (nlmsghdr* r = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(r, len); r = NLMSG_NEXT(r, len)) {
      if (r->nlmsg_seq != seq_) continue;  // a late answer to an earlier request
      int result = 0;
      if (on_message(r, &result)) return result;
    }
  }
}

int Netlink::transact(std::vector<char>& msg) {
  reinterpret_cast<nlmsghdr*>(msg.data())->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
  if (int err = send_request(msg); err != 0) return err;
  return read_answer([](nlmsghdr* r, int* result) {
    if (r->nlmsg_type != NLMSG_ERROR) return false;
    *result = r->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr)) ? -EPROTO
                                                            : reinterpret_cast<nlmsgerr*>(NLMSG_DATA(r))->error;  // 0 = the ACK
    return true;
  });
}

int Netlink::list_links(std::vector<NlLink>* out) {
  std::vector<char> msg = start(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  put(msg, &ifi, sizeof ifi);
  if (int err = send_request(msg); err != 0) return err;
  return read_answer([out](nlmsghdr* r, int* result) {
    if (r->nlmsg_type == NLMSG_DONE) return true;
    if (r->nlmsg_type == NLMSG_ERROR) {
      if (r->nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) return *result = -EPROTO, true;
      int err = reinterpret_cast<nlmsgerr*>(NLMSG_DATA(r))->error;
      if (err != 0) return *result = err, true;
      return false;
    }
    if (r->nlmsg_type != RTM_NEWLINK || r->nlmsg_len < NLMSG_LENGTH(sizeof(ifinfomsg))) return false;
    ifinfomsg* info = reinterpret_cast<ifinfomsg*>(NLMSG_DATA(r));
    NlLink link;
    link.index = info->ifi_index;
    link.flags = info->ifi_flags;
    int alen = static_cast<int>(r->nlmsg_len - NLMSG_LENGTH(sizeof(ifinfomsg)));
    for (rtattr* a = IFLA_RTA(info); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
      size_t plen = RTA_PAYLOAD(a);
      const char* p = static_cast<const char*>(RTA_DATA(a));
      if (a->rta_type == IFLA_IFNAME) {
        link.name.assign(p, strnlen(p, plen));
      } else if (a->rta_type == IFLA_ADDRESS && plen == 6) {
        link.mac = format_mac(reinterpret_cast<const unsigned char*>(p));
      } else if (a->rta_type == IFLA_MTU && plen == 4) {
        std::memcpy(&link.mtu, p, 4);
      }
    }
    out->push_back(std::move(link));
    return false;
  });
}

int Netlink::set_link(int index, const std::string& name, unsigned mtu, int set_up) {
  std::vector<char> msg = start(RTM_NEWLINK, 0);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = index;
  if (set_up >= 0) {
    ifi.ifi_change = IFF_UP;
    ifi.ifi_flags = set_up ? IFF_UP : 0;
  }
  put(msg, &ifi, sizeof ifi);
  if (!name.empty()) put_attr(msg, IFLA_IFNAME, name.c_str(), name.size() + 1);
  if (mtu > 0) put_u32(msg, IFLA_MTU, mtu);
  return transact(msg);
}

int Netlink::set_link_mac(int index, const unsigned char mac[6]) {
  std::vector<char> msg = start(RTM_NEWLINK, 0);
  ifinfomsg ifi{};
  ifi.ifi_family = AF_UNSPEC;
  ifi.ifi_index = index;
  put(msg, &ifi, sizeof ifi);
  put_attr(msg, IFLA_ADDRESS, mac, 6);
  return transact(msg);
}

int Netlink::add_address(int index, const NlAddr& addr, unsigned prefix) {
  std::vector<char> msg = start(RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE);
  ifaddrmsg ifa{};
  ifa.ifa_family = static_cast<unsigned char>(addr.family);
  ifa.ifa_prefixlen = static_cast<unsigned char>(prefix);
  ifa.ifa_scope = RT_SCOPE_UNIVERSE;
  ifa.ifa_index = static_cast<unsigned>(index);
  if (addr.family == AF_INET6) ifa.ifa_flags = IFA_F_NODAD;
  put(msg, &ifa, sizeof ifa);
  put_attr(msg, IFA_LOCAL, addr.bytes, addr.size());
  put_attr(msg, IFA_ADDRESS, addr.bytes, addr.size());
  if (addr.family == AF_INET6) put_u32(msg, IFA_FLAGS, IFA_F_NODAD);
  if (addr.family == AF_INET && prefix < 31) {  // as `ip addr add ... brd +`
    unsigned char brd[4];
    std::memcpy(brd, addr.bytes, 4);
    for (unsigned bit = prefix; bit < 32; bit++) brd[bit / 8] |= static_cast<unsigned char>(0x80u >> (bit % 8));
    put_attr(msg, IFA_BROADCAST, brd, 4);
  }
  return transact(msg);
}

int Netlink::add_route(const NlAddr& dest, unsigned dest_len, const NlAddr* gateway, int oif,
                       uint32_t metric, bool has_metric) {
  std::vector<char> msg = start(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE);
  rtmsg rt{};
  rt.rtm_family = static_cast<unsigned char>(dest.family);
  rt.rtm_dst_len = static_cast<unsigned char>(dest_len);
  rt.rtm_table = RT_TABLE_MAIN;
  rt.rtm_protocol = RTPROT_STATIC;
  rt.rtm_scope = gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
  rt.rtm_type = RTN_UNICAST;
  put(msg, &rt, sizeof rt);
  if (dest_len > 0) put_attr(msg, RTA_DST, dest.bytes, dest.size());
  if (gateway) put_attr(msg, RTA_GATEWAY, gateway->bytes, gateway->size());
  if (oif > 0) put_u32(msg, RTA_OIF, static_cast<uint32_t>(oif));
  if (has_metric) put_u32(msg, RTA_PRIORITY, metric);
  return transact(msg);
}
