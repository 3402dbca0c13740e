// The built-in VMM in-process: a `Vm` object per VM, for services that want sandboxes without a
// process per VM. Glue only: config parsing, the VM, its threads and devices are the VMM core's
// (native/vmm/vm/vm.h), the same code the vc-vmm executable runs.
#include <memory>
#include <string>

#include "addon.h"
#include "vm/config.h"
#include "vm/vm.h"

namespace vc {
namespace {

using vmm::kvm::Vm;

class VmHandle : public Napi::ObjectWrap<VmHandle> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Vm", {
      InstanceMethod<&VmHandle::Start>("start"),
      InstanceMethod<&VmHandle::Pause>("pause"),
      InstanceMethod<&VmHandle::Resume>("resume"),
      InstanceMethod<&VmHandle::Stop>("stop"),
      InstanceMethod<&VmHandle::Status>("status"),
      InstanceMethod<&VmHandle::AttachBlock>("attachBlock"),
      InstanceMethod<&VmHandle::Wait>("wait"),
    });
  }

  // new Vm(configJson): the same JSON as `vc-vmm run --config` (docs/vmm.md). Builds the VM and
  // loads the kernel; nothing runs until start().
  explicit VmHandle(const Napi::CallbackInfo& info) : Napi::ObjectWrap<VmHandle>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsString()) {
      Napi::TypeError::New(env, "new Vm(configJson: string)").ThrowAsJavaScriptException();
      return;
    }
    auto config = vmm::kvm::ParseVmConfig(info[0].As<Napi::String>().Utf8Value());
    if (!config.ok()) {
      Napi::Error::New(env, config.error()).ThrowAsJavaScriptException();
      return;
    }
    auto vm = Vm::Create(config.value());
    if (!vm.ok()) {
      Napi::Error::New(env, vm.error()).ThrowAsJavaScriptException();
      return;
    }
    vm_ = std::move(vm.value());
  }

  ~VmHandle() override {
    if (vm_) {
      vm_->Stop(vmm::kvm::StopReason::kRequested, "the Vm handle was garbage-collected");
      vm_->Wait();
    }
  }

 private:
  bool Usable(Napi::Env env) {
    if (vm_) return true;
    Napi::Error::New(env, "this Vm was not created").ThrowAsJavaScriptException();
    return false;
  }

  Napi::Value Check(Napi::Env env, const vc::Status& status) {
    if (!status.ok()) Napi::Error::New(env, status.error()).ThrowAsJavaScriptException();
    return env.Undefined();
  }

  Napi::Value Start(const Napi::CallbackInfo& info) {
    return Usable(info.Env()) ? Check(info.Env(), vm_->Start()) : info.Env().Undefined();
  }
  Napi::Value Pause(const Napi::CallbackInfo& info) {
    return Usable(info.Env()) ? Check(info.Env(), vm_->Pause()) : info.Env().Undefined();
  }
  Napi::Value Resume(const Napi::CallbackInfo& info) {
    return Usable(info.Env()) ? Check(info.Env(), vm_->Resume()) : info.Env().Undefined();
  }
  Napi::Value Stop(const Napi::CallbackInfo& info) {
    if (Usable(info.Env())) vm_->Stop(vmm::kvm::StopReason::kRequested, "stop() from the addon");
    return info.Env().Undefined();
  }

  // status(): the control socket's status object, as a JSON string (the TS layer parses it).
  Napi::Value Status(const Napi::CallbackInfo& info) {
    if (!Usable(info.Env())) return info.Env().Undefined();
    return Napi::String::New(info.Env(), json::serialize(vm_->StatusJson()));
  }

  // attachBlock(path, readOnly, serial) -> slot index
  Napi::Value AttachBlock(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Usable(env)) return env.Undefined();
    if (info.Length() < 3 || !info[0].IsString() || !info[1].IsBoolean() || !info[2].IsString()) {
      Napi::TypeError::New(env, "attachBlock(path: string, readOnly: boolean, serial: string)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    auto slot = vm_->AttachBlock(info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::Boolean>().Value(),
                                 info[2].As<Napi::String>().Utf8Value());
    if (!slot.ok()) {
      Napi::Error::New(env, slot.error()).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    return Napi::Number::New(env, slot.value());
  }

  // wait() -> Promise<{reason, detail}>: resolves once the VM has stopped and its threads joined,
  // without blocking the event loop.
  Napi::Value Wait(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto deferred = Napi::Promise::Deferred::New(env);
    if (!vm_) {
      deferred.Reject(Napi::Error::New(env, "this Vm was not created").Value());
      return deferred.Promise();
    }
    auto* worker = new WaitWorker(env, vm_.get(), deferred, Value());
    worker->Queue();
    return deferred.Promise();
  }

  class WaitWorker : public Napi::AsyncWorker {
   public:
    WaitWorker(Napi::Env env, Vm* vm, Napi::Promise::Deferred deferred, Napi::Object owner)
        : Napi::AsyncWorker(env), vm_(vm), deferred_(deferred), owner_(Napi::Persistent(owner)) {}
    void Execute() override { vm_->Wait(); }
    void OnOK() override {
      Napi::Env env = Env();
      Napi::Object result = Napi::Object::New(env);
      result.Set("reason", vmm::kvm::StopReasonName(vm_->stop_reason()));
      result.Set("detail", vm_->stop_detail());
      deferred_.Resolve(result);
    }

   private:
    Vm* vm_;
    Napi::Promise::Deferred deferred_;
    Napi::ObjectReference owner_;  // keeps the handle (and so the Vm) alive while waiting
  };

  std::unique_ptr<Vm> vm_;
};

}  // namespace

void RegisterVmHandle(Napi::Env env, Napi::Object exports) {
  exports.Set("Vm", VmHandle::Define(env));
}

}  // namespace vc
