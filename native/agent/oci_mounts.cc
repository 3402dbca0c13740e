#include "oci_mounts.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace {

struct FlagOption {
  const char* name;
  bool clears;  // "rw" clears what "ro" sets
  unsigned long flag;
};
const FlagOption kFlagOptions[] = {
    {"ro", false, MS_RDONLY},          {"rw", true, MS_RDONLY},
    {"nosuid", false, MS_NOSUID},      {"suid", true, MS_NOSUID},
    {"nodev", false, MS_NODEV},        {"dev", true, MS_NODEV},
    {"noexec", false, MS_NOEXEC},      {"exec", true, MS_NOEXEC},
    {"sync", false, MS_SYNCHRONOUS},   {"async", true, MS_SYNCHRONOUS},
    {"dirsync", false, MS_DIRSYNC},    {"mand", false, MS_MANDLOCK},
    {"nomand", true, MS_MANDLOCK},     {"noatime", false, MS_NOATIME},
    {"atime", true, MS_NOATIME},       {"nodiratime", false, MS_NODIRATIME},
    {"diratime", true, MS_NODIRATIME}, {"relatime", false, MS_RELATIME},
    {"norelatime", true, MS_RELATIME}, {"strictatime", false, MS_STRICTATIME},
    {"nostrictatime", true, MS_STRICTATIME},
    {"bind", false, MS_BIND},          {"rbind", false, MS_BIND | MS_REC},
    {"defaults", false, 0},
};

const FlagOption kPropagation[] = {
    {"private", false, MS_PRIVATE},       {"rprivate", false, MS_PRIVATE | MS_REC},
    {"shared", false, MS_SHARED},         {"rshared", false, MS_SHARED | MS_REC},
    {"slave", false, MS_SLAVE},           {"rslave", false, MS_SLAVE | MS_REC},
    {"unbindable", false, MS_UNBINDABLE}, {"runbindable", false, MS_UNBINDABLE | MS_REC},
};

const char* const kTypes[] = {"proc", "sysfs", "tmpfs", "devpts", "mqueue", "cgroup", "cgroup2", "bind"};

// Mounts the init makes itself (mounts.cc): a mount asked for here replaces the agent's rather
// than stacking a second one on it. /dev is the exception (its nodes live in that tmpfs): it is
// remounted in place with the flags asked for.
const char* const kReplaced[] = {"/proc", "/sys", "/dev/pts", "/dev/shm"};

bool fail(char* step, size_t len, const char* what, const std::string& path) {
  int err = errno;
  std::snprintf(step, len, "%s %s", what, path.c_str());
  errno = err;
  return false;
}

bool mkdir_p(const std::string& path) {
  for (size_t i = 1; i <= path.size(); i++) {
    if (i < path.size() && path[i] != '/') continue;
    if (mkdir(path.substr(0, i).c_str(), 0755) != 0 && errno != EEXIST) return false;
  }
  return true;
}

// The destination of a bind of a file is a file, created empty (with its directories) if missing.
bool ensure_file(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash > 0 && !mkdir_p(path.substr(0, slash))) return false;
  int fd = open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) return errno == EISDIR;  // exists as a directory: mount(2) reports the mismatch
  close(fd);
  return true;
}

bool is_replaced(const std::string& dest) {
  for (const char* r : kReplaced) {
    if (dest == r) return true;
  }
  return false;
}

// The flags a read-only remount must repeat so that the bind keeps them.
unsigned long kept_flags(const char* path) {
  struct statvfs st;
  if (statvfs(path, &st) != 0) return 0;
  unsigned long f = 0;
  if (st.f_flag & ST_NOSUID) f |= MS_NOSUID;
  if (st.f_flag & ST_NODEV) f |= MS_NODEV;
  if (st.f_flag & ST_NOEXEC) f |= MS_NOEXEC;
  if (st.f_flag & ST_NOATIME) f |= MS_NOATIME;
  if (st.f_flag & ST_NODIRATIME) f |= MS_NODIRATIME;
  if (st.f_flag & ST_RELATIME) f |= MS_RELATIME;
  return f;
}

bool mount_one(const OciMount& m, char* step, size_t len) {
  const std::string& dest = m.destination;
  unsigned long flags = m.flags & ~(MS_BIND | MS_REC);
  if (dest == "/dev") {  // the request checker lets only tmpfs through here
    if (mount(nullptr, "/dev", nullptr, MS_REMOUNT | flags, m.data.c_str()) != 0) {
      return fail(step, len, "remount", dest);
    }
    return true;
  }
  if (m.type == "bind") {
    struct stat st;
    if (stat(m.source.c_str(), &st) != 0) return fail(step, len, "bind source", m.source);
    if (!(S_ISDIR(st.st_mode) ? mkdir_p(dest) : ensure_file(dest))) {
      return fail(step, len, "create", dest);
    }
  } else if (!mkdir_p(dest)) {
    return fail(step, len, "mkdir", dest);
  }
  if (is_replaced(dest) && umount2(dest.c_str(), MNT_DETACH) != 0 && errno != EINVAL) {
    return fail(step, len, "unmount the agent's", dest);
  }
  if (m.type == "bind") {
    if (mount(m.source.c_str(), dest.c_str(), nullptr, MS_BIND | (m.flags & MS_REC), nullptr) != 0) {
      return fail(step, len, ("bind " + m.source + " on").c_str(), dest);
    }
    // A bind takes its flags only through a remount of it.
    if (flags && mount(nullptr, dest.c_str(), nullptr, MS_BIND | MS_REMOUNT | flags, nullptr) != 0) {
      return fail(step, len, "remount the bind", dest);
    }
  } else {
    std::string fstype = m.type == "cgroup" ? "cgroup2" : m.type;
    const std::string& source = m.source.empty() ? fstype : m.source;
    if (mount(source.c_str(), dest.c_str(), fstype.c_str(), flags,
              m.data.empty() ? nullptr : m.data.c_str()) != 0) {
      return fail(step, len, ("mount " + fstype + " on").c_str(), dest);
    }
  }
  if (m.propagation && mount(nullptr, dest.c_str(), nullptr, m.propagation, nullptr) != 0) {
    return fail(step, len, "set propagation of", dest);
  }
  return true;
}

}  // namespace

bool oci_mount_type_known(const std::string& type) {
  for (const char* t : kTypes) {
    if (type == t) return true;
  }
  return false;
}

bool oci_mount_options(const std::vector<std::string>& options, OciMount* m, std::string* why) {
  for (const std::string& o : options) {
    bool matched = false;
    for (const FlagOption& f : kFlagOptions) {
      if (o != f.name) continue;
      m->flags = f.clears ? (m->flags & ~f.flag) : (m->flags | f.flag);
      matched = true;
    }
    for (const FlagOption& p : kPropagation) {
      if (o != p.name) continue;
      m->propagation = p.flag;
      matched = true;
    }
    if (matched) continue;
    if (o.empty() || o.find(',') != std::string::npos) {
      *why = "option \"" + o + "\" must be one non-empty option";
      return false;
    }
    m->data += (m->data.empty() ? "" : ",") + o;  // for the filesystem to judge
  }
  if (m->type == "bind") {
    m->flags |= MS_BIND;
    if (!m->data.empty()) {
      *why = "a bind takes no filesystem options, got \"" + m->data + "\"";
      return false;
    }
  } else if (m->flags & MS_BIND) {
    *why = "bind and rbind need type \"bind\" (type is \"" + m->type + "\")";
    return false;
  }
  return true;
}

bool oci_path_ok(const std::string& path, std::string* why) {
  if (path.empty() || path[0] != '/') {
    *why = "is not an absolute path";
    return false;
  }
  if (path == "/") {
    *why = "is the container's root";
    return false;
  }
  size_t s = 1;
  while (s <= path.size()) {
    size_t e = path.find('/', s);
    if (e == std::string::npos) e = path.size();
    std::string part = path.substr(s, e - s);
    if (part.empty() || part == "." || part == "..") {
      *why = "must not have empty, . or .. components";
      return false;
    }
    s = e + 1;
  }
  return true;
}

bool oci_mounts_apply(const std::vector<OciMount>& mounts, char* step, size_t step_len) {
  for (const OciMount& m : mounts) {
    if (!mount_one(m, step, step_len)) return false;
  }
  return true;
}

bool oci_mask_paths(const std::vector<std::string>& paths, char* step, size_t step_len) {
  for (const std::string& p : paths) {
    struct stat st;
    if (stat(p.c_str(), &st) != 0) {
      if (errno == ENOENT || errno == ENOTDIR) continue;
      return fail(step, step_len, "mask: stat", p);
    }
    int r = S_ISDIR(st.st_mode)
                ? mount("tmpfs", p.c_str(), "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                        nullptr)
                : mount("/dev/null", p.c_str(), nullptr, MS_BIND, nullptr);
    if (r != 0) return fail(step, step_len, "mask", p);
  }
  return true;
}

bool oci_readonly_paths(const std::vector<std::string>& paths, char* step, size_t step_len) {
  for (const std::string& p : paths) {
    if (mount(p.c_str(), p.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
      if (errno == ENOENT || errno == ENOTDIR) continue;
      return fail(step, step_len, "read-only: bind", p);
    }
    unsigned long flags = MS_BIND | MS_REMOUNT | MS_RDONLY | kept_flags(p.c_str());
    if (mount(nullptr, p.c_str(), nullptr, flags, nullptr) != 0) {
      return fail(step, step_len, "read-only: remount", p);
    }
  }
  return true;
}
