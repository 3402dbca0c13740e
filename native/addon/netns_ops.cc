// Sockets in another network namespace, for the loopback forwarder of pods joined to a netns
// (src/api/netns-loopback-forward.ts): a TCP listener on 127.0.0.1 inside the namespace, and the
// address a REDIRECTed connection was originally sent to. Node cannot make a socket in another
// namespace: the namespace of a socket is the one of the thread that calls socket(), so a short-
// lived thread of our own joins the namespace, makes the socket and ends (host::InNetns). The
// socket keeps its namespace for its whole life, whichever thread uses it afterwards.
#include <arpa/inet.h>
#include <linux/netfilter_ipv4.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "addon.h"
#include "host/pod_net.h"

namespace vc {
namespace {

// listenInNetns(path) -> {fd, port}: a listening, non-blocking TCP socket on 127.0.0.1 with a
// kernel-picked port, inside the network namespace whose nsfs file is `path`.
Napi::Value ListenInNetns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "listenInNetns(path: string)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int fd = -1;
  int port = 0;
  host::PodNetError error;
  // The thread only makes a socket, so the Node thread waits microseconds.
  bool ok = host::InNetns(path, &error, [&] {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    const char* step = nullptr;
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) step = "socket";
    else if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) step = "bind 127.0.0.1:0";
    else if (listen(fd, 511) != 0) step = "listen";
    else if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) step = "getsockname";
    if (!step) {
      port = ntohs(addr.sin_port);
      return true;
    }
    error.err = errno;
    error.step = std::string(step) + " in network namespace " + path;
    if (fd >= 0) close(fd);
    fd = -1;
    return false;
  });
  if (!ok) return ThrowErrno(env, error.step, error.err);
  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", Napi::Number::New(env, fd));
  out.Set("port", Napi::Number::New(env, port));
  return out;
}

// originalDestination(fd) -> {address, port}: where an accepted IPv4 connection was sent before
// netfilter's NAT (REDIRECT, DNAT) rewrote it. ENOENT: the connection was not NATed.
Napi::Value OriginalDestination(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "originalDestination(fd: number)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int fd = info[0].As<Napi::Number>().Int32Value();
  sockaddr_in addr{};
  socklen_t len = sizeof addr;
  if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &addr, &len) != 0) {
    return ThrowErrno(env, "getsockopt(SO_ORIGINAL_DST) on fd " + std::to_string(fd), errno);
  }
  char text[INET_ADDRSTRLEN] = "";
  inet_ntop(AF_INET, &addr.sin_addr, text, sizeof text);
  Napi::Object out = Napi::Object::New(env);
  out.Set("address", Napi::String::New(env, text));
  out.Set("port", Napi::Number::New(env, ntohs(addr.sin_port)));
  return out;
}

}  // namespace

void RegisterNetnsOps(Napi::Env env, Napi::Object exports) {
  exports.Set("listenInNetns", Napi::Function::New(env, ListenInNetns, "listenInNetns"));
  exports.Set("originalDestination", Napi::Function::New(env, OriginalDestination, "originalDestination"));
}

}  // namespace vc
