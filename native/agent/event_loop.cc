#include "event_loop.h"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "agent.h"
#include "log.h"
#include "serial_ports.h"

namespace {

enum class Source : uint8_t { kSignal, kListener, kConn, kStdout, kStderr, kStdin, kConnecting };

// What a pollfd entry stands for. Objects are looked up again by id when handled, because
// handling an earlier entry may have dropped a connection or finished a process.
struct Slot {
  Source src;
  uint64_t key;
};

void handle_signals(Agent& a) {
  signalfd_siginfo si;
  bool reap = false;
  while (read(a.sigfd, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
    if (si.ssi_signo == SIGCHLD) {
      reap = true;
    } else if (!a.pid1 && (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)) {
      a.terminate_requested = true;
    }
  }
  if (reap) children_reap(a);
}

}  // namespace

void run_event_loop(Agent& a) {
  std::vector<pollfd> fds;
  std::vector<Slot> slots;
  const auto add = [&](int fd, short events, Source src, uint64_t key) {
    fds.push_back(pollfd{fd, events, 0});
    slots.push_back(Slot{src, key});
  };

  for (;;) {
    forwards_service(a);
    process_service(a);
    containers_service(a);
    // Write eagerly: most responses fit the socket buffer, saving a poll round.
    for (auto& [id, c] : a.conns) {
      if (!c->dead && !c->wbuf.empty()) conn_on_writable(a, *c);
    }
    conns_reap_dead(a);
    if (a.terminate_requested) return;
    if (a.shutdown_requested) {
      conns_flush_all(a, 1000);
      return;
    }
    serial_update(a);

    fds.clear();
    slots.clear();
    add(a.sigfd, POLLIN, Source::kSignal, 0);
    for (size_t i = 0; i < a.listeners.size(); i++) {
      add(a.listeners[i].fd, POLLIN, Source::kListener, i);
    }
    for (auto& [id, c] : a.conns) {
      short ev = 0;
      if (c->wbuf.size() < kConnInputPause) ev |= POLLIN;  // else let the host read first
      if (!c->wbuf.empty()) ev |= POLLOUT;
      add(c->fd, ev, Source::kConn, id);  // POLLHUP is reported even with ev == 0
    }
    for (auto& [id, p] : a.procs) {
      bool can_read = process_can_read(a, *p);
      if (p->out.fd >= 0 && !p->out.ended && !p->out.hung_up && can_read) {
        add(p->out.fd, POLLIN, Source::kStdout, id);
      }
      if (p->err.fd >= 0 && !p->err.ended && can_read) add(p->err.fd, POLLIN, Source::kStderr, id);
      if (p->in.fd >= 0 && p->in.off < p->in.buf.size()) {
        add(p->in.fd, POLLOUT, Source::kStdin, id);
      }
    }

    for (const PendingForward& f : a.forward_connects) {
      add(f.fd, POLLOUT, Source::kConnecting, static_cast<uint64_t>(f.fd));
    }

    int timeout = serial_poll_timeout(a);
    for (int other : {containers_poll_timeout(a), forwards_poll_timeout(a)}) {
      if (timeout < 0 || (other >= 0 && other < timeout)) timeout = other;
    }
    int n = poll(fds.data(), fds.size(), timeout);
    if (n < 0) {
      if (errno == EINTR) continue;
      logf("poll: %s", strerror(errno));
      usleep(10000);  // do not spin on a persistent error
      continue;
    }
    for (size_t i = 0; i < fds.size() && n > 0; i++) {
      short re = fds[i].revents;
      if (re == 0) continue;
      n--;
      const Slot& s = slots[i];
      switch (s.src) {
        case Source::kSignal:
          handle_signals(a);
          break;
        case Source::kListener:
          listener_accept(a, a.listeners[s.key].fd, a.listeners[s.key].kind);
          break;
        case Source::kConn: {
          Connection* c = conn_find(a, s.key);
          if (!c) break;
          // virtio-serial: POLLHUP means the host closed its side of this port.
          if (c->serial && (re & POLLHUP)) {
            serial_host_gone(a, c->port);
            break;
          }
          if (re & (POLLIN | POLLHUP | POLLERR)) conn_on_readable(a, *c);
          if (!c->dead && (re & POLLOUT)) conn_on_writable(a, *c);
          break;
        }
        case Source::kStdout:
        case Source::kStderr:
          if (Process* p = process_find(a, static_cast<uint32_t>(s.key))) {
            if (process_can_read(a, *p)) process_on_readable(a, *p, s.src == Source::kStderr);
          }
          break;
        case Source::kStdin:
          if (Process* p = process_find(a, static_cast<uint32_t>(s.key))) {
            process_on_stdin_writable(a, *p);
          }
          break;
        case Source::kConnecting:
          forward_connect_ready(a, static_cast<int>(s.key));
          break;
      }
    }
  }
}
