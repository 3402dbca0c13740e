// put_file: the host writes a file, directory or symlink into a bind's staging area (binds.h).
// Every path is resolved inside the staging root, whatever a container process has put there
// through a writable bind: `..` and absolute paths are refused, and symlinks on the way resolve
// as if the staging root were `/` (openat2 RESOLVE_IN_ROOT; without openat2, none are followed).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "binds.h"

enum class PutKind { kFile, kDir, kSymlink };

struct PutRequest {
  std::string path;  // relative to the bind; "" = the bind itself
  PutKind kind = PutKind::kFile;
  mode_t mode = 0644;  // ignored for symlinks
  uid_t uid = 0;
  gid_t gid = 0;
  std::string data;     // file: the bytes to write at offset
  int64_t offset = 0;   // file
  bool truncate = false;  // file: cut it at offset before writing
  std::string target;   // symlink
};

// Splits a relative path into its components ("." and empty ones dropped). false with *why if it
// is absolute or has a ".." component.
bool put_path_components(const std::string& path, std::vector<std::string>* parts,
                         std::string* why);

// An O_PATH fd of the directory made of the first `count` of `parts` below `root`, resolved inside
// root (RESOLVE_IN_ROOT; before openat2, following no symlink); -1 with errno set.
int open_in_root(int root, const std::vector<std::string>& parts, size_t count);

// Carries out `req` in the staging file or directory `staging` of a bind of kind `kind`. A file
// is written in place (never replaced: a bind holds on to its inode); a symlink or other
// non-directory where a file or symlink goes is replaced. false with *error = "step: errno text";
// *size is a file's size afterwards.
bool put_file(const std::string& staging, BindKind kind, const PutRequest& req, int64_t* size,
              std::string* error);

// remove_file: takes the entry `path` (not "") out of a directory bind's staging area, a
// directory with everything in it; the last component is not followed, nor is anything inside a
// directory removed. An entry (or parent) that does not exist is no error: *removed says whether
// anything went. false with *error = "step: errno text".
bool bind_remove(const std::string& staging, const std::string& path, bool* removed,
                 std::string* error);
