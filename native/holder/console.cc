#include "console.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace holder {

namespace {

vc::Status Fail(const std::string& what) {
  return vc::Status::Error(what + ": " + std::strerror(errno));
}

// Sends `master` over a stream connection to `path`. The engines (conmon, containerd's console
// socket helpers) take one message of at most a few KiB whose ancillary data is exactly one fd;
// the bytes name the terminal, which some log and none depend on.
vc::Status SendMaster(const std::string& path, int master, const char* slave_name) {
  vc::UniqueFd sock(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!sock.valid()) return Fail("--console-socket " + path + ": socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());  // length checked by ParseArgs
  if (connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return Fail("--console-socket " + path + ": cannot connect");
  }
  iovec iov{const_cast<char*>(slave_name), std::strlen(slave_name) + 1};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    cmsghdr align;
  } control{};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof control.buf;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &master, sizeof(int));
  ssize_t n;
  do {
    n = sendmsg(sock.get(), &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return Fail("--console-socket " + path + ": sending the terminal");
  return {};
}

// Controlling terminal: a new session led by the holder, so the slave's hangup and resizes reach
// it. A holder started detached already leads its session (setsid then fails with EPERM).
vc::Status BecomeControllingProcess(int slave) {
  if (setsid() < 0 && getsid(0) != getpid()) return Fail("setsid (the holder must not lead a process group)");
  if (ioctl(slave, TIOCSCTTY, 0) != 0) return Fail("TIOCSCTTY on the new terminal");
  return {};
}

}  // namespace

vc::Result<vc::UniqueFd> OpenConsole(const std::string& console_socket) {
  vc::UniqueFd master(posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!master.valid()) return Fail("posix_openpt");
  if (grantpt(master.get()) != 0) return Fail("grantpt");
  if (unlockpt(master.get()) != 0) return Fail("unlockpt");
  char name[128];
  if (ptsname_r(master.get(), name, sizeof name) != 0) return Fail("ptsname_r");
  vc::UniqueFd slave(open(name, O_RDWR | O_NOCTTY | O_CLOEXEC));
  if (!slave.valid()) return Fail(std::string("open ") + name);

  termios t{};
  if (tcgetattr(slave.get(), &t) != 0) return Fail(std::string("tcgetattr ") + name);
  cfmakeraw(&t);
  if (tcsetattr(slave.get(), TCSANOW, &t) != 0) return Fail(std::string("tcsetattr ") + name);

  // Before the master leaves: the engine may resize it at once, and that SIGWINCH must find us.
  vc::Status s = BecomeControllingProcess(slave.get());
  if (!s.ok()) return s;
  s = SendMaster(console_socket, master.get(), name);
  if (!s.ok()) return s;
  // Our copy of the master closes here: the engine's is the only one, so when it goes away the
  // slave reads EOF/EIO and the relay reports stdin's end.
  int flags = fcntl(slave.get(), F_GETFL);
  if (flags < 0 || fcntl(slave.get(), F_SETFL, flags | O_NONBLOCK) != 0) return Fail("O_NONBLOCK on the terminal");
  return slave;
}

WindowSize ReadWindowSize(int tty_fd) {
  winsize ws{};
  if (ioctl(tty_fd, TIOCGWINSZ, &ws) != 0) return {};
  return WindowSize{ws.ws_row, ws.ws_col};
}

}  // namespace holder
