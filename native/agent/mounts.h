// Mounts for containers: the shared read-only image mounts, each container's writable layer (an
// overlay whose upper and work directories live on a tmpfs of their own), and the container's own
// root as its init sets it up (/proc, /sys, /dev, pivot_root). Also the two changes the agent
// makes to its own mount namespace so that containers can pivot_root at all.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

// --- in the agent ------------------------------------------------------------------------------

// As PID 1: the VM's root is the initramfs `rootfs`, the one mount that has no parent, and
// pivot_root(2) refuses to move away from it (EINVAL). Binding / onto a directory of itself and
// moving that bind over / (then chroot) gives a root mount that has a parent; mount namespaces
// copied from it can pivot_root. Nothing is copied. false (logged) if a step failed.
bool mounts_root_off_rootfs();

// Test mode: a mount namespace of the agent's own with private propagation, so that what the agent
// mounts never shows on the host and vanishes with the agent. false (logged) without privileges.
bool mounts_private_namespace();

struct ImageMount {
  std::string mountpoint;  // <run>/images/<serial>
  int refs = 0;
};
using ImageTable = std::map<std::string, ImageMount>;  // by serial

// Mounts dev (read-only, fstype) at <run_dir>/images/<serial> unless it is mounted already, and
// counts one more user. false with *error = "step: errno text".
bool image_acquire(ImageTable& images, const std::string& run_dir, const std::string& serial,
                   const std::string& dev, const std::string& fstype, std::string* mountpoint,
                   std::string* error);
// One user fewer; unmounts the image when it was the last.
void image_release(ImageTable& images, const std::string& serial);

// A tmpfs at dir holding upper/ and work/, and an overlay of lower + upper at dir/rootfs.
// false with *error = "step: errno text", with nothing left mounted or created.
bool layer_create(const std::string& dir, const std::string& lower, std::string* error);
// Unmounts what layer_create mounted and removes dir; false with *error for what failed.
bool layer_remove(const std::string& dir, std::string* error);

// A file of the agent's bound read-only over a path inside containers (the pod's /etc/resolv.conf,
// /etc/hosts, /etc/hostname: network.h).
struct FileBind {
  std::string source;  // absolute, in the agent's mount namespace
  std::string target;  // relative to the container's root, e.g. "etc/resolv.conf"
};

// Binds each source read-only over its target inside the running (or created) container whose
// init is init_pid, on top of whatever is mounted there already, so that a process opening the
// target sees the old file or the new one, never none. A short-lived child clones the sources
// (open_tree), enters the container's mount namespace and attaches them there (move_mount).
// false with *error = "step target: errno text".
bool mounts_inject_files(pid_t init_pid, const std::vector<FileBind>& binds, std::string* error);

// --- in a container's init, in its new mount namespace -----------------------------------------

// Makes every mount private, mounts the container's /proc, /sys (read-only), /dev (tmpfs with
// the usual nodes and links, its own devpts and /dev/shm; /dev/shm is the detached mount shm_tree
// instead of a new tmpfs when that is not -1), binds `files` read-only over their targets (a
// missing target is created as an empty file, a symlink there is replaced by one: a bind would
// follow it out of the root), then pivot_root into rootfs and detaches the old root. false with
// errno set and step[] describing the failing step.
bool container_setup_root(const char* rootfs, const std::vector<FileBind>& files, int shm_tree,
                          char* step, size_t step_len);

// After pivot_root: binds the pty slave at slave_path (the container's /dev/pts/N) on
// /dev/console. false with errno set and step[] describing the failing step.
bool container_bind_console(const char* slave_path, char* step, size_t step_len);
