#include "container_requests.h"

#include <signal.h>

#include "agent.h"
#include "args.h"
#include "confine_requests.h"
#include "container.h"

namespace {

constexpr double kMaxSafeInteger = 9007199254740991.0;  // 2^53 - 1: exact in a JSON number

// ^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$: also safe as a path component, cgroup and host name.
bool valid_name(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (size_t i = 0; i < s.size(); i++) {
    char ch = s[i];
    bool alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
    if (!alnum && (i == 0 || (ch != '_' && ch != '.' && ch != '-'))) return false;
  }
  return true;
}

bool name_arg(Args& args, const char* name, std::string* out) {
  if (!args.string(name, out, true)) return false;
  if (!valid_name(*out)) {
    return args.fail(name, "\"" + *out + "\" does not match ^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$");
  }
  return true;
}

// argv, env, cwd, tty, rows, cols: as for `exec`, but cwd must be absolute.
bool process_args(Args& args, ExecSpec* spec, bool* has_cwd) {
  int64_t rows = 0, cols = 0;
  bool has_rows = false, has_cols = false;
  if (!args.string_array("argv", true, &spec->argv) ||
      !args.string_array("env", false, &spec->env) || !check_env(args, spec->env) ||
      !args.string("cwd", &spec->cwd, false, has_cwd) || !args.boolean("tty", &spec->tty) ||
      !args.integer("rows", false, 0, 65535, &rows, &has_rows) ||
      !args.integer("cols", false, 0, 65535, &cols, &has_cols)) {
    return false;
  }
  if (spec->argv.empty()) return args.fail("argv", "must not be empty");
  if (spec->cwd.empty() || spec->cwd[0] != '/') {
    return args.fail("cwd", "\"" + spec->cwd + "\" is not an absolute path");
  }
  if (spec->tty && (has_rows || has_cols)) {
    spec->has_size = true;
    spec->rows = static_cast<unsigned short>(rows);
    spec->cols = static_cast<unsigned short>(cols);
  }
  return true;
}

bool image_args(bool test_mode, Args& args, CreateSpec* spec) {
  const json::Value* image = nullptr;
  if (!args.object("image", &image, true)) return false;
  Args img(*image, "image.");
  bool has_serial = false, has_path = false;
  if (!img.string("serial", &spec->serial, false, &has_serial) ||
      !img.string("path", &spec->image_path, false, &has_path) ||
      !img.string("fstype", &spec->fstype)) {
    return args.take(img);
  }
  if (has_path) {
    if (!test_mode) {
      img.fail("path", "only accepted in the --serve-unix test mode");
    } else if (has_serial) {
      img.fail("path", "give image.serial or image.path, not both");
    } else if (spec->image_path.empty() || spec->image_path[0] != '/') {
      img.fail("path", "\"" + spec->image_path + "\" is not an absolute path");
    } else if (spec->image_path.find_first_of(",:\\") != std::string::npos) {
      // The path goes into overlay's option string, where these separate options and layers.
      img.fail("path", "must not contain , : or \\");
    } else {
      return true;
    }
    return args.take(img);
  }
  if (!has_serial) {
    img.fail("serial", "missing");
    return args.take(img);
  }
  if (!valid_name(spec->serial)) {
    img.fail("serial", "\"" + spec->serial + "\" does not match ^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$");
    return args.take(img);
  }
  if (spec->fstype != "erofs") {
    img.fail("fstype", "\"" + spec->fstype + "\" is not supported (erofs)");
    return args.take(img);
  }
  return true;
}

bool limit_args(Args& args, Limits* limits) {
  const json::Value* obj = nullptr;
  if (!args.object("limits", &obj)) return false;
  if (!obj) return true;
  Args l(*obj, "limits.");
  if (!l.integer("memoryBytes", false, 1, kMaxSafeInteger, &limits->memory_bytes) ||
      !l.integer("pids", false, 1, 4194304, &limits->pids) ||
      !l.integer("cpuQuotaUs", false, 1000, kMaxSafeInteger, &limits->cpu_quota_us) ||
      !l.integer("cpuPeriodUs", false, 1000, 1000000, &limits->cpu_period_us)) {
    return args.take(l);
  }
  return true;
}

// joinNamespaces: {pid, ipc}, each optional: the container whose namespace the init joins.
bool join_args(Args& args, CreateSpec* spec) {
  const json::Value* obj = nullptr;
  if (!args.object("joinNamespaces", &obj)) return false;
  if (!obj) return true;
  Args j(*obj, "joinNamespaces.");
  for (const auto& m : obj->members()) {
    if (m.key != "pid" && m.key != "ipc") {
      j.fail(m.key.c_str(), "cannot be joined (pid, ipc)");
      return args.take(j);
    }
  }
  for (auto [key, out] : {std::pair{"pid", &spec->join_pid}, std::pair{"ipc", &spec->join_ipc}}) {
    bool has = false;
    if (!j.string(key, out, false, &has)) return args.take(j);
    if (!has) continue;
    if (!valid_name(*out)) {
      j.fail(key, "\"" + *out + "\" does not match ^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$");
      return args.take(j);
    }
    if (*out == spec->id) {
      j.fail(key, "\"" + *out + "\" is this container itself");
      return args.take(j);
    }
  }
  return true;
}

Reply bad(const Args& args) { return Reply::error("BAD_REQUEST", args.error()); }

Reply op_create(Agent& a, Connection& c, uint32_t request, const json::Value& req) {
  Args args(req);
  CreateSpec spec;
  if (!create_container_args(args, a.containers.test_mode, &spec)) return bad(args);
  return container_create(a, c, ReplyTo{c.id, request}, spec);
}

// The ops whose only argument is the container id.
template <Reply (*Fn)(Agent&, const std::string&)>
Reply by_id(Agent& a, Connection&, uint32_t, const json::Value& req) {
  Args args(req);
  std::string name;
  if (!name_arg(args, "id", &name)) return bad(args);
  return Fn(a, name);
}

Reply op_wait(Agent& a, Connection& c, uint32_t request, const json::Value& req) {
  Args args(req);
  std::string name;
  if (!name_arg(args, "id", &name)) return bad(args);
  return container_wait(a, ReplyTo{c.id, request}, name);
}

Reply op_signal(Agent& a, Connection&, uint32_t, const json::Value& req) {
  Args args(req);
  SignalContainerRequest r;
  if (!signal_container_args(args, &r)) return bad(args);
  return container_signal(a, r.id, r.signal, r.all);
}

Reply op_exec(Agent& a, Connection& c, uint32_t, const json::Value& req) {
  Args args(req);
  ExecContainerRequest r;
  if (!exec_container_args(args, &r)) return bad(args);
  return container_exec(a, c, r.id, r.spec, r.has_cwd, r.user, r.confine);
}

Reply op_list(Agent& a, Connection&, uint32_t, const json::Value&) { return container_list(a); }

}  // namespace

bool create_container_args(Args& args, bool test_mode, CreateSpec* spec) {
  bool has_cwd = false, has_hostname = false;
  if (!name_arg(args, "id", &spec->id) || !image_args(test_mode, args, spec) ||
      !process_args(args, &spec->exec, &has_cwd) || !args.string("user", &spec->user) ||
      !args.string("hostname", &spec->hostname, false, &has_hostname) ||
      !limit_args(args, &spec->limits) || !confine_create_args(args, &spec->confine) ||
      !binds_args(args, &spec->binds) || !join_args(args, spec)) {
    return false;
  }
  if (spec->user.empty()) return args.fail("user", "must not be empty");
  if (!has_hostname) spec->hostname = spec->id;
  if (spec->hostname.empty() || spec->hostname.size() > 64) {
    return args.fail("hostname", "\"" + spec->hostname + "\" must have 1 to 64 characters");
  }
  return true;
}

bool signal_container_args(Args& args, SignalContainerRequest* out) {
  int64_t sig = 0;
  if (!name_arg(args, "id", &out->id) || !args.integer("signal", true, 0, SIGRTMAX, &sig) ||
      !args.boolean("all", &out->all)) {
    return false;
  }
  out->signal = static_cast<int>(sig);
  return true;
}

bool exec_container_args(Args& args, ExecContainerRequest* out) {
  bool has_user = false;
  if (!name_arg(args, "id", &out->id) || !process_args(args, &out->spec, &out->has_cwd) ||
      !args.string("user", &out->user, false, &has_user) || !confine_exec_args(args, &out->confine)) {
    return false;
  }
  if (has_user && out->user.empty()) return args.fail("user", "must not be empty");
  return true;
}

bool container_name_arg(Args& args, const char* name, std::string* out) {
  return name_arg(args, name, out);
}

const std::vector<Op> kContainerOps = {
    {"create_container", op_create},
    {"start_container", by_id<container_start>},
    {"container_status", by_id<container_status>},
    {"wait_container", op_wait},
    {"signal_container", op_signal},
    {"exec_container", op_exec},
    {"delete_container", by_id<container_delete>},
    {"list_containers", op_list},
};
