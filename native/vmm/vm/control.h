// The control socket of a running VM: a Unix stream socket speaking newline-delimited JSON, one
// request object per line, one response object per line, in order (docs/vmm.md has the
// protocol). It runs on the VM's device thread (the EventLoop), so requests are served one at a
// time and need no locking beyond what Vm's control calls already do.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "common/json.h"
#include "devices/event_loop.h"
#include "kvm/kvm.h"
#include "vm/vm.h"

namespace vmm::kvm {

class ControlServer {
 public:
  static constexpr size_t kMaxLine = 64 * 1024;  // a longer request line is refused, the client dropped
  static constexpr size_t kMaxClients = 16;

  explicit ControlServer(Vm* vm) : vm_(vm), loop_(vm->loop()) {}
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Binds `path` (replacing a stale socket file, refusing to replace anything else), mode 0600.
  Status Listen(const std::string& path);

  // One request line in, one response line out (without the newline). Public for unit tests:
  // the socket code around it only frames lines.
  std::string Handle(const std::string& line);

 private:
  struct Client {
    std::string in, out;
  };
  void OnAccept();
  void OnClient(int fd, uint32_t events);
  void Flush(int fd, Client* c);
  void Drop(int fd);

  Vm* vm_;
  EventLoop* loop_;
  std::string path_;
  int listen_fd_ = -1;
  std::map<int, Client> clients_;
  bool stop_requested_ = false;
};

// Helpers shared with the addon-facing code: {"ok":false,"error":{"code":..,"message":..}}.
json::Value ErrorReply(const char* code, const std::string& message);

}  // namespace vmm::kvm
