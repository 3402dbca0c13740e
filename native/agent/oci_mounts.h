// The container's own mounts from an OCI config (proc, sysfs, tmpfs, devpts, mqueue, cgroup2, a
// bind of a path inside the container) and its masked and read-only paths. Made by the init
// after pivot_root, so every path resolves inside the container's root.
#pragma once

#include <string>
#include <vector>

struct OciMount {
  std::string destination;  // absolute, inside the container
  std::string type;         // filesystem type as mount(2) takes it ("bind" for a bind)
  std::string source;       // a bind: a path inside the container; else the device name shown
  unsigned long flags = 0;        // MS_* from the options
  unsigned long propagation = 0;  // MS_PRIVATE, MS_SHARED, ... (| MS_REC); 0 = as it comes
  std::string data;               // the options that are not flags, for the filesystem
};

// The filesystem types a mount may have; "cgroup" means cgroup2 (the guest has no v1).
bool oci_mount_type_known(const std::string& type);

// Splits OCI options ("ro", "nosuid", "mode=755", "rbind", "rprivate", ...) into mount flags,
// propagation and the data string; false with *why naming an option that cannot be used.
bool oci_mount_options(const std::vector<std::string>& options, OciMount* m, std::string* why);

// An absolute path with no "." or ".." components and no empty ones; why says what is wrong.
bool oci_path_ok(const std::string& path, std::string* why);

// In the init, in order: false with errno set and step[] naming the step and path.
bool oci_mounts_apply(const std::vector<OciMount>& mounts, char* step, size_t step_len);
// /dev/null over files, an empty read-only tmpfs over directories; missing paths are skipped.
bool oci_mask_paths(const std::vector<std::string>& paths, char* step, size_t step_len);
// Each path bound onto itself and made read-only (keeping its nosuid/nodev/noexec); missing
// paths are skipped.
bool oci_readonly_paths(const std::vector<std::string>& paths, char* step, size_t step_len);
