// vc-holder: the process that stands for a container (or an exec) on the host, for virtc-runtime
// (docs/holder.md). The engine (conmon, containerd's runc shim...) waits on it as it would on
// runc's child: its stdio is the container's stdio, the signals it gets go to the container, and it
// exits with the container's status. The container itself runs in a VM; the virtc-runtime daemon
// holds the agent connection and relays to the holder over a Unix socket.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>

#include "args.h"
#include "common/fd.h"
#include "common/json.h"
#include "console.h"
#include "relay.h"
#include "signals.h"

namespace {

constexpr int kFailureExit = 255;

// Messages end up in the engine's log or a user's terminal; the daemon's text is not trusted to be
// free of terminal escapes.
std::string Printable(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) out.push_back(c == '\t' || c == '\n' || c >= 0x20 ? static_cast<char>(c) : '?');
  return out;
}

[[noreturn]] void Fail(const std::string& message) {
  std::fprintf(stderr, "vc-holder: %s\n", Printable(message).c_str());
  std::exit(kFailureExit);
}

// With fd 0, 1 or 2 closed, the daemon's socket could land on one of them and be taken for stdio.
void KeepStdioOccupied() {
  for (int fd = 0; fd <= 2; fd++) {
    if (fcntl(fd, F_GETFD) >= 0) continue;
    int null = open("/dev/null", O_RDWR);
    if (null >= 0 && null != fd) {
      dup2(null, fd);
      close(null);
    }
  }
}

vc::UniqueFd ConnectDaemon(const std::string& path) {
  vc::UniqueFd sock(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!sock.valid()) Fail(vc::Format("socket: %s", std::strerror(errno)));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());  // length checked by ParseArgs
  int r;
  do {
    r = connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  } while (r != 0 && errno == EINTR);
  if (r != 0) Fail(vc::Format("cannot connect to the daemon at %s: %s", path.c_str(), std::strerror(errno)));
  int flags = fcntl(sock.get(), F_GETFL);
  if (flags < 0 || fcntl(sock.get(), F_SETFL, flags | O_NONBLOCK) != 0) {
    Fail(vc::Format("O_NONBLOCK on the daemon socket: %s", std::strerror(errno)));
  }
  return sock;
}

std::string HelloJson(const holder::Options& o, bool tty, holder::WindowSize ws) {
  json::Value v = json::Value::object();
  v.set("id", json::Value::string(o.container_id));
  v.set("exec", o.exec_id.empty() ? json::Value() : json::Value::string(o.exec_id));
  v.set("tty", json::Value::boolean(tty));
  v.set("rows", json::Value::number(ws.rows));
  v.set("cols", json::Value::number(ws.cols));
  return json::serialize(v);
}

}  // namespace

int main(int argc, char** argv) {
  KeepStdioOccupied();
  vc::Result<holder::Options> parsed = holder::ParseArgs(argc, argv);
  if (!parsed.ok()) {
    std::fprintf(stderr, "vc-holder: %s\n%s", parsed.error().c_str(), holder::kUsage);
    return holder::kUsageExit;
  }
  const holder::Options& o = parsed.value();
  const bool tty = !o.console_socket.empty();

  vc::Result<int> signals = holder::TakeOverSignals(tty);
  if (!signals.ok()) Fail(signals.error());

  holder::RelayFds fds;
  fds.signals = signals.value();
  fds.ready = o.ready_fd;
  vc::UniqueFd slave;
  if (tty) {
    vc::Result<vc::UniqueFd> console = holder::OpenConsole(o.console_socket);
    if (!console.ok()) Fail(console.error());
    slave = std::move(console.value());
    fds.input = fds.output = fds.tty = slave.get();
    fds.errors = -1;
  }
  vc::UniqueFd daemon = ConnectDaemon(o.socket_path);
  fds.daemon = daemon.get();

  const holder::WindowSize ws = tty ? holder::ReadWindowSize(slave.get()) : holder::WindowSize{};
  const holder::Outcome outcome = holder::RunRelay(HelloJson(o, tty, ws), fds);
  switch (outcome.kind) {
    case holder::Outcome::kExited:
      std::exit(outcome.value);
    case holder::Outcome::kSignalled:
      holder::DieBySignal(outcome.value);
    case holder::Outcome::kFailed:
      break;
  }
  Fail(outcome.message);
}
