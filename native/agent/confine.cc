#include "confine.h"

#include <grp.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "write_file.h"

namespace {

bool fail(char* step, size_t len, const char* what, const std::string& detail = "") {
  int err = errno;
  std::snprintf(step, len, "%s%s%s", what, detail.empty() ? "" : " ", detail.c_str());
  errno = err;
  return false;
}

bool install_seccomp(const std::string& program) {
  sock_fprog prog{};
  prog.len = static_cast<unsigned short>(program.size() / sizeof(sock_filter));
  // The bytes are sock_filter structs already (checked for size when the request came in).
  prog.filter = reinterpret_cast<sock_filter*>(const_cast<char*>(program.data()));
  return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0;
}

std::string cap_name(int cap) { return "capability " + std::to_string(cap); }

const char* const kRlimitNames[] = {"RLIMIT_CPU",    "RLIMIT_FSIZE",   "RLIMIT_DATA",
                                    "RLIMIT_STACK",  "RLIMIT_CORE",    "RLIMIT_RSS",
                                    "RLIMIT_NPROC",  "RLIMIT_NOFILE",  "RLIMIT_MEMLOCK",
                                    "RLIMIT_AS",     "RLIMIT_LOCKS",   "RLIMIT_SIGPENDING",
                                    "RLIMIT_MSGQUEUE", "RLIMIT_NICE",  "RLIMIT_RTPRIO",
                                    "RLIMIT_RTTIME"};

}  // namespace

void confine_override(const ConfineOverrides& o, Confinement* conf) {
  if (o.caps) {
    conf->has_caps = true;
    conf->caps = o.values.caps;
  }
  if (o.no_new_privs) conf->no_new_privs = o.values.no_new_privs;
  if (o.seccomp) conf->seccomp = o.values.seccomp;
  if (o.rlimits) conf->rlimits = o.values.rlimits;
  if (o.gids) conf->additional_gids = o.values.additional_gids;
}

bool confine_early(const Confinement& conf, char* step, size_t step_len) {
  if (conf.has_oom_score_adj &&
      !write_file("/proc/self/oom_score_adj", std::to_string(conf.oom_score_adj))) {
    return fail(step, step_len, "oom_score_adj", std::to_string(conf.oom_score_adj));
  }
  return true;
}

bool confine_root(const Confinement& conf, char* step, size_t step_len) {
  if (!oci_mounts_apply(conf.mounts, step, step_len)) return false;
  for (const auto& [name, value] : conf.sysctls) {
    std::string path = "/proc/sys/" + name;
    for (size_t i = 10; i < path.size(); i++) {
      if (path[i] == '.') path[i] = '/';
    }
    if (!write_file(path, value)) return fail(step, step_len, "sysctl", name + " = " + value);
  }
  return oci_mask_paths(conf.masked_paths, step, step_len) &&
         oci_readonly_paths(conf.readonly_paths, step, step_len);
}

bool confine_credentials(const Confinement& conf, const Credentials& cred, char* step,
                         size_t step_len) {
  // Raising a hard limit needs CAP_SYS_RESOURCE: before the capabilities go.
  for (const Rlimit& r : conf.rlimits) {  // resource < 16: checked with the request
    rlimit lim{r.soft, r.hard};
    if (setrlimit(static_cast<__rlimit_resource>(r.resource), &lim) != 0) {
      return fail(step, step_len, "setrlimit", kRlimitNames[r.resource]);
    }
  }
  if (conf.has_caps) {
    // Dropping from the bounding set needs CAP_SETPCAP; EINVAL past the kernel's last capability.
    for (int cap = 0; cap < 64; cap++) {
      if (conf.caps.bounding & (1ULL << cap)) continue;
      if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0) continue;
      if (errno == EINVAL) break;
      return fail(step, step_len, "drop from the bounding set", cap_name(cap));
    }
    // Without it, setuid away from 0 would clear the permitted set capset() picks from below.
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) return fail(step, step_len, "PR_SET_KEEPCAPS");
  }
  // Without no_new_privs only a process with CAP_SYS_ADMIN may install a filter, so it goes in
  // now; the calls below (setgroups, setgid, setuid, capset, prctl, chdir, execve) must pass it.
  if (!conf.seccomp.empty() && !conf.no_new_privs && !install_seccomp(conf.seccomp)) {
    return fail(step, step_len, "install the seccomp filter");
  }
  std::vector<gid_t> groups = cred.groups;
  for (gid_t g : conf.additional_gids) {
    bool seen = false;
    for (gid_t have : groups) seen = seen || have == g;
    if (!seen) groups.push_back(g);
  }
  // Groups before the uid: once it is dropped, changing groups is no longer allowed.
  if (setgroups(groups.size(), groups.data()) != 0) return fail(step, step_len, "setgroups");
  if (setgid(cred.gid) != 0) return fail(step, step_len, "setgid");
  if (setuid(cred.uid) != 0) return fail(step, step_len, "setuid");
  if (!conf.has_caps) return true;

  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  for (int i = 0; i < 2; i++) {
    data[i].effective = static_cast<uint32_t>(conf.caps.effective >> (32 * i));
    data[i].permitted = static_cast<uint32_t>(conf.caps.permitted >> (32 * i));
    data[i].inheritable = static_cast<uint32_t>(conf.caps.inheritable >> (32 * i));
  }
  if (syscall(SYS_capset, &header, data) != 0) return fail(step, step_len, "capset");
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) {
    return fail(step, step_len, "clear the ambient set");
  }
  for (int cap = 0; cap < 64; cap++) {
    if (!(conf.caps.ambient & (1ULL << cap))) continue;
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) != 0) {
      return fail(step, step_len, "raise the ambient", cap_name(cap));
    }
  }
  return true;
}

bool confine_last(const Confinement& conf, char* step, size_t step_len) {
  if (!conf.no_new_privs) return true;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return fail(step, step_len, "PR_SET_NO_NEW_PRIVS");
  if (!conf.seccomp.empty() && !install_seccomp(conf.seccomp)) {
    return fail(step, step_len, "install the seccomp filter");
  }
  return true;
}
