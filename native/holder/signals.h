// The holder's signals. It stands for the container's process, so what the engine sends it (stop,
// kill, hang up, user signals...) goes to the daemon for the container, through a signalfd in the
// relay loop; and when the container was killed by a signal, the holder dies by the same one, so
// the engine's waitpid sees what runc's child would have shown.
#pragma once

#include <signal.h>

#include "common/result.h"

namespace holder {

// Blocks the forwarded signals (and SIGWINCH when the holder has a terminal) and returns a
// non-blocking signalfd that reports them. SIGPIPE is ignored: a closed stdout shows as EPIPE.
// Called first in main, so a signal that arrives while the holder connects is held, not lost.
vc::Result<int> TakeOverSignals(bool tty);

// Dies by `sig` as if it had been delivered with its default action (no core file), when that
// action ends the process; otherwise, and when raising it fails, exits with 128 + sig as a shell
// reports a signal.
[[noreturn]] void DieBySignal(int sig);

}  // namespace holder
