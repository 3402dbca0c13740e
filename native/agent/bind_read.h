// Reading a bind's staging area back (docs/agent-protocol.md, "Binds"): get_file and list_bind
// let the host copy out what a container wrote into a writable bind, while it runs or after it
// exited (the staging area stays until delete_container). Paths resolve inside the staging root
// exactly as put_file's do (put_file.h), and the last component is never followed: a symlink is
// reported as one, and only a regular file is ever opened for reading (a FIFO or device node the
// container made is described, never opened).
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <string>
#include <vector>

#include "binds.h"

// "file", "dir", "symlink", "fifo", "socket", "char-device", "block-device" or "unknown".
const char* bind_entry_kind(mode_t mode);

// One entry as lstat sees it; `target` for a symlink.
struct BindEntry {
  std::string name;
  struct stat st {};
  std::string target;
};

// get_file: `path` (relative, "" = the bind itself) described in *entry; for a regular file,
// also up to `length` bytes from `offset` in *data (fewer at the end of the file). false with
// *error = "step: errno text".
bool bind_get(const std::string& staging, BindKind kind, const std::string& path, int64_t offset,
              int64_t length, BindEntry* entry, std::string* data, std::string* error);

// list_bind: the entries of the directory `path` of a directory bind, sorted by name (bytewise),
// those after `after` only, as many as fit in `budget` bytes of reply (at least one); *more when
// some were left for the next call. false with *error as above.
bool bind_list(const std::string& staging, const std::string& path, const std::string& after,
               size_t budget, std::vector<BindEntry>* entries, bool* more, std::string* error);

// Roughly how many bytes an entry takes in a reply (names and targets may be escaped ×6 in JSON).
size_t bind_entry_reply_bytes(const BindEntry& e);
