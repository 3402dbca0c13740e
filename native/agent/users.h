// A container's user: "uid", "uid:gid", "name" or "name:group", resolved against the container's
// own /etc/passwd and /etc/group. Parsed here rather than through NSS because the agent is static
// and the files belong to the container's root, not to the agent's.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

struct Credentials {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups, for setgroups()
  std::string home;           // from passwd; "" when the user has no entry
};

// root_fd: a directory fd of the container's root; file lookups stay inside it even through
// symlinks (openat2 RESOLVE_IN_ROOT). false with *why saying what was not found.
bool resolve_user(int root_fd, const std::string& spec, Credentials* out, std::string* why);
// The same with the texts of the container's /etc/passwd and /etc/group given ("" for a file
// that is missing or unreadable): the parsing alone, for the users fuzzer (native/agent/fuzz).
bool resolve_user_in(const std::string& spec, const std::string& passwd_text,
                     const std::string& group_text, Credentials* out, std::string* why);

// Applied in the forked child by confine_credentials() (confine.h), with the capabilities.
