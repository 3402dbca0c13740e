#include "host/pod_net.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_addr.h>
#include <net/if_arp.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/if_tun.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <linux/tc_act/tc_mirred.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "host/netlink.h"

namespace vc {
namespace host {
namespace {

constexpr uint16_t kAck = NLM_F_REQUEST | NLM_F_ACK;
constexpr uint16_t kCreate = kAck | NLM_F_CREATE | NLM_F_EXCL;
// The ingress qdisc's handle (ffff:), under which the redirect filters hang.
constexpr uint32_t kIngressHandle = 0xffff0000u;
// IN6_ADDR_GEN_MODE_NONE (linux/if_link.h's enum, not in every libc's headers): no link-local
// address of the tap's own, so no router solicitations or DAD towards the VM.
constexpr uint8_t kAddrGenModeNone = 1;

bool Fail(PodNetError* error, std::string step, int err, std::string detail = "") {
  error->step = std::move(step);
  error->err = err;
  error->detail = std::move(detail);
  return false;
}

// A netlink request's answer: true on the kernel's ack, else the error filled in.
bool Ask(RouteSocket& socket, NetlinkRequest& request, PodNetError* error, const std::string& step) {
  std::string detail;
  int result = socket.Talk(request, &detail);
  if (result == 0) return true;
  return Fail(error, step, -result, detail);
}

NetlinkRequest LinkRequest(unsigned ifindex) {
  NetlinkRequest request(RTM_SETLINK, kAck);
  ifinfomsg link{};
  link.ifi_family = AF_UNSPEC;
  link.ifi_index = static_cast<int>(ifindex);
  request.Fixed(link);
  return request;
}

bool LinkUp(RouteSocket& socket, unsigned ifindex, const std::string& name, PodNetError* error) {
  NetlinkRequest request(RTM_SETLINK, kAck);
  ifinfomsg link{};
  link.ifi_family = AF_UNSPEC;
  link.ifi_index = static_cast<int>(ifindex);
  link.ifi_flags = IFF_UP;
  link.ifi_change = IFF_UP;
  request.Fixed(link);
  return Ask(socket, request, error, "set " + name + " up");
}

NetlinkRequest QdiscRequest(uint16_t type, uint16_t flags, unsigned ifindex) {
  NetlinkRequest request(type, flags);
  tcmsg tc{};
  tc.tcm_family = AF_UNSPEC;
  tc.tcm_ifindex = static_cast<int>(ifindex);
  tc.tcm_handle = kIngressHandle;
  tc.tcm_parent = TC_H_INGRESS;
  request.Fixed(tc);
  request.AttrString(TCA_KIND, "ingress");
  return request;
}

// `tc filter add dev FROM parent ffff: protocol all u32 match u8 0 0 action mirred egress redirect dev TO`.
bool AddRedirect(RouteSocket& socket, unsigned from, unsigned to, const std::string& step, PodNetError* error) {
  NetlinkRequest request(RTM_NEWTFILTER, kCreate);
  tcmsg tc{};
  tc.tcm_family = AF_UNSPEC;
  tc.tcm_ifindex = static_cast<int>(from);
  tc.tcm_parent = kIngressHandle;
  // Priority 0 lets the kernel pick one; the protocol (network order) is every protocol.
  tc.tcm_info = TC_H_MAKE(0u, htons(ETH_P_ALL));
  request.Fixed(tc);
  request.AttrString(TCA_KIND, "u32");
  size_t options = request.Begin(TCA_OPTIONS);
  // One key whose mask is 0 matches every frame; TERMINAL: the action ends the classification.
  // (tc_u32_sel ends in a flexible array of keys: the selector and its one key side by side.)
  uint8_t selector[sizeof(tc_u32_sel) + sizeof(tc_u32_key)] = {};
  tc_u32_sel head{};
  head.flags = TC_U32_TERMINAL;
  head.nkeys = 1;
  std::memcpy(selector, &head, sizeof head);
  request.Attr(TCA_U32_SEL, selector, sizeof selector);
  size_t actions = request.Begin(TCA_U32_ACT);
  size_t first = request.Begin(1);  // the action list's order starts at 1
  request.AttrString(TCA_ACT_KIND, "mirred");
  size_t action_options = request.Begin(TCA_ACT_OPTIONS);
  tc_mirred mirred{};
  mirred.action = TC_ACT_STOLEN;  // a redirected frame goes no further on this side
  mirred.eaction = TCA_EGRESS_REDIR;
  mirred.ifindex = to;
  request.Attr(TCA_MIRRED_PARMS, &mirred, sizeof mirred);
  request.End(action_options);
  request.End(first);
  request.End(actions);
  request.End(options);
  return Ask(socket, request, error, step);
}

bool MakeTap(const std::string& name, PodNetError* error) {
  if (name.empty() || name.size() >= IFNAMSIZ) return Fail(error, "tap name " + name + " (1 to 15 bytes)", EINVAL);
  int tun = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
  if (tun < 0) return Fail(error, "open /dev/net/tun", errno);
  ifreq request{};
  std::memcpy(request.ifr_name, name.data(), name.size());
  request.ifr_flags = IFF_TAP | IFF_NO_PI;
  bool ok = true;
  if (ioctl(tun, TUNSETIFF, &request) != 0) ok = Fail(error, "make tap " + name + " (TUNSETIFF)", errno);
  else if (ioctl(tun, TUNSETPERSIST, 1) != 0) ok = Fail(error, "keep tap " + name + " (TUNSETPERSIST)", errno);
  close(tun);
  return ok;
}

bool Index(const std::string& name, unsigned* ifindex, PodNetError* error) {
  *ifindex = if_nametoindex(name.c_str());
  return *ifindex != 0 || Fail(error, "find interface " + name, errno);
}

bool MirrorOne(RouteSocket& socket, const TapMirror& mirror, PodNetError* error) {
  unsigned pod_if = 0;
  unsigned tap_if = 0;
  if (!Index(mirror.interface, &pod_if, error) || !MakeTap(mirror.tap, error) || !Index(mirror.tap, &tap_if, error)) return false;
  NetlinkRequest mtu = LinkRequest(tap_if);
  mtu.AttrU32(IFLA_MTU, mirror.mtu);
  if (!Ask(socket, mtu, error, "set " + mirror.tap + " mtu " + std::to_string(mirror.mtu))) return false;
  NetlinkRequest addrgen = LinkRequest(tap_if);
  size_t af_spec = addrgen.Begin(IFLA_AF_SPEC);
  size_t inet6 = addrgen.Begin(AF_INET6);
  addrgen.AttrU8(IFLA_INET6_ADDR_GEN_MODE, kAddrGenModeNone);
  addrgen.End(inet6);
  addrgen.End(af_spec);
  PodNetError ignored;
  Ask(socket, addrgen, &ignored, "");  // fails where IPv6 is off, which changes nothing then
  if (!LinkUp(socket, tap_if, mirror.tap, error)) return false;
  // A bare ingress qdisc a crash left between its add and its filter's: the mirrored interface
  // is the pod's, so its ingress qdisc is ours to replace.
  NetlinkRequest stale = QdiscRequest(RTM_DELQDISC, kAck, pod_if);
  Ask(socket, stale, &ignored, "");
  NetlinkRequest pod_qdisc = QdiscRequest(RTM_NEWQDISC, kCreate, pod_if);
  NetlinkRequest tap_qdisc = QdiscRequest(RTM_NEWQDISC, kCreate, tap_if);
  return Ask(socket, pod_qdisc, error, "add ingress qdisc on " + mirror.interface) &&
         Ask(socket, tap_qdisc, error, "add ingress qdisc on " + mirror.tap) &&
         AddRedirect(socket, pod_if, tap_if, "redirect " + mirror.interface + " to " + mirror.tap, error) &&
         AddRedirect(socket, tap_if, pod_if, "redirect " + mirror.tap + " to " + mirror.interface, error);
}

std::string AddressText(int family, const ReceivedAttr& attr) {
  char text[INET6_ADDRSTRLEN] = "";
  const size_t want = family == AF_INET ? 4 : 16;
  if (attr.length < want || !inet_ntop(family, attr.data, text, sizeof text)) return "";
  return text;
}

std::string MacText(const ReceivedAttr& attr) {
  static const char kHex[] = "0123456789abcdef";
  std::string text;
  for (size_t i = 0; i < attr.length; i++) {
    if (i > 0) text += ':';
    text += kHex[attr.data[i] >> 4];
    text += kHex[attr.data[i] & 15];
  }
  return text;
}

std::string StringOf(const ReceivedAttr& attr) {
  return std::string(reinterpret_cast<const char*>(attr.data), strnlen(reinterpret_cast<const char*>(attr.data), attr.length));
}

uint32_t U32Of(const ReceivedAttr& attr) {
  uint32_t value = 0;
  if (attr.length >= sizeof value) std::memcpy(&value, attr.data, sizeof value);
  return value;
}

// Each answer's fixed header, copied out (answers are only 4-byte aligned in the buffer).
template <class T>
bool FixedOf(const nlmsghdr& message, T* out) {
  if (message.nlmsg_len < NLMSG_LENGTH(sizeof(T))) return false;
  std::memcpy(out, reinterpret_cast<const uint8_t*>(&message) + NLMSG_HDRLEN, sizeof(T));
  return true;
}

bool DumpLinks(RouteSocket& socket, NetnsView* view, PodNetError* error) {
  NetlinkRequest request(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP);
  ifinfomsg all{};
  all.ifi_family = AF_UNSPEC;
  request.Fixed(all);
  int result = socket.Dump(request, [&](const nlmsghdr& message) {
    ifinfomsg link;
    if (message.nlmsg_type != RTM_NEWLINK || !FixedOf(message, &link)) return;
    NetnsLink out;
    out.index = static_cast<unsigned>(link.ifi_index);
    out.ether = link.ifi_type == ARPHRD_ETHER;
    for (const ReceivedAttr& attr : AttrsAfter(message, sizeof link)) {
      if (attr.type == IFLA_IFNAME) out.name = StringOf(attr);
      else if (attr.type == IFLA_ADDRESS) out.mac = MacText(attr);
      else if (attr.type == IFLA_MTU) out.mtu = U32Of(attr);
    }
    view->links.push_back(out);
  });
  return result == 0 || Fail(error, "list the links", -result);
}

bool DumpAddresses(RouteSocket& socket, NetnsView* view, PodNetError* error) {
  NetlinkRequest request(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP);
  ifaddrmsg all{};
  all.ifa_family = AF_UNSPEC;
  request.Fixed(all);
  int result = socket.Dump(request, [&](const nlmsghdr& message) {
    ifaddrmsg address;
    if (message.nlmsg_type != RTM_NEWADDR || !FixedOf(message, &address)) return;
    if (address.ifa_family != AF_INET && address.ifa_family != AF_INET6) return;
    NetnsAddress out;
    out.index = address.ifa_index;
    out.family = address.ifa_family == AF_INET ? 4 : 6;
    out.prefix = address.ifa_prefixlen;
    out.scope = address.ifa_scope;
    std::string local, peer;
    for (const ReceivedAttr& attr : AttrsAfter(message, sizeof address)) {
      if (attr.type == IFA_LOCAL) local = AddressText(address.ifa_family, attr);
      else if (attr.type == IFA_ADDRESS) peer = AddressText(address.ifa_family, attr);
    }
    // As `ip` shows it: the local address, which IPv6 gives only as IFA_ADDRESS.
    out.address = local.empty() ? peer : local;
    if (!out.address.empty()) view->addresses.push_back(out);
  });
  return result == 0 || Fail(error, "list the addresses", -result);
}

bool DumpRoutes(RouteSocket& socket, int family, NetnsView* view, PodNetError* error) {
  NetlinkRequest request(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP);
  rtmsg all{};
  all.rtm_family = static_cast<unsigned char>(family);
  request.Fixed(all);
  int result = socket.Dump(request, [&](const nlmsghdr& message) {
    rtmsg route;
    if (message.nlmsg_type != RTM_NEWROUTE || !FixedOf(message, &route) || route.rtm_family != family) return;
    if (route.rtm_flags & RTM_F_CLONED) return;
    uint32_t table = route.rtm_table;
    NetnsRoute out;
    out.family = family == AF_INET ? 4 : 6;
    out.dst_len = route.rtm_dst_len;
    out.scope = route.rtm_scope;
    out.protocol = route.rtm_protocol;
    out.type = route.rtm_type;
    for (const ReceivedAttr& attr : AttrsAfter(message, sizeof route)) {
      if (attr.type == RTA_TABLE) table = U32Of(attr);
      else if (attr.type == RTA_DST) out.dst = AddressText(family, attr);
      else if (attr.type == RTA_GATEWAY) out.gateway = AddressText(family, attr);
      else if (attr.type == RTA_OIF) out.oif = U32Of(attr);
      else if (attr.type == RTA_PREFSRC) out.source = AddressText(family, attr);
    }
    if (table == RT_TABLE_MAIN) view->routes.push_back(out);
  });
  return result == 0 || Fail(error, std::string("list the IPv") + (family == AF_INET ? "4" : "6") + " routes", -result);
}

// tapN_vc, as src/network/tap.ts's TAP_NAME.
bool IsOurTap(const std::string& name) {
  const std::string head = "tap", tail = "_vc";
  if (name.size() <= head.size() + tail.size() || name.compare(0, head.size(), head) != 0 ||
      name.compare(name.size() - tail.size(), tail.size(), tail) != 0) {
    return false;
  }
  for (size_t i = head.size(); i < name.size() - tail.size(); i++) {
    if (name[i] < '0' || name[i] > '9') return false;
  }
  return true;
}

// Whether a u32 filter's actions include a mirred whose target is one of `targets`.
bool RedirectsTo(const std::vector<ReceivedAttr>& filter, const std::vector<unsigned>& targets) {
  for (const ReceivedAttr& options : filter) {
    if (options.type != TCA_OPTIONS) continue;
    for (const ReceivedAttr& actions : AttrsOf(options.data, options.length)) {
      if (actions.type != TCA_U32_ACT) continue;
      for (const ReceivedAttr& action : AttrsOf(actions.data, actions.length)) {
        std::vector<ReceivedAttr> parts = AttrsOf(action.data, action.length);
        bool mirred = false;
        for (const ReceivedAttr& part : parts) mirred = mirred || (part.type == TCA_ACT_KIND && StringOf(part) == "mirred");
        if (!mirred) continue;
        for (const ReceivedAttr& part : parts) {
          if (part.type != TCA_ACT_OPTIONS) continue;
          for (const ReceivedAttr& parms : AttrsOf(part.data, part.length)) {
            tc_mirred m;
            if (parms.type != TCA_MIRRED_PARMS || parms.length < sizeof m) continue;
            std::memcpy(&m, parms.data, sizeof m);
            for (unsigned target : targets) {
              if (m.ifindex == target) return true;
            }
          }
        }
      }
    }
  }
  return false;
}

// Whether any ingress filter of link `ifindex` redirects to one of `taps` (no qdisc: none does).
bool HasRedirectToTaps(RouteSocket& socket, unsigned ifindex, const std::vector<unsigned>& taps) {
  NetlinkRequest request(RTM_GETTFILTER, NLM_F_REQUEST | NLM_F_DUMP);
  tcmsg tc{};
  tc.tcm_family = AF_UNSPEC;
  tc.tcm_ifindex = static_cast<int>(ifindex);
  tc.tcm_parent = kIngressHandle;
  request.Fixed(tc);
  bool found = false;
  socket.Dump(request, [&](const nlmsghdr& message) {
    tcmsg filter;
    if (message.nlmsg_type != RTM_NEWTFILTER || !FixedOf(message, &filter)) return;
    found = found || RedirectsTo(AttrsAfter(message, sizeof filter), taps);
  });
  return found;
}

std::string OwnNamespaceFile() {
  return "/proc/self/task/" + std::to_string(syscall(SYS_gettid)) + "/ns/net";
}

// Runs `body` on a thread of its own and waits for it: the thread may change its network
// namespace, and ends with it.
template <class Body>
bool OnOwnThread(Body body) {
  bool ok = false;
  std::thread worker([&] { ok = body(); });
  worker.join();
  return ok;
}

// Runs `body` with a netlink socket of the namespace whose nsfs file is `netns_path` (InNetns).
template <class Body>
bool InNamespace(const std::string& netns_path, PodNetError* error, Body body) {
  return InNetns(netns_path, error, [&] {
    RouteSocket socket;
    if (socket.open_error() != 0) return Fail(error, "open a netlink socket", socket.open_error());
    return body(socket);
  });
}

}  // namespace

bool InNetns(const std::string& netns_path, PodNetError* error, const std::function<bool()>& body) {
  int ns = open(netns_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (ns < 0) return Fail(error, "cannot open network namespace " + netns_path, errno);
  bool ok = OnOwnThread([&] {
    if (setns(ns, CLONE_NEWNET) == 0) return body();
    const int err = errno;
    return Fail(error, "setns in network namespace " + netns_path + (err == EINVAL ? " (not a network namespace file?)" : ""), err);
  });
  close(ns);
  return ok;
}

bool MakeNetns(const std::string& path, PodNetError* error) {
  return OnOwnThread([&] {
    if (unshare(CLONE_NEWNET) != 0) return Fail(error, "unshare(CLONE_NEWNET)", errno);
    RouteSocket socket;
    if (socket.open_error() != 0) return Fail(error, "open a netlink socket", socket.open_error());
    unsigned lo = 0;
    if (!Index("lo", &lo, error) || !LinkUp(socket, lo, "lo", error)) return false;
    if (mount(OwnNamespaceFile().c_str(), path.c_str(), nullptr, MS_BIND, nullptr) != 0) return Fail(error, "bind-mount the namespace onto " + path, errno);
    return true;
  });
}

bool UnmountNetns(const std::string& path, int* unmounted, PodNetError* error) {
  *unmounted = 0;
  // A mount point stacked more than a few times is not ours to dig through.
  for (int i = 0; i < 16; i++) {
    if (umount2(path.c_str(), UMOUNT_NOFOLLOW) == 0) {
      ++*unmounted;
      continue;
    }
    if (errno == EINVAL || errno == ENOENT) return true;  // not a mount point (any more), or no file
    return Fail(error, "unmount " + path, errno);
  }
  return Fail(error, "unmount " + path + ": still mounted after 16 unmounts", EBUSY);
}

bool MakeTapMirrors(const std::string& netns_path, const std::vector<TapMirror>& mirrors, PodNetError* error) {
  return InNamespace(netns_path, error, [&](RouteSocket& socket) {
    for (const TapMirror& mirror : mirrors) {
      if (!MirrorOne(socket, mirror, error)) return false;
    }
    return true;
  });
}

bool SweepTapMirrors(const std::string& netns_path, int* removed_taps, PodNetError* error) {
  *removed_taps = 0;
  return InNamespace(netns_path, error, [&](RouteSocket& socket) {
    NetnsView view;
    if (!DumpLinks(socket, &view, error)) return false;
    std::vector<unsigned> taps;
    for (const NetnsLink& link : view.links) {
      if (IsOurTap(link.name)) taps.push_back(link.index);
    }
    if (taps.empty()) return true;
    for (const NetnsLink& link : view.links) {
      if (IsOurTap(link.name) || !HasRedirectToTaps(socket, link.index, taps)) continue;
      NetlinkRequest qdisc = QdiscRequest(RTM_DELQDISC, kAck, link.index);
      std::string detail;
      int result = socket.Talk(qdisc, &detail);
      // Gone meanwhile (its qdisc or the link itself): nothing left to remove.
      if (result != 0 && result != -EINVAL && result != -ENOENT && result != -ENODEV) return Fail(error, "remove the ingress qdisc of " + link.name, -result, detail);
    }
    for (const NetnsLink& link : view.links) {
      if (!IsOurTap(link.name)) continue;
      NetlinkRequest remove(RTM_DELLINK, kAck);
      ifinfomsg gone{};
      gone.ifi_family = AF_UNSPEC;
      gone.ifi_index = static_cast<int>(link.index);
      remove.Fixed(gone);
      std::string detail;
      int result = socket.Talk(remove, &detail);
      if (result == 0) ++*removed_taps;
      else if (result != -ENODEV) return Fail(error, "remove tap " + link.name, -result, detail);
    }
    return true;
  });
}

bool ReadNetns(const std::string& netns_path, NetnsView* view, PodNetError* error) {
  return InNamespace(netns_path, error, [&](RouteSocket& socket) {
    // No IPv6 (a kernel without it answers the dump with EAFNOSUPPORT): no IPv6 routes.
    PodNetError v6;
    if (!DumpLinks(socket, view, error) || !DumpAddresses(socket, view, error) || !DumpRoutes(socket, AF_INET, view, error)) return false;
    if (!DumpRoutes(socket, AF_INET6, view, &v6) && v6.err != EAFNOSUPPORT) {
      *error = v6;
      return false;
    }
    return true;
  });
}

}  // namespace host
}  // namespace vc
