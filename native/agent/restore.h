// A VM restored from a snapshot (docs/snapshots.md, "How the guest agent notices a restore"): the
// guest's vsock driver resets every connected socket on the transport-reset event, so the host
// connection fails with ECONNRESET while the listener stays. From then on the agent answers only
// `hello` and `restored` until a `restored` has given this copy of the VM its own randomness,
// clock, hostname, machine id and MACs — no container starts with the template's identity.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "reply.h"

struct Agent;
struct Connection;

// What restore handling needs of the agent (in Agent::restore).
struct RestoreState {
  uint32_t epoch = 0;    // 0 until the first `restored`; returned by hello and guest_info
  bool pending = false;  // a transport reset was seen and no `restored` applied since
  // Test mode (--restore-signal unix): an ECONNRESET on the Unix socket counts as the reset, and
  // the effects stay inside the test: the hostname in a UTS namespace of the agent's own, the
  // machine id under the run directory, no clock_settime, the seed written to /dev/urandom
  // without crediting entropy (the host's pool is not the test's to credit), no /dev/hwrng.
  bool test = false;
  std::string machine_id_path = "/etc/machine-id";
};

// A host socket of kind `kind` ("vsock", "unix") failed with ECONNRESET: if that is a snapshot
// restore's transport reset, the agent is restore-pending from now on (Agent::on_conn_reset).
void restore_conn_reset(Agent& a, const char* kind);

// While a restore is pending, every request but hello and restored is refused: true with the
// RESTORE_PENDING refusal in *refusal.
bool restore_refuses(const Agent& a, const std::string& op, Reply* refusal);

extern const std::vector<Op> kRestoreOps;
