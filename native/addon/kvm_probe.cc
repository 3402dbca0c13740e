// Tells whether /dev/kvm can run a stock Linux guest. PVM (kvm_pvm) exposes the same ioctl API
// but emulates guest kernel mode and cannot boot a stock kernel, so the API version alone is not
// enough: the loaded vendor module decides.
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "addon.h"
#include "kvm/kvm.h"

namespace vc {
namespace {

bool ModuleLoaded(const char* name) {
  struct stat st;
  std::string path = std::string("/sys/module/") + name;
  return stat(path.c_str(), &st) == 0;
}

Napi::Value KvmProbe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string device = info.Length() > 0 && info[0].IsString() ? info[0].As<Napi::String>().Utf8Value()
                                                               : vmm::kvm::DevicePath();
  Napi::Object result = Napi::Object::New(env);
  result.Set("device", device);

  std::string flavor = "none";
  if (ModuleLoaded("kvm_intel")) flavor = "kvm_intel";
  else if (ModuleLoaded("kvm_amd")) flavor = "kvm_amd";
  else if (ModuleLoaded("kvm_pvm")) flavor = "kvm_pvm";
  result.Set("flavor", flavor);

  int fd = open(device.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    result.Set("available", false);
    result.Set("apiVersion", env.Null());
    result.Set("stockGuests", false);
    std::string why = "cannot open " + device + ": " + strerror(err);
    // A missing node is a host kind of its own (seen: kvm_pvm loaded, no misc device): say which.
    if (err == ENOENT && flavor == "none") why += " (no KVM module is loaded)";
    else if (err == ENOENT) why += " (" + flavor + " is loaded but there is no device node)";
    result.Set("reason", why);
    return result;
  }
  int api = ioctl(fd, KVM_GET_API_VERSION, 0);
  close(fd);
  result.Set("available", api == KVM_API_VERSION);
  result.Set("apiVersion", api >= 0 ? Napi::Value(Napi::Number::New(env, api)) : env.Null());

  bool stock = api == KVM_API_VERSION && (flavor == "kvm_intel" || flavor == "kvm_amd");
  result.Set("stockGuests", stock);
  std::string reason;
  if (api != KVM_API_VERSION) {
    reason = device + " answered KVM_GET_API_VERSION with " + std::to_string(api) + ", expected " +
             std::to_string(KVM_API_VERSION);
  } else if (flavor == "kvm_pvm") {
    reason = device + " is PVM (kvm_pvm): guest kernel mode is emulated and a stock Linux guest cannot boot";
  } else if (!stock) {
    reason = device + " works but neither kvm_intel nor kvm_amd is loaded";
  }
  result.Set("reason", reason.empty() ? env.Null() : Napi::Value(Napi::String::New(env, reason)));
  return result;
}

}  // namespace

void RegisterKvmProbe(Napi::Env env, Napi::Object exports) {
  exports.Set("kvmProbe", Napi::Function::New(env, KvmProbe, "kvmProbe"));
}

}  // namespace vc
