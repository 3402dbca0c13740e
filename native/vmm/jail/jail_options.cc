// vc-vmm's jail flags (jail.h). A path must be absolute and plain (no "." or ".." component, no
// empty one) because the jail mirrors it under its new root: a path that is not what it looks
// like could put a host directory where the caller did not mean it.
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "jail/jail.h"

namespace vmm::jail {

const char kJailUsage[] =
    "[--jail DIR [--jail-user UID:GID] [--jail-ro DIR]... [--jail-nofile N] [--jail-fsize BYTES]]";

namespace {

bool PlainAbsolutePath(const std::string& p) {
  if (p.size() < 2 || p[0] != '/' || p.back() == '/') return false;
  size_t start = 1;
  while (start <= p.size()) {
    size_t end = p.find('/', start);
    if (end == std::string::npos) end = p.size();
    const std::string part = p.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

bool ParseUint(const char* text, uint64_t max, uint64_t* out) {
  if (*text < '0' || *text > '9') return false;
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text, &end, 10);
  if (errno != 0 || *end != '\0' || v > max) return false;
  *out = v;
  return true;
}

}  // namespace

bool TakeJailFlag(int argc, char** argv, int* i, JailOptions* o, std::string* error) {
  const std::string flag = argv[*i];
  if (flag != "--jail" && flag != "--jail-user" && flag != "--jail-ro" && flag != "--jail-nofile" &&
      flag != "--jail-fsize")
    return false;
  if (*i + 1 >= argc) {
    *error = flag + " needs a value";
    return true;
  }
  const std::string value = argv[++*i];
  const std::string bad = flag + " " + (value.empty() ? "\"\"" : value) + ": ";
  if (flag == "--jail" || flag == "--jail-ro") {
    if (!PlainAbsolutePath(value)) {
      *error = bad + "must be an absolute path without \".\", \"..\", empty components or a trailing slash, and not /";
      return true;
    }
    if (flag == "--jail") o->root = value;
    else o->read_only_dirs.push_back(value);
  } else if (flag == "--jail-user") {
    const size_t colon = value.find(':');
    uint64_t uid = 0, gid = 0;
    // 2^32-1 is the "no id" value of the set*id calls.
    if (colon == std::string::npos || !ParseUint(value.substr(0, colon).c_str(), 0xfffffffe, &uid) ||
        !ParseUint(value.substr(colon + 1).c_str(), 0xfffffffe, &gid)) {
      *error = bad + "must be UID:GID, two integers in 0..4294967294";
      return true;
    }
    if (uid == 0 || gid == 0) {
      *error = bad + "the jail runs the VMM unprivileged: uid and gid must not be 0";
      return true;
    }
    o->uid = uid_t(uid);
    o->gid = gid_t(gid);
  } else {
    uint64_t* out = flag == "--jail-nofile" ? &o->max_open_files : &o->max_file_bytes;
    // Fewer than 64 fds cannot hold even a one-vCPU VM; a file limit under 1 MiB would cut the console log short at once.
    const uint64_t min = flag == "--jail-nofile" ? 64 : 1u << 20;
    const uint64_t max = flag == "--jail-nofile" ? 1u << 20 : ~0ull >> 1;
    if (!ParseUint(value.c_str(), max, out) || *out < min) {
      *error = bad + "must be an integer in " + std::to_string(min) + ".." + std::to_string(max);
      return true;
    }
  }
  return true;
}

}  // namespace vmm::jail
