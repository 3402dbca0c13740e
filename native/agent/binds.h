// Binds of host files and directories into a container without a shared filesystem
// (docs/agent-protocol.md, "Binds"): the agent keeps a staging file or directory per bind on the
// container's tmpfs, the container's init binds each at its destination, and `put_file` (the host
// copying the content in) writes into the staging area, so what it writes shows through the bind.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "common/json.h"

class Args;

enum class BindKind { kFile, kDir };

struct BindSpec {
  std::string destination;  // absolute, inside the container
  BindKind kind = BindKind::kDir;
  bool read_only = false;
};

// create_container's `binds` (absent = none); false with the BAD_REQUEST reason in args naming
// "binds[i].field".
bool binds_args(Args& args, std::vector<BindSpec>* out);

// <container dir>/binds/<n>: the staging file or directory of bind n.
std::string bind_staging_path(const std::string& container_dir, size_t n);

// Makes <container dir>/binds/ and an empty staging file (0644) or directory (0755) per bind.
// false with *error = "step: errno text"; whatever was made goes with the container's tmpfs.
bool binds_stage(const std::string& container_dir, const std::vector<BindSpec>& binds,
                 std::string* error);

// --- in a container's init ----------------------------------------------------------------------

// Before the root is set up (the staging paths are reachable only until pivot_root): a detached
// copy of each staging mount (open_tree), private and read-only where asked. false with errno set
// and step[] naming the failing step; the fds opened so far are in *trees either way.
bool binds_open_trees(const std::string& container_dir, const std::vector<BindSpec>& binds,
                      std::vector<int>* trees, char* step, size_t step_len);

// After pivot_root (so the destinations resolve inside the container's root, symlinks
// included): creates each destination in the writable layer (directories with their parents, an
// empty file for a file bind) and attaches its tree there. Closes the trees. false as above.
bool binds_attach(const std::vector<BindSpec>& binds, std::vector<int>* trees, char* step,
                  size_t step_len);
