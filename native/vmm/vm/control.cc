#include "vm/control.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vmm::kvm {

using json::Value;

json::Value ErrorReply(const char* code, const std::string& message) {
  Value err = Value::object();
  err.set("code", Value::string(code));
  err.set("message", Value::string(message));
  Value out = Value::object();
  out.set("ok", Value::boolean(false));
  out.set("error", std::move(err));
  return out;
}

namespace {
Value OkReply() {
  Value out = Value::object();
  out.set("ok", Value::boolean(true));
  return out;
}
}  // namespace

ControlServer::~ControlServer() {
  for (auto& [fd, client] : clients_) {
    loop_->remove(fd);
    ::close(fd);
  }
  if (listen_fd_ >= 0) {
    loop_->remove(listen_fd_);
    ::close(listen_fd_);
    ::unlink(path_.c_str());
  }
}

Status ControlServer::Listen(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path)
    return Status::Error("config.controlSocket \"" + path + "\" is empty or longer than " +
                         std::to_string(sizeof addr.sun_path - 1) + " bytes");
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return Status::Error("config.controlSocket " + path + " exists and is not a socket");
    ::unlink(path.c_str());  // a stale socket of a VMM that died
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return ErrnoStatus("control socket");
  // The socket controls the VM: only its owner may connect. umask-independent: fchmod before
  // bind does not apply to the socket file, so chmod right after bind, before listen.
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0)
    return ErrnoStatus(("control socket bind " + path).c_str());
  ::chmod(path.c_str(), 0600);
  if (::listen(fd.get(), 16) < 0) return ErrnoStatus("control socket listen");
  if (!loop_->add(fd.get(), EPOLLIN, [this](uint32_t) { OnAccept(); })) {
    ::unlink(path.c_str());
    return ErrnoStatus("control socket epoll");
  }
  path_ = path;
  listen_fd_ = fd.release();
  return Status();
}

void ControlServer::OnAccept() {
  while (true) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN: no more pending; other errors: try again on the next event
    if (clients_.size() >= kMaxClients) {
      static const char kBusy[] = "{\"ok\":false,\"error\":{\"code\":\"BUSY\",\"message\":\"too many control clients\"}}\n";
      (void)!::write(fd, kBusy, sizeof kBusy - 1);
      ::close(fd);
      continue;
    }
    clients_[fd] = Client{};
    if (!loop_->add(fd, EPOLLIN | EPOLLRDHUP, [this, fd](uint32_t ev) { OnClient(fd, ev); })) {
      clients_.erase(fd);
      ::close(fd);
    }
  }
}

void ControlServer::Drop(int fd) {
  loop_->remove(fd);
  ::close(fd);
  clients_.erase(fd);
}

void ControlServer::Flush(int fd, Client* c) {
  while (!c->out.empty()) {
    ssize_t n = ::send(fd, c->out.data(), c->out.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n <= 0) return Drop(fd);
    c->out.erase(0, size_t(n));
  }
  loop_->modify(fd, EPOLLIN | EPOLLRDHUP | (c->out.empty() ? 0u : uint32_t(EPOLLOUT)));
}

void ControlServer::OnClient(int fd, uint32_t events) {
  auto it = clients_.find(fd);
  if (it == clients_.end()) return;
  Client* c = &it->second;
  if (events & EPOLLOUT) {
    Flush(fd, c);
    if (clients_.find(fd) == clients_.end()) return;
  }
  if (!(events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP | EPOLLERR))) return;
  char buf[4096];
  ssize_t n = ::read(fd, buf, sizeof buf);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) return Drop(fd);
  c->in.append(buf, size_t(n));
  size_t nl;
  while ((nl = c->in.find('\n')) != std::string::npos) {
    std::string line = c->in.substr(0, nl);
    c->in.erase(0, nl + 1);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::string reply = Handle(line);
    c->out += reply;
    c->out += '\n';
  }
  if (c->in.size() > kMaxLine) {
    c->out += json::serialize(ErrorReply("LINE_TOO_LONG", "request line longer than 65536 bytes")) + "\n";
    Flush(fd, c);
    if (clients_.count(fd)) Drop(fd);
    return;
  }
  Flush(fd, c);
  // A stop is acted on once its reply is on its way: the loop ends with the VM.
  if (stop_requested_) vm_->Stop(StopReason::kRequested, "control socket stop");
}

std::string ControlServer::Handle(const std::string& line) {
  Value req;
  std::string error;
  if (!json::parse(line, &req, &error)) return json::serialize(ErrorReply("BAD_REQUEST", "not valid JSON: " + error));
  if (!req.is_object()) return json::serialize(ErrorReply("BAD_REQUEST", "a request must be a JSON object"));
  const Value* op = req.find("op");
  if (!op || !op->is_string()) return json::serialize(ErrorReply("BAD_REQUEST", "request.op must be a string"));
  const std::string& name = op->as_string();

  Value reply;
  if (name == "status") {
    reply = OkReply();
    reply.set("status", vm_->StatusJson());
  } else if (name == "pause" || name == "resume") {
    Status s = name == "pause" ? vm_->Pause() : vm_->Resume();
    reply = s.ok() ? OkReply() : ErrorReply("INVALID_STATE", s.error());
    if (s.ok()) reply.set("state", Value::string(VmStateName(vm_->state())));
  } else if (name == "stop") {
    reply = OkReply();
    reply.set("stopping", Value::boolean(true));
    stop_requested_ = true;
  } else if (name == "snapshot") {
    // The VM stops once the files are written; the reply still goes out (OnClient flushes it
    // before the loop ends).
    const Value* dir = req.find("dir");
    if (!dir || !dir->is_string() || dir->as_string().empty()) {
      reply = ErrorReply("BAD_REQUEST", "snapshot.dir must be a non-empty string (an absolute path to an empty directory)");
    } else {
      auto taken = vm_->Snapshot(dir->as_string());
      if (taken.ok()) {
        reply = OkReply();
        reply.set("state", Value::string("stopped"));
        if (const Value* b = taken->find("bytes")) reply.set("bytes", *b);
        if (const Value* us = taken->find("us")) reply.set("us", *us);
      } else {
        reply = ErrorReply("SNAPSHOT_FAILED", taken.error());
      }
    }
  } else if (name == "attachBlock") {
    const Value* path = req.find("path");
    const Value* ro = req.find("readOnly");
    const Value* serial = req.find("serial");
    if (!path || !path->is_string() || path->as_string().empty())
      reply = ErrorReply("BAD_REQUEST", "attachBlock.path must be a non-empty string");
    else if (ro && !ro->is_bool())
      reply = ErrorReply("BAD_REQUEST", "attachBlock.readOnly must be true or false");
    else if (serial && !serial->is_string())
      reply = ErrorReply("BAD_REQUEST", "attachBlock.serial must be a string");
    else {
      auto slot = vm_->AttachBlock(path->as_string(), ro && ro->as_bool(), serial ? serial->as_string() : "");
      if (slot.ok()) {
        reply = OkReply();
        reply.set("slot", Value::number(slot.value()));
      } else {
        reply = ErrorReply("ATTACH_FAILED", slot.error());
      }
    }
  } else if (name == "detachBlock") {
    const Value* serial = req.find("serial");
    if (!serial || !serial->is_string() || serial->as_string().empty()) {
      reply = ErrorReply("BAD_REQUEST", "detachBlock.serial must be a non-empty string");
    } else {
      auto slot = vm_->DetachBlock(serial->as_string());
      if (slot.ok()) {
        reply = OkReply();
        reply.set("slot", Value::number(slot.value()));
      } else {
        reply = ErrorReply("DETACH_FAILED", slot.error());
      }
    }
  } else {
    reply = ErrorReply("UNKNOWN_OP", "unknown op \"" + name + "\" (status, pause, resume, stop, snapshot, attachBlock, detachBlock)");
  }
  if (const Value* id = req.find("id")) reply.set("id", *id);
  return json::serialize(reply);
}

}  // namespace vmm::kvm
