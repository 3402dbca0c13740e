#include "confine_requests.h"

#include <sys/resource.h>

#include <cmath>
#include <cstring>
#include <initializer_list>

namespace {

constexpr double kMaxSafeInteger = 9007199254740991.0;  // 2^53 - 1: exact in a JSON number
constexpr double kCapMask = 2199023255551.0;            // 2^41 - 1: CAP_CHOWN..CAP_CHECKPOINT_RESTORE
constexpr size_t kMaxFilterInsns = 4096;                 // BPF_MAXINSNS

std::string at(const char* n, size_t i) { return std::string(n) + "[" + std::to_string(i) + "]"; }

// Rejects members other than `known`: a misspelt confinement field must not pass as absent.
bool only_keys(Args& args, const char* self, const json::Value& obj,
               std::initializer_list<const char*> known) {
  for (const json::Member& m : obj.members()) {
    bool ok = false;
    for (const char* k : known) ok = ok || m.key == k;
    if (!ok) {
      std::string name = std::string(self) + m.key;
      return args.fail(name.c_str(), "unknown argument");
    }
  }
  return true;
}

std::string cap_list(uint64_t mask) {
  std::string s;
  for (int cap = 0; cap < 64; cap++) {
    if (mask & (1ULL << cap)) s += (s.empty() ? "" : ", ") + std::to_string(cap);
  }
  return s;
}

bool caps_args(Args& sec, const json::Value& obj, CapSets* caps) {
  Args c(obj, "security.caps.");
  int64_t b = 0, e = 0, p = 0, i = 0, a = 0;
  if (!only_keys(c, "", obj, {"bounding", "effective", "permitted", "inheritable", "ambient"}) ||
      !c.integer("bounding", true, 0, kCapMask, &b) ||
      !c.integer("effective", true, 0, kCapMask, &e) ||
      !c.integer("permitted", true, 0, kCapMask, &p) ||
      !c.integer("inheritable", true, 0, kCapMask, &i) ||
      !c.integer("ambient", true, 0, kCapMask, &a)) {
    return sec.take(c);
  }
  caps->bounding = static_cast<uint64_t>(b);
  caps->effective = static_cast<uint64_t>(e);
  caps->permitted = static_cast<uint64_t>(p);
  caps->inheritable = static_cast<uint64_t>(i);
  caps->ambient = static_cast<uint64_t>(a);
  // What capset(2) and PR_CAP_AMBIENT_RAISE would refuse with a bare EPERM, named here instead.
  if (caps->effective & ~caps->permitted) {
    c.fail("effective", "has capabilities not in permitted: " + cap_list(caps->effective & ~caps->permitted));
  } else if (caps->inheritable & ~caps->bounding) {
    c.fail("inheritable", "has capabilities not in bounding: " + cap_list(caps->inheritable & ~caps->bounding));
  } else if (caps->ambient & ~(caps->permitted & caps->inheritable)) {
    c.fail("ambient", "has capabilities not in both permitted and inheritable: " +
                          cap_list(caps->ambient & ~(caps->permitted & caps->inheritable)));
  } else {
    return true;
  }
  return sec.take(c);
}

int base64_value(char ch) {
  if (ch >= 'A' && ch <= 'Z') return ch - 'A';
  if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
  if (ch >= '0' && ch <= '9') return ch - '0' + 52;
  if (ch == '+') return 62;
  if (ch == '/') return 63;
  return -1;
}

// Standard base64 with padding; false on anything else.
bool base64_decode(const std::string& in, std::string* out) {
  if (in.size() % 4 != 0) return false;
  for (size_t i = 0; i < in.size(); i += 4) {
    int v[4];
    for (int k = 0; k < 4; k++) {
      char ch = in[i + k];
      bool last = i + 4 == in.size();
      if (ch == '=' && last && k >= 2 && (k == 3 || in[i + 3] == '=')) {
        v[k] = -2;
      } else {
        v[k] = base64_value(ch);
        if (v[k] < 0) return false;
      }
    }
    out->push_back(static_cast<char>((v[0] << 2) | (v[1] >> 4)));
    if (v[2] >= 0) out->push_back(static_cast<char>(((v[1] & 15) << 4) | (v[2] >> 2)));
    if (v[3] >= 0) out->push_back(static_cast<char>(((v[2] & 3) << 6) | v[3]));
  }
  return true;
}

bool seccomp_args(Args& sec, const json::Value& obj, std::string* program) {
  Args s(obj, "security.seccomp.");
  std::string b64;
  if (!only_keys(s, "", obj, {"filter"}) || !s.string("filter", &b64, true)) return sec.take(s);
  if (!base64_decode(b64, program)) {
    s.fail("filter", "is not base64");
  } else if (program->empty() || program->size() % 8 != 0 || program->size() / 8 > kMaxFilterInsns) {
    s.fail("filter", std::to_string(program->size()) +
                         " bytes: expected 1 to 4096 instructions of 8 bytes (struct sock_filter)");
  } else {
    return true;
  }
  return sec.take(s);
}

bool path_list(Args& s, const char* n, std::vector<std::string>* out) {
  if (!s.string_array(n, false, out)) return false;
  for (size_t i = 0; i < out->size(); i++) {
    std::string why;
    if (!oci_path_ok((*out)[i], &why)) return s.fail(at(n, i).c_str(), "\"" + (*out)[i] + "\" " + why);
  }
  return true;
}

// security: caps, noNewPrivileges, seccomp, and for a create maskedPaths and readonlyPaths.
bool security_args(Args& args, bool create, Confinement* out, ConfineOverrides* seen) {
  const json::Value* sec = nullptr;
  if (!args.object("security", &sec)) return false;
  if (!sec) return true;
  Args s(*sec, "security.");
  if (!only_keys(s, "", *sec, {"caps", "noNewPrivileges", "seccomp", "maskedPaths", "readonlyPaths"})) {
    return args.take(s);
  }
  if (!create) {
    for (const char* n : {"maskedPaths", "readonlyPaths"}) {
      if (s.get(n)) {
        s.fail(n, "only create_container takes it (an exec shares the container's mounts)");
        return args.take(s);
      }
    }
  }
  const json::Value* caps = nullptr;
  const json::Value* seccomp = nullptr;
  if (!s.object("caps", &caps) || (caps && !caps_args(s, *caps, &out->caps)) ||
      !s.boolean("noNewPrivileges", &out->no_new_privs) || !s.object("seccomp", &seccomp) ||
      (seccomp && !seccomp_args(s, *seccomp, &out->seccomp)) ||
      !path_list(s, "maskedPaths", &out->masked_paths) ||
      !path_list(s, "readonlyPaths", &out->readonly_paths)) {
    return args.take(s);
  }
  out->has_caps = caps != nullptr;
  if (seen) {
    seen->caps = caps != nullptr;
    seen->no_new_privs = s.get("noNewPrivileges") != nullptr;
    seen->seccomp = seccomp != nullptr;
  }
  return true;
}

// soft and hard: present, each an integer or null (no limit).
bool rlimit_value(Args& r, const json::Value& item, const char* n, uint64_t* out) {
  const json::Value* v = item.find(n);
  if (!v) return r.fail(n, "missing (null for no limit)");
  if (v->is_null()) {
    *out = RLIM_INFINITY;
    return true;
  }
  int64_t x = 0;
  if (!r.integer(n, true, 0, kMaxSafeInteger, &x)) return false;
  *out = static_cast<uint64_t>(x);
  return true;
}

bool rlimit_args(Args& args, std::vector<Rlimit>* out, bool* present) {
  const json::Value* v = args.get("rlimits");
  *present = v != nullptr;
  if (!v) return true;
  if (!v->is_array()) return args.fail("rlimits", "expected an array, got " + Args::got(*v));
  for (size_t i = 0; i < v->items().size(); i++) {
    const json::Value& item = v->items()[i];
    std::string self = at("rlimits", i);
    if (!item.is_object()) return args.fail(self.c_str(), "expected an object, got " + Args::got(item));
    Args r(item, self + ".");
    Rlimit lim;
    int64_t resource = 0;
    if (!only_keys(r, "", item, {"resource", "soft", "hard"}) ||
        !r.integer("resource", true, 0, kRlimitCount - 1, &resource) ||
        !rlimit_value(r, item, "soft", &lim.soft) || !rlimit_value(r, item, "hard", &lim.hard)) {
      return args.take(r);
    }
    lim.resource = static_cast<int>(resource);
    if (lim.soft > lim.hard) {
      r.fail("soft", std::to_string(lim.soft) + " is above hard " + std::to_string(lim.hard));
      return args.take(r);
    }
    for (const Rlimit& earlier : *out) {
      if (earlier.resource == lim.resource) {
        r.fail("resource", std::to_string(resource) + " is given twice");
        return args.take(r);
      }
    }
    out->push_back(lim);
  }
  return true;
}

bool gid_args(Args& args, std::vector<gid_t>* out, bool* present) {
  const json::Value* v = args.get("additionalGids");
  *present = v != nullptr;
  if (!v) return true;
  if (!v->is_array()) return args.fail("additionalGids", "expected an array of gids, got " + Args::got(*v));
  for (size_t i = 0; i < v->items().size(); i++) {
    const json::Value& g = v->items()[i];
    double d = g.as_number();
    // (gid_t)-1 means "unchanged" to the kernel, so it is no group. The range comes first:
    // converting a double outside int64_t's to an integer is undefined (found by request_fuzzer).
    if (!g.is_number() || d < 0 || d > 4294967294.0 || d != std::floor(d)) {
      return args.fail(at("additionalGids", i).c_str(),
                       "expected an integer from 0 to 4294967294, got " + Args::got(g));
    }
    out->push_back(static_cast<gid_t>(d));
  }
  return true;
}

// The sysctls that belong to a namespace the container has (ipc, uts) or to the pod (net: the
// pod's network namespace is the VM's); any other would change the whole guest kernel.
bool sysctl_namespaced(const std::string& name) {
  static const char* const kPrefixes[] = {"kernel.shm", "kernel.msg", "kernel.sem", "fs.mqueue.", "net."};
  if (name == "kernel.hostname" || name == "kernel.domainname") return true;
  for (const char* p : kPrefixes) {
    if (name.compare(0, strlen(p), p) == 0) return true;
  }
  return false;
}

bool sysctl_name_ok(const std::string& name) {
  if (name.empty() || name.front() == '.' || name.back() == '.' || name.find("..") != std::string::npos) {
    return false;
  }
  for (char ch : name) {
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-' || ch == '.';
    if (!ok) return false;
  }
  return true;
}

bool sysctl_args(Args& args, std::vector<std::pair<std::string, std::string>>* out) {
  const json::Value* obj = nullptr;
  if (!args.object("sysctls", &obj)) return false;
  if (!obj) return true;
  for (const json::Member& m : obj->members()) {
    std::string n = "sysctls." + m.key;
    if (!sysctl_name_ok(m.key)) {
      return args.fail(n.c_str(), "not a sysctl name (letters, digits, _ - separated by dots)");
    }
    if (!sysctl_namespaced(m.key)) {
      return args.fail(n.c_str(),
                       "not a namespaced sysctl (kernel.shm*, kernel.msg*, kernel.sem*, "
                       "kernel.hostname, kernel.domainname, fs.mqueue.*, net.*)");
    }
    if (!m.value.is_string() || m.value.as_string().find('\0') != std::string::npos) {
      return args.fail(n.c_str(), "expected a string without NUL, got " + Args::got(m.value));
    }
    out->emplace_back(m.key, m.value.as_string());
  }
  return true;
}

bool mount_args(Args& args, std::vector<OciMount>* out) {
  const json::Value* v = args.get("mounts");
  if (!v) return true;
  if (!v->is_array()) return args.fail("mounts", "expected an array, got " + Args::got(*v));
  for (size_t i = 0; i < v->items().size(); i++) {
    const json::Value& item = v->items()[i];
    std::string self = at("mounts", i);
    if (!item.is_object()) return args.fail(self.c_str(), "expected an object, got " + Args::got(item));
    Args m(item, self + ".");
    OciMount mnt;
    std::vector<std::string> options;
    bool has_source = false;
    std::string why;
    if (!only_keys(m, "", item, {"destination", "type", "source", "options"}) ||
        !m.string("destination", &mnt.destination, true) || !m.string("type", &mnt.type, true) ||
        !m.string("source", &mnt.source, false, &has_source) ||
        !m.string_array("options", false, &options)) {
      return args.take(m);
    }
    if (!oci_mount_type_known(mnt.type)) {
      m.fail("type", "\"" + mnt.type +
                         "\" is not supported (proc, sysfs, tmpfs, devpts, mqueue, cgroup, cgroup2, bind)");
    } else if (!oci_path_ok(mnt.destination, &why)) {
      m.fail("destination", "\"" + mnt.destination + "\" " + why);
    } else if (mnt.destination == "/dev" && mnt.type != "tmpfs") {
      m.fail("type", "\"" + mnt.type + "\" on /dev: only tmpfs (the agent's /dev, remounted)");
    } else if (mnt.type == "bind" && !has_source) {
      m.fail("source", "missing (a bind needs a path inside the container)");
    } else if (mnt.type == "bind" && !oci_path_ok(mnt.source, &why)) {
      m.fail("source", "\"" + mnt.source + "\" " + why);
    } else if (!oci_mount_options(options, &mnt, &why)) {
      m.fail("options", why);
    } else {
      out->push_back(std::move(mnt));
      continue;
    }
    return args.take(m);
  }
  return true;
}

}  // namespace

bool confine_create_args(Args& args, Confinement* out) {
  bool present = false;
  int64_t oom = 0;
  if (!security_args(args, true, out, nullptr) || !rlimit_args(args, &out->rlimits, &present) ||
      !sysctl_args(args, &out->sysctls) ||
      !args.integer("oomScoreAdj", false, -1000, 1000, &oom, &out->has_oom_score_adj) ||
      !gid_args(args, &out->additional_gids, &present) || !mount_args(args, &out->mounts)) {
    return false;
  }
  out->oom_score_adj = static_cast<int>(oom);
  return true;
}

bool confine_exec_args(Args& args, ConfineOverrides* out) {
  Confinement& v = out->values;
  if (!security_args(args, false, &v, out) || !rlimit_args(args, &v.rlimits, &out->rlimits) ||
      !gid_args(args, &v.additional_gids, &out->gids)) {
    return false;
  }
  if (args.get("noNewPrivileges")) {  // the OCI process field, over security.noNewPrivileges
    if (!args.boolean("noNewPrivileges", &v.no_new_privs)) return false;
    out->no_new_privs = true;
  }
  return true;
}
