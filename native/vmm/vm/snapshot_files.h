// A snapshot's two files opened and checked as far as they can be without building a VM: the
// whole state file (ReadSnapshot), the snapshot's own config, and the memory file's size and
// header page against the state file's record (docs/snapshots.md "Restore", steps 1–2). Shared by
// Vm::Restore and `vc-vmm snapshot verify`, so that verify checks at least what a restore checks.
#pragma once

#include <cstdint>
#include <string>

#include "kvm/kvm.h"
#include "snapshot/snapshot.h"
#include "vm/config.h"

namespace vmm::kvm {

struct OpenedSnapshot {
  // The state file's bytes: `info`'s sections point into them, so an OpenedSnapshot is filled in
  // place and never moved.
  std::string state_text;
  snapshot::SnapshotInfo info;
  VmConfig saved_config;
  UniqueFd memory;  // the memory file, open read-only
};

// Fills `*out`; an error names the file and what is wrong with it.
Status OpenSnapshot(const std::string& state_path, const std::string& memory_path, OpenedSnapshot* out);

}  // namespace vmm::kvm
