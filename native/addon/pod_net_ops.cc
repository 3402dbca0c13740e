// The host side of pod networking without `unshare`, `ip` and `tc` processes (native/host/pod_net.h):
// thin bindings; src/network validates and records before it calls them.
#include <string>
#include <vector>

#include "addon.h"
#include "host/pod_net.h"

namespace vc {
namespace {

Napi::Value Throw(Napi::Env env, const host::PodNetError& error) {
  std::string what = error.step;
  if (!error.detail.empty()) what += " (" + error.detail + ")";
  return ThrowErrno(env, what, error.err);
}

// makeNetns(path): a new network namespace with lo up, bind-mounted onto the existing file `path`.
Napi::Value MakeNetns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "makeNetns(path: string)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  host::PodNetError error;
  if (!host::MakeNetns(info[0].As<Napi::String>().Utf8Value(), &error)) return Throw(env, error);
  return env.Undefined();
}

// unmountNetns(path) -> how many mounts were taken off `path` (0: it was not mounted).
Napi::Value UnmountNetns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "unmountNetns(path: string)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  host::PodNetError error;
  int unmounted = 0;
  if (!host::UnmountNetns(info[0].As<Napi::String>().Utf8Value(), &unmounted, &error)) return Throw(env, error);
  return Napi::Number::New(env, unmounted);
}

// makeTapMirrors(netnsPath, [{interface, tap, mtu}]): taps and tc redirects in the namespace.
Napi::Value MakeTapMirrors(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* usage = "makeTapMirrors(netnsPath: string, mirrors: {interface: string, tap: string, mtu: number}[])";
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsArray()) {
    Napi::TypeError::New(env, usage).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Array list = info[1].As<Napi::Array>();
  std::vector<host::TapMirror> mirrors;
  for (uint32_t i = 0; i < list.Length(); i++) {
    Napi::Value item = list.Get(i);
    if (!item.IsObject()) {
      Napi::TypeError::New(env, std::string(usage) + ": mirrors[" + std::to_string(i) + "] is not an object").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Object o = item.As<Napi::Object>();
    if (!o.Get("interface").IsString() || !o.Get("tap").IsString() || !o.Get("mtu").IsNumber()) {
      Napi::TypeError::New(env, std::string(usage) + ": mirrors[" + std::to_string(i) + "] lacks a field").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    host::TapMirror mirror;
    mirror.interface = o.Get("interface").As<Napi::String>().Utf8Value();
    mirror.tap = o.Get("tap").As<Napi::String>().Utf8Value();
    mirror.mtu = o.Get("mtu").As<Napi::Number>().Uint32Value();
    mirrors.push_back(mirror);
  }
  host::PodNetError error;
  if (!host::MakeTapMirrors(info[0].As<Napi::String>().Utf8Value(), mirrors, &error)) return Throw(env, error);
  return env.Undefined();
}

// sweepTapMirrors(netnsPath) -> how many taps were removed.
Napi::Value SweepTapMirrors(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "sweepTapMirrors(netnsPath: string)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  host::PodNetError error;
  int removed = 0;
  if (!host::SweepTapMirrors(info[0].As<Napi::String>().Utf8Value(), &removed, &error)) return Throw(env, error);
  return Napi::Number::New(env, removed);
}

// A JS array of one object per item, filled by `fill`.
template <class Item, class Fill>
Napi::Array ArrayOf(Napi::Env env, const std::vector<Item>& items, Fill fill) {
  Napi::Array out = Napi::Array::New(env, items.size());
  for (size_t i = 0; i < items.size(); i++) {
    Napi::Object o = Napi::Object::New(env);
    fill(o, items[i]);
    out.Set(i, o);
  }
  return out;
}

// readNetns(path) -> {links, addresses, routes}: the namespace as the kernel lists it (numbers, not
// names; src/network/netns-view.ts names them as `ip` would).
Napi::Value ReadNetns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "readNetns(path: string)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  host::NetnsView view;
  host::PodNetError error;
  if (!host::ReadNetns(info[0].As<Napi::String>().Utf8Value(), &view, &error)) return Throw(env, error);
  Napi::Array links = ArrayOf(env, view.links, [](Napi::Object o, const host::NetnsLink& l) {
    o.Set("index", l.index);
    o.Set("name", l.name);
    o.Set("ether", l.ether);
    o.Set("mac", l.mac);
    o.Set("mtu", l.mtu);
  });
  Napi::Array addresses = ArrayOf(env, view.addresses, [](Napi::Object o, const host::NetnsAddress& a) {
    o.Set("index", a.index);
    o.Set("family", a.family);
    o.Set("address", a.address);
    o.Set("prefix", a.prefix);
    o.Set("scope", a.scope);
  });
  Napi::Array routes = ArrayOf(env, view.routes, [](Napi::Object o, const host::NetnsRoute& r) {
    o.Set("family", r.family);
    o.Set("dst", r.dst);
    o.Set("dstLen", r.dst_len);
    o.Set("gateway", r.gateway);
    o.Set("oif", r.oif);
    o.Set("scope", r.scope);
    o.Set("protocol", r.protocol);
    o.Set("type", r.type);
    o.Set("source", r.source);
  });
  Napi::Object out = Napi::Object::New(env);
  out.Set("links", links);
  out.Set("addresses", addresses);
  out.Set("routes", routes);
  return out;
}

}  // namespace

void RegisterPodNetOps(Napi::Env env, Napi::Object exports) {
  exports.Set("makeNetns", Napi::Function::New(env, MakeNetns, "makeNetns"));
  exports.Set("unmountNetns", Napi::Function::New(env, UnmountNetns, "unmountNetns"));
  exports.Set("makeTapMirrors", Napi::Function::New(env, MakeTapMirrors, "makeTapMirrors"));
  exports.Set("readNetns", Napi::Function::New(env, ReadNetns, "readNetns"));
  exports.Set("sweepTapMirrors", Napi::Function::New(env, SweepTapMirrors, "sweepTapMirrors"));
}

}  // namespace vc
