#include "users.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common/read_file.h"

namespace {

// One line of /etc/passwd or /etc/group split at ':'.
using Fields = std::vector<std::string>;

// Reads <root>/<path> without leaving root; false (errno set) if it cannot be opened.
bool read_in_root(int root_fd, const char* path, std::string* out) {
  open_how how{};
  how.flags = O_RDONLY | O_CLOEXEC;
  how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
  int fd = static_cast<int>(syscall(SYS_openat2, root_fd, path, &how, sizeof how));
  if (fd < 0) return false;
  vc::ReadFdBounded(fd, 16u << 20, out);  // no real passwd file is this large
  close(fd);
  return true;
}

std::vector<Fields> parse_table(const std::string& text) {
  std::vector<Fields> rows;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    start = end + 1;
    if (line.empty() || line[0] == '#') continue;
    Fields f;
    size_t s = 0;
    for (;;) {
      size_t c = line.find(':', s);
      f.push_back(line.substr(s, c == std::string::npos ? std::string::npos : c - s));
      if (c == std::string::npos) break;
      s = c + 1;
    }
    rows.push_back(std::move(f));
  }
  return rows;
}

// A decimal id that fits an uid_t/gid_t other than (uid_t)-1, which means "unchanged" to the
// kernel.
bool parse_id(const std::string& s, uint32_t* out) {
  if (s.empty() || s.size() > 10) return false;
  for (char ch : s) {
    if (ch < '0' || ch > '9') return false;
  }
  unsigned long long v = std::strtoull(s.c_str(), nullptr, 10);
  if (v >= 0xFFFFFFFFull) return false;
  *out = static_cast<uint32_t>(v);
  return true;
}

}  // namespace

bool resolve_user(int root_fd, const std::string& spec, Credentials* out, std::string* why) {
  // A file that cannot be read counts as empty (a number then need not have an entry).
  std::string passwd, group;
  if (!read_in_root(root_fd, "/etc/passwd", &passwd)) passwd.clear();
  if (!read_in_root(root_fd, "/etc/group", &group)) group.clear();
  return resolve_user_in(spec, passwd, group, out, why);
}

bool resolve_user_in(const std::string& spec, const std::string& passwd_text,
                     const std::string& group_text, Credentials* out, std::string* why) {
  size_t colon = spec.find(':');
  std::string user = spec.substr(0, colon);
  std::string group = colon == std::string::npos ? "" : spec.substr(colon + 1);
  if (user.empty() || (colon != std::string::npos && group.empty())) {
    *why = "expected \"uid\", \"uid:gid\", \"name\" or \"name:group\"";
    return false;
  }
  std::vector<Fields> passwd = parse_table(passwd_text), groups = parse_table(group_text);

  // The user: by name, else by number (a number need not have an entry).
  uint32_t id = 0;
  const Fields* pw = nullptr;
  for (const Fields& f : passwd) {
    if (f.size() >= 4 && f[0] == user) {
      pw = &f;
      break;
    }
  }
  if (!pw && parse_id(user, &id)) {
    for (const Fields& f : passwd) {
      uint32_t uid;
      if (f.size() >= 4 && parse_id(f[2], &uid) && uid == id) {
        pw = &f;
        break;
      }
    }
  }
  Credentials c;
  std::string name;  // for supplementary groups
  if (pw) {
    uint32_t uid, gid;
    if (!parse_id((*pw)[2], &uid) || !parse_id((*pw)[3], &gid)) {
      *why = "the container's /etc/passwd entry of \"" + user + "\" has a bad uid or gid";
      return false;
    }
    c.uid = uid;
    c.gid = gid;
    c.home = pw->size() >= 6 ? (*pw)[5] : "";
    name = (*pw)[0];
  } else if (parse_id(user, &id)) {
    c.uid = id;
    c.gid = 0;
  } else {
    *why = "no user \"" + user + "\" in the container's /etc/passwd";
    return false;
  }

  if (!group.empty()) {
    const Fields* gr = nullptr;
    for (const Fields& f : groups) {
      if (f.size() >= 3 && f[0] == group) {
        gr = &f;
        break;
      }
    }
    uint32_t gid;
    if (gr && parse_id((*gr)[2], &gid)) {
      c.gid = gid;
    } else if (parse_id(group, &gid)) {
      c.gid = gid;
    } else {
      *why = "no group \"" + group + "\" in the container's /etc/group";
      return false;
    }
  }

  // Supplementary groups: every group that lists the user as a member, plus the primary group
  // (as login(1) and container runtimes do).
  c.groups.push_back(c.gid);
  if (!name.empty()) {
    for (const Fields& f : groups) {
      uint32_t gid;
      if (f.size() < 4 || !parse_id(f[2], &gid)) continue;
      size_t s = 0;
      const std::string& members = f[3];
      while (s <= members.size()) {
        size_t e = members.find(',', s);
        if (e == std::string::npos) e = members.size();
        if (members.compare(s, e - s, name) == 0 && e - s == name.size()) {
          bool seen = false;
          for (gid_t g : c.groups) seen = seen || g == gid;
          if (!seen) c.groups.push_back(gid);
        }
        s = e + 1;
      }
    }
  }
  *out = std::move(c);
  return true;
}
