// Host cgroups for pods (native/host/cgroup.h): cgroupSupport, cgroupCreate, cgroupPids and
// cgroupRemove. Glue only; errors carry the message (path and errno text), `path` and `errno`.
#include <cmath>
#include <string>
#include <vector>

#include "addon.h"
#include "host/cgroup.h"

namespace vc {
namespace {

using host::CgroupError;

Napi::Error ToJsError(Napi::Env env, const CgroupError& e) {
  Napi::Error err = Napi::Error::New(env, e.message);
  if (!e.path.empty()) err.Set("path", Napi::String::New(env, e.path));
  if (e.err) err.Set("errno", Napi::Number::New(env, e.err));
  return err;
}

Napi::Value Throw(Napi::Env env, const CgroupError& e) {
  ToJsError(env, e).ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value TypeError(Napi::Env env, const char* usage) {
  Napi::TypeError::New(env, usage).ThrowAsJavaScriptException();
  return env.Undefined();
}

// paths: string[] -> out; false when it is not an array of strings.
bool PathList(const Napi::Value& v, std::vector<std::string>* out) {
  if (!v.IsArray()) return false;
  Napi::Array a = v.As<Napi::Array>();
  for (uint32_t i = 0; i < a.Length(); i++) {
    Napi::Value item = a.Get(i);
    if (!item.IsString()) return false;
    out->push_back(item.As<Napi::String>().Utf8Value());
  }
  return true;
}

Napi::Array StringArray(Napi::Env env, const std::vector<std::string>& items) {
  Napi::Array a = Napi::Array::New(env, items.size());
  for (uint32_t i = 0; i < items.size(); i++) a.Set(i, Napi::String::New(env, items[i]));
  return a;
}

// cgroupSupport() -> {version: 2, root} | {version: 1, roots: {cpu, memory, pids}, whyNotV2}
//                  | {version: null, reason}
Napi::Value CgroupSupport(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  host::CgroupSupport s = host::DetectCgroups();
  Napi::Object out = Napi::Object::New(env);
  if (s.version == 2) {
    out.Set("version", Napi::Number::New(env, 2));
    out.Set("root", Napi::String::New(env, s.v2_root));
  } else if (s.version == 1) {
    out.Set("version", Napi::Number::New(env, 1));
    Napi::Object roots = Napi::Object::New(env);
    roots.Set("cpu", Napi::String::New(env, s.v1_cpu));
    roots.Set("memory", Napi::String::New(env, s.v1_memory));
    roots.Set("pids", Napi::String::New(env, s.v1_pids));
    out.Set("roots", roots);
    out.Set("whyNotV2", Napi::String::New(env, s.why_not_v2));
  } else {
    out.Set("version", env.Null());
    out.Set("reason", Napi::String::New(env, s.reason));
  }
  return out;
}

// cgroupCreate(name, {cpus, memoryBytes, pidsMax}) -> {version, paths}
Napi::Value CgroupCreate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* usage = "cgroupCreate(name: string, {cpus: number, memoryBytes: number, pidsMax: number})";
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsObject()) return TypeError(env, usage);
  Napi::Object o = info[1].As<Napi::Object>();
  Napi::Value cpus = o.Get("cpus"), memory = o.Get("memoryBytes"), pids = o.Get("pidsMax");
  if (!cpus.IsNumber() || !memory.IsNumber() || !pids.IsNumber()) return TypeError(env, usage);
  const double mem = memory.As<Napi::Number>().DoubleValue(), pmax = pids.As<Napi::Number>().DoubleValue();
  // Range checks on the doubles before converting (the C++ side checks the converted values).
  if (!(mem >= 0) || mem > 9007199254740991.0 || std::floor(mem) != mem)
    return Throw(env, {"memoryBytes must be a whole number of bytes, not " + memory.ToString().Utf8Value(), "", 0});
  if (!(pmax >= 0) || pmax > 2147483647.0 || std::floor(pmax) != pmax)
    return Throw(env, {"pidsMax must be an integer in 1..2147483647, not " + pids.ToString().Utf8Value(), "", 0});
  host::CgroupLimits limits;
  limits.cpus = cpus.As<Napi::Number>().DoubleValue();
  limits.memory_bytes = uint64_t(mem);
  limits.pids_max = int64_t(pmax);
  int version = 0;
  std::vector<std::string> paths;
  CgroupError e;
  if (!host::CgroupCreate(info[0].As<Napi::String>().Utf8Value(), limits, &version, &paths, &e)) return Throw(env, e);
  Napi::Object out = Napi::Object::New(env);
  out.Set("version", Napi::Number::New(env, version));
  out.Set("paths", StringArray(env, paths));
  return out;
}

// cgroupPids(paths) -> number[]
Napi::Value CgroupPids(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<std::string> paths;
  if (info.Length() < 1 || !PathList(info[0], &paths)) return TypeError(env, "cgroupPids(paths: string[])");
  std::vector<pid_t> pids;
  CgroupError e;
  if (!host::CgroupPids(paths, &pids, &e)) return Throw(env, e);
  Napi::Array out = Napi::Array::New(env, pids.size());
  for (uint32_t i = 0; i < pids.size(); i++) out.Set(i, Napi::Number::New(env, pids[i]));
  return out;
}

// Killing and waiting for the group to empty can take a while: off the event loop.
class RemoveWorker : public Napi::AsyncWorker {
 public:
  RemoveWorker(Napi::Env env, std::vector<std::string> paths, int timeout_ms, Napi::Promise::Deferred deferred)
      : Napi::AsyncWorker(env), paths_(std::move(paths)), timeout_ms_(timeout_ms), deferred_(deferred) {}
  void Execute() override { ok_ = host::CgroupRemove(paths_, timeout_ms_, &error_); }
  void OnOK() override {
    if (ok_) deferred_.Resolve(Env().Undefined());
    else deferred_.Reject(ToJsError(Env(), error_).Value());
  }

 private:
  std::vector<std::string> paths_;
  int timeout_ms_;
  Napi::Promise::Deferred deferred_;
  bool ok_ = false;
  CgroupError error_;
};

// cgroupRemove(paths, timeoutMs = 5000) -> Promise<void>
Napi::Value CgroupRemove(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::vector<std::string> paths;
  if (info.Length() < 1 || !PathList(info[0], &paths) || (info.Length() > 1 && !info[1].IsUndefined() && !info[1].IsNumber()))
    return TypeError(env, "cgroupRemove(paths: string[], timeoutMs?: number)");
  int timeout_ms = 5000;
  if (info.Length() > 1 && info[1].IsNumber()) timeout_ms = info[1].As<Napi::Number>().Int32Value();
  auto deferred = Napi::Promise::Deferred::New(env);
  (new RemoveWorker(env, std::move(paths), timeout_ms, deferred))->Queue();
  return deferred.Promise();
}

}  // namespace

void RegisterCgroupOps(Napi::Env env, Napi::Object exports) {
  exports.Set("cgroupSupport", Napi::Function::New(env, CgroupSupport, "cgroupSupport"));
  exports.Set("cgroupCreate", Napi::Function::New(env, CgroupCreate, "cgroupCreate"));
  exports.Set("cgroupPids", Napi::Function::New(env, CgroupPids, "cgroupPids"));
  exports.Set("cgroupRemove", Napi::Function::New(env, CgroupRemove, "cgroupRemove"));
}

}  // namespace vc
