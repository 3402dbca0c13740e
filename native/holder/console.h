// `--console-socket`: the holder gives the engine a terminal, as runc does. It opens a pty pair,
// makes the slave its controlling terminal in raw mode (the container's own pty in the guest does
// the line discipline; doing it twice would echo twice and turn "\n" into "\r\r\n"), and sends the
// master to the engine's console socket with SCM_RIGHTS. The slave is then the relay's stdin and
// stdout, and a resize of the master arrives as SIGWINCH.
#pragma once

#include <cstdint>
#include <string>

#include "common/fd.h"
#include "common/result.h"

namespace holder {

// The slave end, already the controlling terminal, in raw mode and non-blocking.
vc::Result<vc::UniqueFd> OpenConsole(const std::string& console_socket);

struct WindowSize {
  uint16_t rows = 0;
  uint16_t cols = 0;
};

// The terminal's size (0 x 0 when it cannot be read: an engine that never set one).
WindowSize ReadWindowSize(int tty_fd);

}  // namespace holder
