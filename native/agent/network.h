// The guest side of pod networking (docs/agent-protocol.md, "Network"): the `configure_network`
// op, which finds interfaces by MAC and configures them (name, MTU, addresses, up) and routes over
// rtnetlink (netlink.h), and keeps the pod's /etc/resolv.conf, /etc/hosts and /etc/hostname in
// <run>/net/, bound read-only into every container.
#pragma once

#include <string>
#include <vector>

#include "mounts.h"
#include "reply.h"

struct Agent;
struct Connection;

// Brings `lo` up in the agent's network namespace; false (logged) if it could not.
bool network_lo_up();

// The binds of the network files written so far (none before the first configure_network that
// gives dns, hosts or hostname), for a new container's init.
std::vector<FileBind> network_container_files(const Agent& a);

extern const std::vector<Op> kNetworkOps;

class Args;
// configure_network's argument checks alone, changing nothing; false with the BAD_REQUEST reason
// in args. For the request fuzzer (native/agent/fuzz).
bool network_config_args(Args& args);

// A host name the agent accepts: 1 to 64 letters, digits, '-' and '.', starting with a letter or
// digit.
bool valid_hostname(const std::string& s);
