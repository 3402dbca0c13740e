// N-API glue only: each file registers its functions on the exports object.
#pragma once
#include <napi.h>

namespace vc {
void RegisterKvmProbe(Napi::Env env, Napi::Object exports);
void RegisterHostOps(Napi::Env env, Napi::Object exports);
void RegisterVmHandle(Napi::Env env, Napi::Object exports);
void RegisterCgroupOps(Napi::Env env, Napi::Object exports);
void RegisterNetnsOps(Napi::Env env, Napi::Object exports);
void RegisterFdPassing(Napi::Env env, Napi::Object exports);
}  // namespace vc
