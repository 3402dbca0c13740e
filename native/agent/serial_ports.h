// Finding the agent's virtio-serial ports and noticing hosts on them. QEMU gives the VM several
// ports named `agent.0`, `agent.1`, … (one host client per port at a time: QEMU's socket chardev
// serves one connection), so hosts can talk to the agent at once; a port named `agent` is served
// too. Each port carries its own host sessions (channel.h).
#pragma once

#include <cstddef>
#include <string>

struct Agent;
struct Connection;

// `agent`, or `agent.` followed by at least one character.
bool is_agent_port_name(const std::string& name);
// Called every loop iteration: scans for new ports while needed and starts a host session on each
// port whose host side has been opened.
void serial_update(Agent& a);
// How long the loop may sleep as far as the serial ports are concerned (-1 = indefinitely).
int serial_poll_timeout(const Agent& a);
