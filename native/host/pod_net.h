// The host side of a pod's network made with system calls and rtnetlink instead of `unshare`,
// `ip` and `tc` processes (each spawn cost 0.1–0.5 s in the nested harness's L1): a network
// namespace kept by a bind mount of its nsfs file, and in a namespace a tap per mirrored
// interface with the tc redirects both ways (Kata's "tcfilter" mode, src/network/tap.ts).
// Each call runs the namespace part on a thread of its own that joins the namespace and ends, so
// the caller's threads never change namespace. No Node, no exceptions.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace vc {
namespace host {

// What went wrong: the step (naming the interface or path) and the errno, plus the kernel's own
// words for a netlink request when it gave them.
struct PodNetError {
  std::string step;
  int err = 0;
  std::string detail;
};

// Runs `body` on a thread of its own that first joins the network namespace whose nsfs file is
// `netns_path`, and waits for it; the thread ends with the namespace it joined, so the caller's
// threads (Node's, libuv's pool) never change namespace. False when the namespace cannot be
// joined (error: the path and errno) or `body` returns false (it fills the error itself).
bool InNetns(const std::string& netns_path, PodNetError* error, const std::function<bool()>& body);

// A new network namespace with `lo` up, bind-mounted onto `path` (an existing file). On failure
// nothing is mounted.
bool MakeNetns(const std::string& path, PodNetError* error);

// Unmounts every mount stacked on `path`; `*unmounted` counts them (0: it was not mounted).
bool UnmountNetns(const std::string& path, int* unmounted, PodNetError* error);

struct TapMirror {
  std::string interface;  // the pod's interface (a CNI veth), mirrored
  std::string tap;        // the tap to make for the VM: tapN_vc
  unsigned mtu = 1500;
};

// In the namespace whose nsfs file is `netns_path`, for each mirror: a persistent tap with the
// interface's MTU, no IPv6 address generation (where IPv6 is on), up; then the interface's
// ingress qdisc is made anew, the tap gets one, and a u32 match-all filter on each redirects every
// frame to the other's egress (mirred). Stops at the first failure; what it made is left for the
// caller's sweep (removeTaps), as it is after a crash.
bool MakeTapMirrors(const std::string& netns_path, const std::vector<TapMirror>& mirrors, PodNetError* error);

// Undoes MakeTapMirrors in the namespace whatever part of it ran: the ingress qdisc (and with it
// the filters) of every link with a filter redirecting to a tapN_vc, then every tapN_vc. With no
// tapN_vc it reads the links only (a redirect to a tap that is gone names no device, so there is
// nothing to find). `*removed_taps` counts the taps removed.
bool SweepTapMirrors(const std::string& netns_path, int* removed_taps, PodNetError* error);

// What `ip -d addr show` and `ip route show` read, as the kernel gives it (numbers, not names).
struct NetnsLink {
  unsigned index = 0;
  std::string name;
  bool ether = false;  // ARPHRD_ETHER: veths, taps, physical NICs
  std::string mac;     // aa:bb:…, lower case; empty when the link has none
  unsigned mtu = 0;
};
struct NetnsAddress {
  unsigned index = 0;  // the link's
  int family = 0;      // 4 or 6
  std::string address;
  unsigned prefix = 0;
  unsigned scope = 0;  // RT_SCOPE_*: 0 universe (global), 253 link, 254 host
};
struct NetnsRoute {
  int family = 0;  // 4 or 6
  std::string dst;  // empty: the default route (dst_len 0)
  unsigned dst_len = 0;
  std::string gateway;
  unsigned oif = 0;  // the link's index; 0 when the route names none (or several)
  unsigned scope = 0, protocol = 0, type = 0;  // RT_SCOPE_*, RTPROT_*, RTN_*
  std::string source;  // RTA_PREFSRC
};
struct NetnsView {
  std::vector<NetnsLink> links;
  std::vector<NetnsAddress> addresses;
  std::vector<NetnsRoute> routes;  // the main table's, as `ip route show`; cloned ones left out
};

// Reads the namespace whose nsfs file is `netns_path` over rtnetlink, on a thread that joins it.
bool ReadNetns(const std::string& netns_path, NetnsView* view, PodNetError* error);

}  // namespace host
}  // namespace vc
