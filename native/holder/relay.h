// The relay: one poll loop between the daemon's socket and the holder's stdio (fds 0/1/2, or the
// pty slave), plus the signalfd. It says hello, waits for ACK (then writes the ready byte and, with
// a terminal, reports its size), moves bytes both ways with back-pressure, forwards signals, and
// ends with the container's status, or with why it cannot know it.
#pragma once

#include <cstdint>
#include <string>

#include "args.h"

namespace holder {

struct Outcome {
  enum Kind { kExited, kSignalled, kFailed } kind = kFailed;
  int value = 255;      // exit code or signal number
  std::string message;  // kFailed: what went wrong, for stderr
};

struct RelayFds {
  int daemon = -1;   // connected, non-blocking
  int input = 0;     // fd 0 or the pty slave
  int output = 1;    // fd 1 or the pty slave
  int errors = 2;    // fd 2, or -1 with a terminal (everything comes as STDOUT then)
  int tty = -1;      // the pty slave, or -1
  int signals = -1;  // TakeOverSignals' signalfd
  int ready = -1;    // --ready-fd, or -1
};

Outcome RunRelay(const std::string& hello_json, const RelayFds& fds);

}  // namespace holder
