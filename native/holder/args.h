// vc-holder's command line (docs/holder.md):
//   vc-holder --socket PATH --id CONTAINER_ID [--exec EXEC_ID] [--console-socket PATH] [--ready-fd N]
// A mistake is reported naming the flag and the value, and the holder exits 125 (what runc uses
// for its own usage errors), so an engine can tell it from the container's status.
#pragma once

#include <string>

#include "common/result.h"

namespace holder {

constexpr int kUsageExit = 125;

struct Options {
  std::string socket_path;     // the daemon's socket
  std::string container_id;
  std::string exec_id;         // empty: the container's init process
  std::string console_socket;  // empty: relay fds 0/1/2 instead of a pty
  int ready_fd = -1;           // -1: none
};

vc::Result<Options> ParseArgs(int argc, char** argv);

extern const char kUsage[];

}  // namespace holder
