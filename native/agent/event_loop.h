// The agent's single-threaded poll(2) loop: signals (SIGCHLD via signalfd), listeners, host
// connections, and the pipes / pty masters of processes.
#pragma once

struct Agent;

// Serves until a `shutdown` request has been answered (or, in test mode, SIGTERM/SIGINT).
// Responses are flushed (bounded wait) before it returns.
void run_event_loop(Agent& a);
