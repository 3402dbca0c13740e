// Passing an open file to another process over a Unix socket (SCM_RIGHTS), for QEMU's `add-fd`:
// a QEMU that has dropped its privileges (-runas) cannot open a disk by path in a directory only
// root can reach, so the library opens it and hands QEMU the descriptor on the QMP connection.
// Node cannot send descriptors on a net.Socket, so the connection's socket is made here and
// returned as an fd that TS wraps in a net.Socket; the message carrying a descriptor is sent here
// too, on that same fd, while no other write of the stream is pending (QMP is one command at a time).
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "addon.h"

namespace vc {
namespace {

// unixConnect(path) -> fd: a connected, non-blocking Unix stream socket. Never blocks: a listener
// whose backlog is full answers EAGAIN (the caller retries), a missing one ENOENT or ECONNREFUSED.
Napi::Value UnixConnect(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) {
    Napi::TypeError::New(env, "unixConnect(path: string)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::string path = info[0].As<Napi::String>().Utf8Value();
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    Napi::RangeError::New(env, "unixConnect: path must be 1.." + std::to_string(sizeof addr.sun_path - 1) + " bytes, got " + std::to_string(path.size()) + ": " + path).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return ThrowErrno(env, "socket(AF_UNIX)", errno);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    close(fd);
    return ThrowErrno(env, "connect " + path, err);
  }
  return Napi::Number::New(env, fd);
}

// sendWithFd(socketFd, data, fd): sends `data` with one descriptor attached (SCM_RIGHTS). The
// socket is non-blocking; a full send buffer is waited out for up to a second (QMP commands are
// a few hundred bytes, so this does not happen in practice). Partial sends are finished without
// the descriptor, which went with the first byte.
Napi::Value SendWithFd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsBuffer() || !info[2].IsNumber()) {
    Napi::TypeError::New(env, "sendWithFd(socketFd: number, data: Buffer, fd: number)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int sock = info[0].As<Napi::Number>().Int32Value();
  Napi::Buffer<char> data = info[1].As<Napi::Buffer<char>>();
  int pass = info[2].As<Napi::Number>().Int32Value();
  if (data.Length() == 0) {
    Napi::RangeError::New(env, "sendWithFd: data must not be empty (the descriptor travels with a byte)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  size_t sent = 0;
  while (sent < data.Length()) {
    iovec iov{data.Data() + sent, data.Length() - sent};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    if (sent == 0) {
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      std::memcpy(CMSG_DATA(c), &pass, sizeof pass);
    }
    ssize_t n = sendmsg(sock, &msg, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      pollfd p{sock, POLLOUT, 0};
      if (poll(&p, 1, 1000) > 0) continue;
      return ThrowErrno(env, "sendmsg with a descriptor: the socket stayed full for 1 s", EAGAIN);
    }
    if (n < 0) return ThrowErrno(env, "sendmsg with a descriptor", errno);
    sent += static_cast<size_t>(n);
  }
  return env.Undefined();
}

}  // namespace

void RegisterFdPassing(Napi::Env env, Napi::Object exports) {
  exports.Set("unixConnect", Napi::Function::New(env, UnixConnect));
  exports.Set("sendWithFd", Napi::Function::New(env, SendWithFd));
}

}  // namespace vc
