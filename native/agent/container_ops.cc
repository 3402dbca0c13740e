#include "container_ops.h"

#include <cerrno>
#include <cstring>
#include <string>

#include "agent.h"
#include "args.h"
#include "cgroup_stats.h"
#include "container.h"
#include "container_requests.h"

Reply bad_request(const Args& args) { return Reply::error("BAD_REQUEST", args.error()); }

static Reply not_found(const std::string& id) {
  return Reply::error("NOT_FOUND", "no container \"" + id + "\"");
}

Reply container_failed(const Container& ctr, const std::string& why) {
  return Reply::error("CONTAINER_FAILED", "container \"" + ctr.id + "\": " + why);
}

// The container named by the `id` argument; nullptr with *fail set otherwise.
Container* container_arg(Agent& a, Args& args, Reply* fail) {
  std::string id;
  if (!container_name_arg(args, "id", &id)) {
    *fail = bad_request(args);
    return nullptr;
  }
  Container* ctr = container_find(a, id);
  if (!ctr) *fail = not_found(id);
  return ctr;
}

namespace {

constexpr double kMaxSafeInteger = 9007199254740991.0;  // 2^53 - 1: exact in a JSON number
// How long pause/resume wait for cgroup.events to agree; a task in uninterruptible sleep (a
// stuck I/O) can hold a freeze back.
constexpr int kFreezeWaitMs = 2000;

Reply illegal(const Container& ctr, const char* wanted) {
  return Reply::error("ILLEGAL_STATE", "container \"" + ctr.id + "\" is " +
                                           container_state_name(ctr.state) + ", not " + wanted);
}

Reply op_pause(Agent& a, Connection&, uint32_t, const json::Value& req) {
  Args args(req);
  Reply fail;
  Container* ctr = container_arg(a, args, &fail);
  if (!ctr) return fail;
  if (ctr->state != ContainerState::kRunning) return illegal(*ctr, "running");
  std::string err, ignored;
  if (!cgroup_freeze(ctr->cgroup, true, kFreezeWaitMs, &err)) {
    cgroup_freeze(ctr->cgroup, false, kFreezeWaitMs, &ignored);  // not half frozen
    return container_failed(*ctr, "pause: " + err);
  }
  ctr->state = ContainerState::kPaused;
  return Reply::ok();
}

Reply op_resume(Agent& a, Connection&, uint32_t, const json::Value& req) {
  Args args(req);
  Reply fail;
  Container* ctr = container_arg(a, args, &fail);
  if (!ctr) return fail;
  if (ctr->state != ContainerState::kPaused) return illegal(*ctr, "paused");
  std::string err;
  if (!cgroup_freeze(ctr->cgroup, false, kFreezeWaitMs, &err)) return container_failed(*ctr, "resume: " + err);
  ctr->state = ContainerState::kRunning;
  return Reply::ok();
}

Reply op_stats(Agent& a, Connection&, uint32_t, const json::Value& req) {
  Args args(req);
  Reply fail;
  Container* ctr = container_arg(a, args, &fail);
  if (!ctr) return fail;
  return Reply::ok(cgroup_stats(ctr->cgroup));
}

Reply op_pids(Agent& a, Connection&, uint32_t, const json::Value& req) {
  Args args(req);
  Reply fail;
  Container* ctr = container_arg(a, args, &fail);
  if (!ctr) return fail;
  std::vector<pid_t> pids;
  if (!cgroup_pids(ctr->cgroup, &pids)) {
    return container_failed(*ctr, "read " + ctr->cgroup + "/cgroup.procs: " + strerror(errno));
  }
  json::Value list = json::Value::array();
  for (pid_t p : pids) list.push(json::Value::number(p));
  json::Value r = json::Value::object();
  r.set("pids", std::move(list));
  return Reply::ok(std::move(r));
}

// A limit: an integer from lo to hi, or "max" (none) where `none_ok`.
bool limit_arg(Args& l, const char* name, double lo, double hi, bool none_ok, int64_t* out) {
  const json::Value* v = l.get(name);
  if (none_ok && v && v->is_string()) {
    if (v->as_string() == "max") {
      *out = kLimitNone;
      return true;
    }
    return l.fail(name, "expected an integer or \"max\", got " + Args::got(*v));
  }
  return l.integer(name, false, lo, hi, out);
}

Reply op_update(Agent& a, Connection&, uint32_t, const json::Value& req) {
  Args args(req);
  Reply fail;
  Container* ctr = container_arg(a, args, &fail);
  if (!ctr) return fail;
  Limits limits;
  if (!update_limits_args(args, &limits)) return bad_request(args);
  if (ctr->state == ContainerState::kStopped) return illegal(*ctr, "created, running or paused");
  std::string err;
  if (!cgroup_update(ctr->cgroup, limits, &err)) return container_failed(*ctr, err);
  return Reply::ok();
}

}  // namespace

bool update_limits_args(Args& args, Limits* limits) {
  const json::Value* obj = nullptr;
  if (!args.object("limits", &obj, true)) return false;
  Args l(*obj, "limits.");
  if (!limit_arg(l, "memoryBytes", 1, kMaxSafeInteger, true, &limits->memory_bytes) ||
      !limit_arg(l, "pids", 1, 4194304, true, &limits->pids) ||
      !limit_arg(l, "cpuQuotaUs", 1000, kMaxSafeInteger, true, &limits->cpu_quota_us) ||
      !limit_arg(l, "cpuPeriodUs", 1000, 1000000, false, &limits->cpu_period_us)) {
    return args.take(l);
  }
  return true;
}

const std::vector<Op> kContainerMoreOps = {
    {"pause_container", op_pause},   {"resume_container", op_resume},
    {"container_stats", op_stats},   {"update_container", op_update},
    {"container_pids", op_pids},
};
