#include "args.h"

#include <fcntl.h>
#include <sys/un.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

namespace holder {

const char kUsage[] =
    "usage: vc-holder --socket PATH --id CONTAINER_ID [--exec EXEC_ID] [--console-socket PATH]\n"
    "                 [--ready-fd N]\n"
    "Stands for a container's process on the host: relays its stdio to the virtc-runtime daemon\n"
    "at --socket and exits with the container's status.\n";

namespace {

// A Unix socket address holds at most sizeof(sun_path) - 1 bytes of path (and its NUL).
vc::Status CheckSocketPath(const char* flag, const std::string& path) {
  if (path.empty()) return vc::Status::Error(vc::Format("%s: empty path", flag));
  if (path.size() >= sizeof(sockaddr_un{}.sun_path)) {
    return vc::Status::Error(vc::Format("%s %s: longer than a Unix socket path may be (%zu bytes)", flag,
                                        path.c_str(), sizeof(sockaddr_un{}.sun_path) - 1));
  }
  return {};
}

// Ids travel in the hello's JSON and name state directories: printable ASCII only, as the daemon
// checks container ids the same way; anything else is a mistake best caught here.
vc::Status CheckId(const char* flag, const std::string& id) {
  if (id.empty()) return vc::Status::Error(vc::Format("%s: empty", flag));
  if (id.size() > 1024) return vc::Status::Error(vc::Format("%s: %zu bytes, more than 1024", flag, id.size()));
  for (unsigned char c : id) {
    if (c < 0x21 || c > 0x7e) {
      return vc::Status::Error(vc::Format("%s %s: byte 0x%02x is not printable ASCII", flag, id.c_str(), c));
    }
  }
  return {};
}

vc::Result<int> ParseReadyFd(const char* value) {
  char* end = nullptr;
  errno = 0;
  long n = std::strtol(value, &end, 10);
  if (errno != 0 || end == value || *end != '\0' || n < 0 || n > INT_MAX) {
    return vc::Status::Error(vc::Format("--ready-fd %s: expected a file descriptor number", value));
  }
  // 0, 1 and 2 are the relayed stdio; writing the ready byte there would corrupt the stream.
  if (n <= 2) return vc::Status::Error(vc::Format("--ready-fd %s: must not be stdin, stdout or stderr", value));
  if (fcntl(static_cast<int>(n), F_GETFD) < 0) {
    return vc::Status::Error(vc::Format("--ready-fd %s: not an open file descriptor", value));
  }
  return static_cast<int>(n);
}

}  // namespace

vc::Result<Options> ParseArgs(int argc, char** argv) {
  Options o;
  bool have_socket = false, have_id = false, have_exec = false, have_console = false, have_ready = false;
  for (int i = 1; i < argc; i++) {
    const char* flag = argv[i];
    bool* seen = nullptr;
    if (std::strcmp(flag, "--socket") == 0) seen = &have_socket;
    else if (std::strcmp(flag, "--id") == 0) seen = &have_id;
    else if (std::strcmp(flag, "--exec") == 0) seen = &have_exec;
    else if (std::strcmp(flag, "--console-socket") == 0) seen = &have_console;
    else if (std::strcmp(flag, "--ready-fd") == 0) seen = &have_ready;
    else return vc::Status::Error(vc::Format("unknown argument %s", flag));
    if (*seen) return vc::Status::Error(vc::Format("%s given twice", flag));
    *seen = true;
    if (i + 1 >= argc) return vc::Status::Error(vc::Format("%s needs a value", flag));
    const char* value = argv[++i];
    if (seen == &have_socket) {
      o.socket_path = value;
      vc::Status s = CheckSocketPath(flag, o.socket_path);
      if (!s.ok()) return s;
    } else if (seen == &have_id) {
      o.container_id = value;
      vc::Status s = CheckId(flag, o.container_id);
      if (!s.ok()) return s;
    } else if (seen == &have_exec) {
      o.exec_id = value;
      vc::Status s = CheckId(flag, o.exec_id);
      if (!s.ok()) return s;
    } else if (seen == &have_console) {
      o.console_socket = value;
      vc::Status s = CheckSocketPath(flag, o.console_socket);
      if (!s.ok()) return s;
    } else {
      vc::Result<int> fd = ParseReadyFd(value);
      if (!fd.ok()) return fd.status();
      o.ready_fd = fd.value();
    }
  }
  if (!have_socket) return vc::Status::Error("--socket: missing");
  if (!have_id) return vc::Status::Error("--id: missing");
  return o;
}

}  // namespace holder
