// A minimal rtnetlink (NETLINK_ROUTE) client written for the agent: list links, change a link
// (name, MTU, up), add addresses and routes. No libnl, no `ip` binary. Every call is synchronous:
// one request with NLM_F_ACK, then its answer; errors are negative errno values.
#pragma once

#include <linux/netlink.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

struct NlLink {
  int index = 0;
  std::string name;
  std::string mac;  // "aa:bb:cc:dd:ee:ff" (lower case), "" without a 6-byte address
  unsigned mtu = 0;
  unsigned flags = 0;  // IFF_*
};

// An IPv4 (4 bytes) or IPv6 (16 bytes) address.
struct NlAddr {
  int family = 0;  // AF_INET or AF_INET6
  unsigned char bytes[16] = {};
  size_t size() const { return family == AF_INET ? 4 : 16; }
};

class Netlink {
 public:
  Netlink() = default;
  ~Netlink();
  Netlink(const Netlink&) = delete;
  Netlink& operator=(const Netlink&) = delete;

  // 0 or -errno.
  int open();
  int list_links(std::vector<NlLink>* out);
  // Changes what is given: name (non-empty), mtu (> 0), up/down (set_up: 1 up, 0 down, -1 keep).
  int set_link(int index, const std::string& name, unsigned mtu, int set_up);
  // Sets the link's hardware address (a snapshot's NIC taking a restored pod's MAC).
  int set_link_mac(int index, const unsigned char mac[6]);
  // Adds (or replaces) address/prefix on the link. IPv6 addresses skip DAD (IFA_F_NODAD).
  int add_address(int index, const NlAddr& addr, unsigned prefix);
  // Adds (or replaces) a route in the main table. gateway == nullptr: a route on the link
  // (scope link). oif == 0: no output interface (the kernel picks one by the gateway).
  int add_route(const NlAddr& dest, unsigned dest_len, const NlAddr* gateway, int oif,
                uint32_t metric, bool has_metric);

 private:
  // Fills in msg's length and a new sequence number and sends it: 0, or the negative errno.
  int send_request(std::vector<char>& msg);
  // Hands each message answering the last request to on_message until it returns true with the
  // result (0 or a negative errno) set; a failed recv is its negative errno.
  int read_answer(const std::function<bool(nlmsghdr*, int*)>& on_message);
  int transact(std::vector<char>& msg);
  int fd_ = -1;
  uint32_t seq_ = 0;
};
