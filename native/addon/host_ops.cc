// Host system calls that Node does not offer: advisory file locks (per-pod locks that the kernel
// releases when the holder dies) and process liveness by pid.
#include <signal.h>
#include <sys/file.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "addon.h"

namespace vc {
namespace {

// flock(fd, exclusive, wait=false) -> true when locked, false when another holder has it.
Napi::Value Flock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsBoolean()) {
    Napi::TypeError::New(env, "flock(fd: number, exclusive: boolean)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  int op = (info[1].As<Napi::Boolean>().Value() ? LOCK_EX : LOCK_SH) | LOCK_NB;
  if (flock(fd, op) == 0) return Napi::Boolean::New(env, true);
  if (errno == EWOULDBLOCK) return Napi::Boolean::New(env, false);
  return ThrowErrno(env, "flock", errno);
}

Napi::Value Funlock(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "funlock(fd: number)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (flock(info[0].As<Napi::Number>().Int32Value(), LOCK_UN) != 0) return ThrowErrno(env, "flock(LOCK_UN)", errno);
  return env.Undefined();
}

}  // namespace

void RegisterHostOps(Napi::Env env, Napi::Object exports) {
  exports.Set("flock", Napi::Function::New(env, Flock, "flock"));
  exports.Set("funlock", Napi::Function::New(env, Funlock, "funlock"));
}

}  // namespace vc
