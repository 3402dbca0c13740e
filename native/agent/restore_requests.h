// The argument checks of `restored` (docs/snapshots.md, "How the guest agent notices a restore"),
// apart from the op in restore.cc so the request fuzzer (native/agent/fuzz) reaches them without
// touching the clock, the hostname or the entropy pool. Each returns false with the BAD_REQUEST
// reason in args ("field: why").
#pragma once

#include <time.h>

#include <cstdint>
#include <string>
#include <vector>

class Args;

constexpr size_t kRestoreSeedBytes = 32;
constexpr size_t kRestoreMaxMacs = 16;

struct RestoredRequest {
  uint32_t epoch = 0;         // 1..2^32-1: 0 is the cold boot's
  timespec time{};            // the host's CLOCK_REALTIME; tv_nsec < 1e9
  std::string hostname;       // valid_hostname (network.h)
  std::string machine_id;     // 32 lowercase hex digits, not all zero (machine-id(5))
  std::string seed;           // exactly kRestoreSeedBytes raw bytes, from base64
  // The NICs' MACs: the snapshot's (what the guest kernel still has) -> the restored pod's.
  struct MacChange {
    std::string from, to;  // "aa:bb:cc:dd:ee:ff", lower case
  };
  std::vector<MacChange> macs;  // at most kRestoreMaxMacs, each `from` once
};

// restored: epoch, time {sec, nsec}, hostname, machineId, seed, and optional macs [{from, to}].
bool restored_args(Args& args, RestoredRequest* out);

// The second signal of a restore: the host's wall clock is later than the guest's, which stood
// still while the snapshot waited. False, with a reason naming `time`, when it is not.
bool restore_clock_jumped(const timespec& host, const timespec& guest, std::string* why);
