// libFuzzer entry point: the argument checks of the agent's requests (docs/agent-protocol.md,
// "Requests"), on a REQUEST payload a hostile host chose: create_container's (id, image, process,
// user, hostname, limits, confinement with its security, seccomp program, rlimits, sysctls and
// mounts, binds, joinNamespaces), exec_container's and signal_container's, configure_network's,
// put_file's (path, kind, base64 data), get_file's, list_bind's and remove_file's (path, offset,
// length, after; a bind index), the process ops' (exec, signal, resize), update_container's
// limits, forward's (port, host) and restored's (epoch, time, hostname, machineId, seed, macs). Only the checks run: nothing is created, started or connected.
// Also the parser of the cgroup files container_stats reads (cgroup_stats.h), which the guest
// kernel writes.
//
// Input: the payload's JSON text. If its "op" names one of those ops, that op's checks run;
// otherwise all of them (a field one op takes is often another's too). Checked, for every check: it accepts, or it rejects with a reason
// that names the field ("name: why", as BAD_REQUEST says it); what is accepted keeps its promises
// (a valid id, an absolute cwd, "K=V" env entries, absolute mount and bind destinations, a seccomp
// program of whole instructions, decoded data that encodes back to what was sent, numbers in their
// ranges and equal to what was sent, relative paths without "..", a socket address of the family
// and port asked for).
// An input that starts with '#' is cgroup files instead: byte 1 a mask of the first eight that
// are absent (cpu.stat, memory.current, memory.max, memory.swap.current, memory.stat,
// memory.events, pids.current, pids.max), then their texts and io.stat's separated by NUL (io.stat
// absent if fewer than nine). Checked: the reply has its documented shape, every number in it is a
// finite non-negative integer, and it serializes to JSON the agent's own parser reads back as is.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/args.h"
#include "agent/base64.h"
#include "agent/bind_ops.h"
#include "agent/binds.h"
#include "agent/cgroup.h"
#include "agent/cgroup_stats.h"
#include "agent/confine_requests.h"
#include "agent/container.h"
#include "agent/container_ops.h"
#include "agent/container_requests.h"
#include "agent/forward.h"
#include "agent/fuzz/fuzz_check.h"
#include "agent/network.h"
#include "agent/oci_mounts.h"
#include "agent/process_requests.h"
#include "agent/put_file.h"
#include "agent/restore_requests.h"
#include "common/json.h"

namespace {

using agent_fuzz::require;

// A rejection names its field: "field: why" (a field may be a key the host chose, so its text is
// not judged).
void CheckReason(const Args& args) {
  size_t colon = args.error().find(": ");
  require(colon != std::string::npos && colon > 0);
}

// What confine_root and confine_credentials rely on: capability sets capset(2) accepts, whole
// BPF instructions, one rlimit per resource with soft <= hard.
void CheckConfinement(const Confinement& c) {
  require(c.seccomp.size() % 8 == 0);
  if (c.has_caps) {
    require((c.caps.effective & ~c.caps.permitted) == 0 && (c.caps.inheritable & ~c.caps.bounding) == 0);
    require((c.caps.ambient & ~(c.caps.permitted & c.caps.inheritable)) == 0);
  }
  for (size_t i = 0; i < c.rlimits.size(); i++) {
    require(c.rlimits[i].soft <= c.rlimits[i].hard && c.rlimits[i].resource >= 0 && c.rlimits[i].resource < kRlimitCount);
    for (size_t j = 0; j < i; j++) require(c.rlimits[i].resource != c.rlimits[j].resource);
  }
  for (gid_t g : c.additional_gids) require(g != static_cast<gid_t>(-1));
}

void CheckCreate(const json::Value& req, bool test_mode) {
  Args args(req);
  CreateSpec spec;
  if (!create_container_args(args, test_mode, &spec)) return CheckReason(args);
  Args again(req);
  std::string id;
  require(container_name_arg(again, "id", &id) && id == spec.id);
  require(!spec.exec.argv.empty() && !spec.exec.cwd.empty() && spec.exec.cwd[0] == '/');
  require(!spec.user.empty() && !spec.hostname.empty() && spec.hostname.size() <= 64);
  require(test_mode || spec.image_path.empty());
  CheckConfinement(spec.confine);
  std::string why;
  for (const OciMount& m : spec.confine.mounts) require(oci_path_ok(m.destination, &why));
  for (const BindSpec& b : spec.binds) require(!b.destination.empty() && b.destination[0] == '/');
}

void CheckExecConfinement(const json::Value& req) {
  Args args(req);
  ConfineOverrides o;
  if (!confine_exec_args(args, &o)) return CheckReason(args);
  CheckConfinement(o.values);
}

void CheckNetwork(const json::Value& req) {
  Args args(req);
  if (!network_config_args(args)) CheckReason(args);
}

void CheckPut(const json::Value& req, BindKind kind) {
  Args args(req);
  PutRequest p;
  if (!put_file_args(args, kind, &p)) return CheckReason(args);
  std::vector<std::string> parts;
  std::string why;
  require(put_path_components(p.path, &parts, &why));
  for (const std::string& part : parts) require(part != ".." && !part.empty());
  const json::Value* data = req.find("data");
  if (data && data->is_string()) require(base64_encode(p.data) == data->as_string());
}

// What exec and exec_container accept: a program to run, "K=V" environment, a size only for a tty.
void CheckExecSpec(const ExecSpec& spec) {
  require(!spec.argv.empty() && !spec.cwd.empty());
  for (const std::string& a : spec.argv) require(a.find('\0') == std::string::npos);
  for (const std::string& e : spec.env) {
    require(e.find('\0') == std::string::npos && !e.empty() && e[0] != '=' && e.find('=') != std::string::npos);
  }
  require(spec.cwd.find('\0') == std::string::npos);
  require(spec.tty || !spec.has_size);
}

// An accepted integer argument is the number that was sent.
void CheckSent(const json::Value& req, const char* name, double value) {
  const json::Value* v = req.find(name);
  require(v && v->is_number() && v->as_number() == value);
}

void CheckExec(const json::Value& req) {
  Args args(req);
  ExecSpec spec;
  if (!exec_args(args, &spec)) return CheckReason(args);
  CheckExecSpec(spec);
}

void CheckSignal(const json::Value& req) {
  Args args(req);
  SignalRequest s;
  if (!signal_args(args, &s)) return CheckReason(args);
  require(s.process >= 1 && s.signal >= 0 && s.signal <= SIGRTMAX);
  CheckSent(req, "signal", s.signal);
  CheckSent(req, "process", s.process);
}

void CheckResize(const json::Value& req) {
  Args args(req);
  ResizeRequest r;
  if (!resize_args(args, &r)) return CheckReason(args);
  require(r.process >= 1);
  CheckSent(req, "rows", r.rows);
  CheckSent(req, "cols", r.cols);
  CheckSent(req, "process", r.process);
}

void CheckExecContainer(const json::Value& req) {
  CheckExecConfinement(req);
  Args args(req);
  ExecContainerRequest e;
  if (!exec_container_args(args, &e)) return CheckReason(args);
  Args again(req);
  std::string id;
  require(container_name_arg(again, "id", &id) && id == e.id);
  CheckExecSpec(e.spec);
  require(e.spec.cwd[0] == '/');
  require(req.find("user") == nullptr || req.find("user")->is_null() || !e.user.empty());
  CheckConfinement(e.confine.values);
}

void CheckSignalContainer(const json::Value& req) {
  Args args(req);
  SignalContainerRequest s;
  if (!signal_container_args(args, &s)) return CheckReason(args);
  require(!s.id.empty() && s.signal >= 0 && s.signal <= SIGRTMAX);
  CheckSent(req, "signal", s.signal);
}

// A limit update_container accepted: not given (-1), "max" where that means none, or in range.
void CheckLimit(int64_t v, int64_t lo, int64_t hi, bool none_ok) {
  require(v == -1 || (none_ok && v == kLimitNone) || (v >= lo && v <= hi));
}

void CheckUpdate(const json::Value& req) {
  Args args(req);
  Limits l;
  if (!update_limits_args(args, &l)) return CheckReason(args);
  constexpr int64_t kMaxSafe = (int64_t{1} << 53) - 1;
  CheckLimit(l.memory_bytes, 1, kMaxSafe, true);
  CheckLimit(l.pids, 1, 4194304, true);
  CheckLimit(l.cpu_quota_us, 1000, kMaxSafe, true);
  CheckLimit(l.cpu_period_us, 1000, 1000000, false);
}

void CheckForward(const json::Value& req) {
  Args args(req);
  ForwardTarget t;
  if (!forward_args(args, &t)) return CheckReason(args);
  const json::Value* port = req.find("port");
  require(port && port->is_number());
  uint16_t want = static_cast<uint16_t>(port->as_number());
  require(want >= 1 && want == port->as_number());
  char text[INET6_ADDRSTRLEN];
  if (t.addr.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&t.addr);
    require(t.len == sizeof *v4 && ntohs(v4->sin_port) == want);
    require(inet_ntop(AF_INET, &v4->sin_addr, text, sizeof text) != nullptr);
  } else {
    require(t.addr.ss_family == AF_INET6);
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&t.addr);
    require(t.len == sizeof *v6 && ntohs(v6->sin6_port) == want);
    require(inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof text) != nullptr);
  }
  std::string suffix = ":" + std::to_string(want);
  require(t.target.size() > suffix.size() && t.target.compare(t.target.size() - suffix.size(), suffix.size(), suffix) == 0);
}

// restored: an epoch that is not the cold boot's, a time that clock_settime takes, a host name,
// a machine id of 32 lowercase hex digits, exactly 32 seed bytes that encode back to what was
// sent, MACs in lower case with each `from` once; and the clock-jump check agrees with the order
// of the two times.
void CheckRestored(const json::Value& req) {
  Args args(req);
  RestoredRequest r;
  if (restored_args(args, &r)) {
    require(r.epoch >= 1 && r.time.tv_sec >= 1 && r.time.tv_nsec >= 0 && r.time.tv_nsec < 1000000000);
    CheckSent(req, "epoch", r.epoch);
    require(!r.hostname.empty() && r.hostname.size() <= 64);
    require(r.machine_id.size() == 32 && r.machine_id.find_first_not_of("0123456789abcdef") == std::string::npos);
    require(r.machine_id.find_first_not_of('0') != std::string::npos);
    require(r.seed.size() == kRestoreSeedBytes && base64_encode(r.seed) == req.find("seed")->as_string());
    require(r.macs.size() <= kRestoreMaxMacs);
    for (size_t i = 0; i < r.macs.size(); i++) {
      for (const std::string* m : {&r.macs[i].from, &r.macs[i].to}) {
        require(m->size() == 17 && m->find_first_not_of("0123456789abcdef:") == std::string::npos);
      }
      for (size_t j = 0; j < i; j++) require(r.macs[i].from != r.macs[j].from);
    }
    timespec guest = r.time;
    std::string why;
    require(!restore_clock_jumped(r.time, guest, &why) && why.compare(0, 6, "time: ") == 0);
    guest.tv_nsec = r.time.tv_nsec == 0 ? 999999999 : r.time.tv_nsec - 1;
    if (r.time.tv_nsec == 0) guest.tv_sec = r.time.tv_sec - 1;
    require(restore_clock_jumped(r.time, guest, &why));
  } else {
    CheckReason(args);
  }
}

// A read path get_file, list_bind and remove_file accepted: relative, no "..", at most 4096 bytes.
void CheckReadPath(const std::string& path, std::vector<std::string>* parts) {
  std::string why;
  require(path.size() <= 4096 && put_path_components(path, parts, &why));
  for (const std::string& part : *parts) require(part != ".." && part != "." && !part.empty());
}

void CheckBindReadsOf(const json::Value& req, BindKind kind) {
  for (size_t count : {size_t{0}, size_t{1}, size_t{4}}) {
    Args args(req);
    size_t n = 99;
    if (!bind_index_arg(args, "c", count, &n)) {
      CheckReason(args);
    } else {
      require(n < count);
      CheckSent(req, "bind", static_cast<double>(n));
    }
  }
  std::vector<std::string> parts;
  Args get(req);
  GetRequest g;
  if (get_file_args(get, kind, &g)) {
    CheckReadPath(g.path, &parts);
    require(g.offset >= 0 && g.offset <= (int64_t{1} << 53) - 1 && g.length >= 0 && g.length <= 512 * 1024);
    require(kind == BindKind::kDir || g.path.empty());
  } else {
    CheckReason(get);
  }
  Args list(req);
  ListRequest l;
  if (list_bind_args(list, 0, kind, &l)) {
    parts.clear();
    CheckReadPath(l.path, &parts);
    require(kind == BindKind::kDir);
  } else {
    CheckReason(list);
  }
  Args remove(req);
  std::string path;
  if (remove_file_args(remove, kind, &path)) {
    parts.clear();
    CheckReadPath(path, &parts);
    require(kind == BindKind::kDir && !parts.empty());
  } else {
    CheckReason(remove);
  }
}

void CheckBindReads(const json::Value& req) {
  CheckBindReadsOf(req, BindKind::kDir);
  CheckBindReadsOf(req, BindKind::kFile);
}

void CheckCreateBoth(const json::Value& req) {
  CheckCreate(req, false);
  CheckCreate(req, true);
}

void CheckPutBoth(const json::Value& req) {
  CheckPut(req, BindKind::kDir);
  CheckPut(req, BindKind::kFile);
}

// The checks of each op. An input whose "op" names one runs those; any other runs them all (a
// field one op takes is often another's too, and every check must hold on any input).
struct OpCheck {
  const char* op;
  void (*check)(const json::Value& req);
};
constexpr OpCheck kOpChecks[] = {
    {"create_container", CheckCreateBoth},
    {"exec_container", CheckExecContainer},
    {"signal_container", CheckSignalContainer},
    {"configure_network", CheckNetwork},
    {"put_file", CheckPutBoth},
    {"get_file", CheckBindReads},
    {"list_bind", CheckBindReads},
    {"remove_file", CheckBindReads},
    {"exec", CheckExec},
    {"signal", CheckSignal},
    {"resize", CheckResize},
    {"update_container", CheckUpdate},
    {"forward", CheckForward},
    {"restored", CheckRestored},
};

// Every leaf of the stats reply is null or a finite non-negative integer.
void CheckStatNumbers(const json::Value& v) {
  if (v.is_null()) return;
  if (v.is_number()) {
    double d = v.as_number();
    require(std::isfinite(d) && d >= 0 && d == std::floor(d));
    return;
  }
  require(v.is_object() || v.is_array());
  for (const json::Value& item : v.items()) CheckStatNumbers(item);
  for (const json::Member& m : v.members()) CheckStatNumbers(m.value);
}

void CheckHasKeys(const json::Value* v, std::initializer_list<const char*> keys) {
  require(v && v->is_object() && v->members().size() == keys.size());
  for (const char* k : keys) require(v->find(k) != nullptr);
}

void CheckCgroupStats(std::string_view input) {
  CgroupStatFiles f;
  std::optional<std::string>* files[] = {&f.cpu_stat, &f.memory_current, &f.memory_max,
                                         &f.memory_swap_current, &f.memory_stat, &f.memory_events,
                                         &f.pids_current, &f.pids_max, &f.io_stat};
  uint8_t absent = input.empty() ? 0 : static_cast<uint8_t>(input[0]);
  if (!input.empty()) input.remove_prefix(1);
  size_t i = 0;
  while (i < 9) {
    size_t nul = input.find('\0');
    std::string_view text = input.substr(0, nul);
    if (i == 8 || !(absent & (1u << i))) *files[i] = std::string(text);
    i++;
    if (nul == std::string_view::npos) break;
    input.remove_prefix(nul + 1);
  }
  json::Value r = cgroup_stats_parse(f);
  CheckHasKeys(&r, {"cpu", "memory", "pids", "io"});
  CheckHasKeys(r.find("cpu"), {"usageUsec", "userUsec", "systemUsec", "nrPeriods", "nrThrottled", "throttledUsec"});
  CheckHasKeys(r.find("memory"), {"usage", "limit", "swapUsage", "stat", "events"});
  CheckHasKeys(r.find("pids"), {"current", "limit"});
  require(r.find("memory")->find("stat")->is_object() && r.find("memory")->find("events")->is_object());
  const json::Value* io = r.find("io");
  require(io->is_array());
  for (const json::Value& dev : io->items()) CheckHasKeys(&dev, {"major", "minor", "rbytes", "wbytes", "rios", "wios"});
  CheckStatNumbers(r);
  // A single-number file reads as a number exactly when it starts with a digit ("max": null).
  const json::Value* usage = r.find("memory")->find("usage");
  bool digits = f.memory_current && !f.memory_current->empty() && (*f.memory_current)[0] >= '0' &&
                (*f.memory_current)[0] <= '9';
  require(usage->is_number() == digits);
  // The host reads the reply as JSON: it must be JSON, and mean what the agent built.
  std::string text = json::serialize(r);
  json::Value back;
  std::string error;
  require(json::parse(text, &back, &error));
  require(json::serialize(back) == text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  if (!text.empty() && text[0] == '#') {
    CheckCgroupStats(text.substr(1));
    return 0;
  }
  json::Value req;
  std::string error;
  if (!json::parse(text, &req, &error) || !req.is_object()) return 0;
  const json::Value* op = req.find("op");
  bool known = false;
  for (const OpCheck& c : kOpChecks) {
    if (op && op->is_string() && op->as_string() == c.op) {
      c.check(req);
      known = true;
    }
  }
  if (!known) {
    void (*last)(const json::Value&) = nullptr;
    for (const OpCheck& c : kOpChecks) {
      if (c.check != last) c.check(req);  // get_file, list_bind, remove_file share one
      last = c.check;
    }
  }
  return 0;
}
