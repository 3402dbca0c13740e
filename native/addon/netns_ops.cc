// Sockets in another network namespace, for the loopback forwarder of pods joined to a netns
// (src/api/netns-loopback-forward.ts): a TCP listener on 127.0.0.1 inside the namespace, and the
// address a REDIRECTed connection was originally sent to. Node cannot make a socket in another
// namespace: the namespace of a socket is the one of the thread that calls socket(), so a short-
// lived thread of our own joins the namespace, makes the socket and ends. The Node thread (and the
// libuv pool, whose threads are reused) never changes namespace. The socket keeps its namespace
// for its whole life, whichever thread uses it afterwards.
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/netfilter_ipv4.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <thread>

#include "addon.h"

namespace vc {
namespace {

struct Listener {
  int fd = -1;
  int port = 0;
  int err = 0;
  const char* step = "";
};

// Runs on its own thread: joins the namespace `ns_fd`, then listens on 127.0.0.1:0 there.
void ListenInNamespace(int ns_fd, Listener* out) {
  if (setns(ns_fd, CLONE_NEWNET) != 0) {
    out->err = errno;
    out->step = "setns";
    return;
  }
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    out->err = errno;
    out->step = "socket";
    return;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  const char* step = nullptr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) step = "bind 127.0.0.1:0";
  else if (listen(fd, 511) != 0) step = "listen";
  else if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) step = "getsockname";
  if (step) {
    out->err = errno;
    out->step = step;
    close(fd);
    return;
  }
  out->fd = fd;
  out->port = ntohs(addr.sin_port);
}

// listenInNetns(path) -> {fd, port}: a listening, non-blocking TCP socket on 127.0.0.1 with a
// kernel-picked port, inside the network namespace whose nsfs file is `path`.
Napi::Value ListenInNetns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "listenInNetns(path: string)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string path = info[0].As<Napi::String>().Utf8Value();
  int ns_fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (ns_fd < 0) return ThrowErrno(env, "cannot open network namespace " + path, errno);
  Listener result;
  // Joined at once: the thread only makes a socket, so the Node thread waits microseconds.
  std::thread worker(ListenInNamespace, ns_fd, &result);
  worker.join();
  close(ns_fd);
  if (result.fd < 0) {
    std::string why = std::string(result.step) + " in network namespace " + path;
    if (result.err == EINVAL && std::strcmp(result.step, "setns") == 0) why += " (not a network namespace file?)";
    return ThrowErrno(env, why, result.err);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", Napi::Number::New(env, result.fd));
  out.Set("port", Napi::Number::New(env, result.port));
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
