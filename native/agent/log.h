// Log lines "vc-agent: ..." to one fd: /dev/console as PID 1 (the only place a human can read them,
// and what the host's console log captures), stderr in the host test mode.
#pragma once

void log_set_fd(int fd);
void logf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
