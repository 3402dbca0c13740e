#include "container.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>

#include "agent.h"
#include "blockdev.h"
#include "log.h"
#include "network.h"

namespace {

constexpr int kImageWaitMs = 10000;
constexpr int kImageScanMs = 50;
// delete_container waits this long for the container's processes to be gone.
constexpr int kStopWaitMs = 5000;

const char* state_name(ContainerState s) {
  switch (s) {
    case ContainerState::kCreated: return "created";
    case ContainerState::kRunning: return "running";
    case ContainerState::kPaused: return "paused";
    case ContainerState::kStopped: return "stopped";
  }
  return "unknown";
}

Container* find(Agent& a, const std::string& id) {
  auto it = a.containers.all.find(id);
  return it == a.containers.all.end() ? nullptr : it->second.get();
}

Reply not_found(const std::string& id) { return Reply::error("NOT_FOUND", "no container \"" + id + "\""); }

// The container `id` in state `want`; else nullptr and *fail says why.
Container* find_in_state(Agent& a, const std::string& id, ContainerState want, Reply* fail) {
  Container* ctr = find(a, id);
  if (!ctr) {
    *fail = not_found(id);
  } else if (ctr->state != want) {
    *fail = Reply::error("ILLEGAL_STATE", "container \"" + ctr->id + "\" is " +
                                              state_name(ctr->state) + ", not " + state_name(want));
    return nullptr;
  }
  return ctr;
}

json::Value exit_json(const Container& ctr) {
  json::Value v = ctr.exited ? exit_status_json(ctr.status) : json::Value::object();
  if (!ctr.exited) {
    v.set("exitCode", json::Value());
    v.set("signal", json::Value());
  }
  v.set("oomKilled", json::Value::boolean(ctr.oom_killed));
  return v;
}

// The environment of a container process: PATH, HOSTNAME, HOME (and TERM for a terminal) unless
// the given entries set them.
std::vector<std::string> container_env(const std::vector<std::string>& given,
                                       const std::string& hostname, const Credentials& cred,
                                       bool tty) {
  std::vector<std::string> env = build_env(kContainerPath, given);
  if (!env_has(env, "HOSTNAME")) env.push_back("HOSTNAME=" + hostname);
  if (!env_has(env, "HOME")) env.push_back("HOME=" + (cred.home.empty() ? "/" : cred.home));
  if (tty && !env_has(env, "TERM")) env.push_back("TERM=xterm");
  return env;
}

// Steps to take back, newest first, unless the whole sequence succeeded.
class Undo {
 public:
  ~Undo() {
    for (auto it = steps_.rbegin(); it != steps_.rend(); ++it) (*it)();
  }
  void push(std::function<void()> f) { steps_.push_back(std::move(f)); }
  void commit() { steps_.clear(); }

 private:
  std::vector<std::function<void()>> steps_;
};

// The init of the running container `id` whose `ns` namespace a new init joins (0 for id ""); else
// false and *fail names the argument.
bool joined_init(Agent& a, const char* ns, const std::string& id, pid_t* pid, Reply* fail) {
  if (id.empty()) return true;
  Container* ctr = find(a, id);
  std::string field = std::string("joinNamespaces.") + ns;
  if (!ctr) {
    *fail = Reply::error("NOT_FOUND", field + ": no container \"" + id + "\"");
    return false;
  }
  // A paused container's namespaces can be joined (its processes are frozen, not gone).
  if (ctr->state != ContainerState::kRunning && ctr->state != ContainerState::kPaused) {
    *fail = Reply::error("ILLEGAL_STATE", field + ": container \"" + id + "\" is " +
                                              state_name(ctr->state) + ", not running");
    return false;
  }
  *pid = ctr->pid;
  return true;
}

Reply finish_create(Agent& a, Connection& c, const CreateSpec& spec, const std::string& dev) {
  Containers& cs = a.containers;
  auto failed = [&](const std::string& why) {
    return Reply::error("CONTAINER_FAILED", "container \"" + spec.id + "\": " + why);
  };
  Undo undo;
  auto ctr = std::make_unique<Container>();
  ctr->id = spec.id;
  Reply refused;
  if (!joined_init(a, "pid", spec.join_pid, &ctr->plan.join_pid_of, &refused) ||
      !joined_init(a, "ipc", spec.join_ipc, &ctr->plan.join_ipc_of, &refused)) {
    return refused;
  }
  std::string lower = spec.image_path;
  if (!spec.serial.empty()) {
    std::string err;
    if (!image_acquire(cs.images, cs.run_dir, spec.serial, dev, spec.fstype, &lower, &err)) {
      return failed("image: " + err);
    }
    ctr->image = spec.serial;
    undo.push([&cs, serial = spec.serial]() { image_release(cs.images, serial); });
  }
  ctr->dir = cs.run_dir + "/containers/" + spec.id;
  std::string err;
  if (!layer_create(ctr->dir, lower, &err)) return failed("writable layer: " + err);
  undo.push([dir = ctr->dir]() {
    std::string e;
    if (!layer_remove(dir, &e)) logf("undo: %s", e.c_str());
  });
  InitPlan& plan = ctr->plan;
  plan.rootfs = ctr->dir + "/rootfs";
  if (!binds_stage(ctr->dir, spec.binds, &err)) return failed(err);
  plan.dir = ctr->dir;
  plan.binds = spec.binds;
  ctr->binds = spec.binds;

  int root_fd = open(plan.rootfs.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0) return failed("open " + plan.rootfs + ": " + strerror(errno));
  std::string why;
  bool user_ok = resolve_user(root_fd, spec.user, &plan.cred, &why);
  close(root_fd);
  if (!user_ok) {
    return Reply::error("BAD_REQUEST", "user: \"" + spec.user + "\": " + why);
  }

  if (!cgroup_create(cs.cgroup_root, spec.id, spec.limits, &ctr->cgroup, &err)) return failed(err);
  undo.push([path = ctr->cgroup]() { cgroup_remove(path); });
  ctr->cgroup_fd = cgroup_open(ctr->cgroup);
  if (ctr->cgroup_fd < 0) return failed("cgroup: open " + ctr->cgroup + ": " + strerror(errno));
  undo.push([fd = ctr->cgroup_fd]() { close(fd); });

  plan.exec = spec.exec;
  plan.hostname = spec.hostname;
  plan.exec.env = container_env(spec.exec.env, spec.hostname, plan.cred, spec.exec.tty);
  plan.cgroup_fd = ctr->cgroup_fd;
  plan.files = network_container_files(a);
  plan.confine = spec.confine;
  ctr->env = spec.exec.env;
  SpawnedChild child;
  if (!container_init_spawn(plan, &child, &ctr->init, &err)) return failed(err);

  undo.commit();
  Process* p = process_adopt(a, c, child);
  ctr->pid = child.pid;
  ctr->process = p->id;
  json::Value r = json::Value::object();
  r.set("process", json::Value::number(p->id));
  r.set("pid", json::Value::number(child.pid));
  cs.all[spec.id] = std::move(ctr);
  return Reply::ok(std::move(r));
}

// A reaped child: recorded with its process and, if it is a container's init, its container
// (stopped).
void record_exit(Agent& a, pid_t pid, int status) {
  for (auto& [id, ctr] : a.containers.all) {
    if (ctr->pid != pid || ctr->exited) continue;
    ctr->exited = true;
    ctr->status = status;
    ctr->state = ContainerState::kStopped;
    ctr->oom_killed = cgroup_oom_killed(ctr->cgroup);
    // An init that is PID 1 of its namespace takes the container's other processes with it; one
    // in a joined pid namespace does not, so the container's cgroup does.
    if (ctr->plan.join_pid_of != 0) cgroup_kill(ctr->cgroup);
    close_fd(&ctr->init.start_fd);
    close_fd(&ctr->init.report_fd);
  }
  process_record_exit(a, pid, status);
}

// Waits (bounded) until the init has been reaped and nothing is left in the cgroup, reaping as
// the event loop would meanwhile.
void wait_until_empty(Agent& a, Container& ctr) {
  int64_t deadline = monotonic_ms() + kStopWaitMs;
  for (;;) {
    children_reap(a);
    if (ctr.exited && !cgroup_populated(ctr.cgroup)) return;
    if (monotonic_ms() >= deadline) {
      logf("container %s: processes left after %d ms", ctr.id.c_str(), kStopWaitMs);
      return;
    }
    usleep(2000);
  }
}

// Kills whatever runs, then removes the layer, the cgroup and the image reference. Returns what
// failed ("" when all went well).
std::string tear_down(Agent& a, Container& ctr) {
  if (!ctr.exited) kill(ctr.pid, SIGKILL);  // a created init blocks before execve
  close_fd(&ctr.init.start_fd);
  close_fd(&ctr.init.report_fd);
  cgroup_kill(ctr.cgroup);
  wait_until_empty(a, ctr);
  std::string problems, err;
  if (!layer_remove(ctr.dir, &err)) problems += err + "; ";
  close_fd(&ctr.cgroup_fd);
  if (!cgroup_remove(ctr.cgroup)) problems += "rmdir " + ctr.cgroup + ": " + strerror(errno) + "; ";
  if (!ctr.image.empty()) image_release(a.containers.images, ctr.image);
  if (!problems.empty()) problems.resize(problems.size() - 2);
  return problems;
}

bool exit_reported(Agent& a, const Container& ctr) {
  // A wait_container answer should not overtake the init's EXIT on the same connection.
  Process* p = process_find(a, ctr.process);
  return !p || (p->exit_queued && (p->pending.empty() || !conn_find(a, p->conn)));
}

}  // namespace

Reply container_create(Agent& a, Connection& c, const ReplyTo& to, const CreateSpec& spec) {
  Containers& cs = a.containers;
  bool pending = false;
  for (const PendingCreate& p : cs.pending) pending = pending || p.spec.id == spec.id;
  if (pending || find(a, spec.id)) {
    return Reply::error("CONTAINER_EXISTS", "container \"" + spec.id + "\" exists");
  }
  if (cs.cgroup_root.empty()) {
    return Reply::error("CONTAINER_FAILED",
                        "container \"" + spec.id +
                            "\": cgroup: no cgroup2 hierarchy (test mode: start the agent with "
                            "--cgroup-root DIR)");
  }
  if (!spec.image_path.empty()) return finish_create(a, c, spec, "");
  std::string dev = blockdev_find_by_serial(spec.serial);
  if (!dev.empty()) return finish_create(a, c, spec, dev);
  // Hot-plugged just now, probably: look again from the loop until the deadline.
  cs.pending.push_back(PendingCreate{to, spec, monotonic_ms() + kImageWaitMs});
  cs.next_scan_ms = monotonic_ms() + kImageScanMs;
  return Reply::deferred();
}

Reply container_start(Agent& a, const std::string& id) {
  Reply fail;
  Container* ctr = find_in_state(a, id, ContainerState::kCreated, &fail);
  if (!ctr) return fail;
  std::string message;
  StartResult r = container_init_start(&ctr->init, ctr->plan, &message);
  if (r == StartResult::kStarted) {
    ctr->state = ContainerState::kRunning;
    return Reply::ok();
  }
  if (r == StartResult::kNoAnswer) kill(ctr->pid, SIGKILL);
  // The init exits 127 (or was killed): collect it now so the container reads as stopped.
  int status = 0;
  pid_t pid;
  while ((pid = waitpid(ctr->pid, &status, 0)) < 0 && errno == EINTR) {
  }
  if (pid == ctr->pid) record_exit(a, pid, status);
  return Reply::error(r == StartResult::kExecFailed ? "EXEC_FAILED" : "INTERNAL", message);
}

Reply container_status(Agent& a, const std::string& id) {
  Container* ctr = find(a, id);
  if (!ctr) return not_found(id);
  json::Value v = exit_json(*ctr);
  v.set("id", json::Value::string(ctr->id));
  v.set("state", json::Value::string(state_name(ctr->state)));
  v.set("pid", json::Value::number(ctr->pid));
  v.set("process", json::Value::number(ctr->process));
  return Reply::ok(std::move(v));
}

Reply container_wait(Agent& a, const ReplyTo& to, const std::string& id) {
  if (!find(a, id)) return not_found(id);
  a.containers.waiters.push_back(ContainerWaiter{to, id});  // see containers_service
  return Reply::deferred();
}

Reply container_signal(Agent& a, const std::string& id, int sig, bool all) {
  Reply fail;
  Container* ctr = find(a, id);
  // A paused container takes signals too: SIGKILL ends it frozen, others wait for the thaw.
  bool paused = ctr && ctr->state == ContainerState::kPaused;
  if (!paused) ctr = find_in_state(a, id, ContainerState::kRunning, &fail);
  if (!ctr) return fail;
  if (all) {
    if (sig == SIGKILL) {
      cgroup_kill(ctr->cgroup);
    } else if (!cgroup_signal(ctr->cgroup, sig)) {
      return Reply::error("INTERNAL", ctr->cgroup + "/cgroup.procs: " + strerror(errno));
    }
  } else if (kill(ctr->pid, sig) != 0 && errno != ESRCH) {
    return Reply::error("INTERNAL", std::string("kill: ") + strerror(errno));
  }
  return Reply::ok();
}

Reply container_exec(Agent& a, Connection& c, const std::string& id, const ExecSpec& exec,
                     bool has_cwd, const std::string& user, const ConfineOverrides& confine) {
  Reply fail;
  Container* ctr = find_in_state(a, id, ContainerState::kRunning, &fail);
  if (!ctr) return fail;
  ExecPlan plan;
  plan.init_pid = ctr->pid;
  plan.cgroup_fd = ctr->cgroup_fd;
  plan.cred = ctr->plan.cred;
  plan.confine = ctr->plan.confine;
  confine_override(confine, &plan.confine);
  if (!user.empty()) {
    // The container's current files: its root as its init sees it.
    std::string root = "/proc/" + std::to_string(ctr->pid) + "/root";
    int root_fd = open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0) return Reply::error("INTERNAL", "open " + root + ": " + strerror(errno));
    std::string why;
    bool ok = resolve_user(root_fd, user, &plan.cred, &why);
    close(root_fd);
    if (!ok) return Reply::error("BAD_REQUEST", "user: \"" + user + "\": " + why);
  }
  plan.exec = exec;
  if (!has_cwd) plan.exec.cwd = ctr->plan.exec.cwd;
  std::vector<std::string> env = ctr->env;
  env.insert(env.end(), exec.env.begin(), exec.env.end());  // later entries win
  plan.exec.env = container_env(env, ctr->plan.hostname, plan.cred, exec.tty);

  SpawnedChild child;
  std::string code, message;
  if (!container_exec_spawn(plan, &child, &code, &message)) return Reply::error(code, message);
  Process* p = process_adopt(a, c, child);
  json::Value r = json::Value::object();
  r.set("process", json::Value::number(p->id));
  r.set("pid", json::Value::number(child.pid));
  return Reply::ok(std::move(r));
}

Reply container_delete(Agent& a, const std::string& id) {
  Container* ctr = find(a, id);
  if (!ctr) return not_found(id);
  if (ctr->state == ContainerState::kRunning || ctr->state == ContainerState::kPaused) {
    return Reply::error("CONTAINER_RUNNING", "container \"" + id + "\" is " +
                                                 state_name(ctr->state) + "; stop it first");
  }
  std::string problems = tear_down(a, *ctr);
  // Waiters learn how it ended (a created container: killed by the delete).
  Containers& cs = a.containers;
  for (size_t i = 0; i < cs.waiters.size();) {
    if (cs.waiters[i].id != id) {
      i++;
      continue;
    }
    reply_send(a, cs.waiters[i].reply, Reply::ok(exit_json(*ctr)));
    cs.waiters.erase(cs.waiters.begin() + static_cast<long>(i));
  }
  cs.all.erase(id);
  if (!problems.empty()) {
    return Reply::error("INTERNAL", "container \"" + id + "\" deleted, but: " + problems);
  }
  return Reply::ok();
}

Container* container_find(Agent& a, const std::string& id) { return find(a, id); }

const char* container_state_name(ContainerState s) { return state_name(s); }

Reply container_list(Agent& a) {
  json::Value list = json::Value::array();
  for (const auto& [id, ctr] : a.containers.all) {
    json::Value v = json::Value::object();
    v.set("id", json::Value::string(id));
    v.set("state", json::Value::string(state_name(ctr->state)));
    v.set("pid", json::Value::number(ctr->pid));
    list.push(std::move(v));
  }
  json::Value r = json::Value::object();
  r.set("containers", std::move(list));
  return Reply::ok(std::move(r));
}

void containers_service(Agent& a) {
  Containers& cs = a.containers;
  int64_t now = monotonic_ms();
  if (!cs.pending.empty() && now >= cs.next_scan_ms) {
    std::vector<PendingCreate> pending;
    pending.swap(cs.pending);
    for (PendingCreate& p : pending) {
      Connection* c = conn_find(a, p.reply.conn);
      if (!c) continue;  // nobody to answer: abandon
      std::string dev = blockdev_find_by_serial(p.spec.serial);
      if (!dev.empty()) {
        reply_send(*c, p.reply.request, finish_create(a, *c, p.spec, dev));
      } else if (now >= p.deadline_ms) {
        reply_send(*c, p.reply.request,
                   Reply::error("IMAGE_NOT_FOUND", "no disk with serial \"" + p.spec.serial +
                                                       "\" appeared within " +
                                                       std::to_string(kImageWaitMs / 1000) + " s"));
      } else {
        cs.pending.push_back(std::move(p));
      }
    }
    cs.next_scan_ms = now + kImageScanMs;
  }
  for (size_t i = 0; i < cs.waiters.size();) {
    const ContainerWaiter w = cs.waiters[i];
    Container* ctr = find(a, w.id);
    Connection* c = conn_find(a, w.reply.conn);
    if (c && ctr && !(ctr->exited && exit_reported(a, *ctr))) {
      i++;
      continue;
    }
    cs.waiters.erase(cs.waiters.begin() + static_cast<long>(i));
    if (c && ctr) reply_send(*c, w.reply.request, Reply::ok(exit_json(*ctr)));
    if (c && !ctr) {
      reply_send(*c, w.reply.request,
                 Reply::error("NOT_FOUND", "container \"" + w.id + "\" was deleted"));
    }
  }
}

int containers_poll_timeout(const Agent& a) {
  const Containers& cs = a.containers;
  if (cs.pending.empty()) return -1;
  int64_t left = cs.next_scan_ms - monotonic_ms();
  return left < 0 ? 0 : static_cast<int>(left);
}

void children_reap(Agent& a) {
  for (;;) {
    int status = 0;
    pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid < 0 && errno == EINTR) continue;
    if (pid <= 0) return;
    record_exit(a, pid, status);
  }
}

void containers_cleanup_all(Agent& a) {
  Containers& cs = a.containers;
  for (auto& [id, ctr] : cs.all) {
    std::string problems = tear_down(a, *ctr);
    if (!problems.empty()) logf("container %s: %s", id.c_str(), problems.c_str());
  }
  cs.all.clear();
  if (!cs.cgroup_root.empty()) cgroup_remove_root(cs.cgroup_root, cs.cgroup_root_created);
}
