#include "addon.h"

namespace {
Napi::Object Init(Napi::Env env, Napi::Object exports) {
  vc::RegisterKvmProbe(env, exports);
  vc::RegisterHostOps(env, exports);
  vc::RegisterVmHandle(env, exports);
  vc::RegisterCgroupOps(env, exports);
  vc::RegisterNetnsOps(env, exports);
  vc::RegisterFdPassing(env, exports);
  vc::RegisterPodNetOps(env, exports);
  exports.Set("addonVersion", Napi::Number::New(env, 1));
  return exports;
}
}  // namespace

NODE_API_MODULE(vc_addon, Init)
