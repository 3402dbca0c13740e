// N-API glue only: each file registers its functions on the exports object.
#pragma once
#include <napi.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace vc {

// Throws a JS Error "<what>: <strerror>" with `errno` set (and `code` for the errnos callers act
// on); returns undefined for the binding to return.
inline Napi::Value ThrowErrno(Napi::Env env, const std::string& what, int err) {
  Napi::Error e = Napi::Error::New(env, what + ": " + strerror(err));
  e.Set("errno", Napi::Number::New(env, err));
  const char* code = err == EAGAIN ? "EAGAIN" : err == ENOENT ? "ENOENT" : err == ECONNREFUSED ? "ECONNREFUSED" : nullptr;
  if (code) e.Set("code", Napi::String::New(env, code));
  e.ThrowAsJavaScriptException();
  return env.Undefined();
}

void RegisterKvmProbe(Napi::Env env, Napi::Object exports);
void RegisterHostOps(Napi::Env env, Napi::Object exports);
void RegisterVmHandle(Napi::Env env, Napi::Object exports);
void RegisterCgroupOps(Napi::Env env, Napi::Object exports);
void RegisterNetnsOps(Napi::Env env, Napi::Object exports);
void RegisterFdPassing(Napi::Env env, Napi::Object exports);
void RegisterPodNetOps(Napi::Env env, Napi::Object exports);
}  // namespace vc
