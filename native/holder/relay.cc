#include "relay.h"

#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "byte_queue.h"
#include "common/result.h"
#include "console.h"
#include "frame.h"

namespace holder {

namespace {

constexpr size_t kReadChunk = 64 * 1024;
// Stdin stays unread while this much waits for the daemon, so a fast producer is held by its pipe.
constexpr size_t kInputPause = 1u << 20;
// The daemon's socket stays unread while this much output waits for fds 1/2: the socket then stops
// draining, and the daemon pauses the container's stream until it does.
constexpr size_t kOutputPause = 1u << 20;

// An output fd (1, 2 or the pty slave) and what waits for it. When its reader is gone (EPIPE; EIO
// on a hung-up terminal) later output is dropped and the container runs on, as it would under runc.
struct Sink {
  int fd = -1;
  ByteQueue queue;
  bool closed = false;
};

class Relay {
 public:
  explicit Relay(const RelayFds& fds) : fds_(fds) {
    out_.fd = fds.output;
    err_.fd = fds.errors;
  }

  Outcome Run(const std::string& hello_json);

 private:
  void ReadDaemon();
  void SendToDaemon();
  void HandleFrame(const Frame& f);
  void HandleExit(const std::string& payload);
  void ReadInput();
  void ReadSignals();
  void QueueResize();
  void SignalReady();
  void Drain(Sink& sink);
  void Queue(Sink& sink, const std::string& bytes);
  void Finish(Outcome::Kind kind, int value, std::string message = "");
  void Lose(const std::string& why) { Finish(Outcome::kFailed, 255, "lost the connection to the daemon: " + why); }
  size_t PendingOutput() const { return out_.queue.size() + err_.queue.size(); }
  bool OutputDone() const {
    return (out_.closed || out_.queue.empty()) && (err_.closed || err_.queue.empty());
  }

  const RelayFds fds_;
  FrameDecoder decoder_;
  ByteQueue to_daemon_;
  Sink out_, err_;
  bool acked_ = false;
  bool input_open_ = true;
  bool finished_ = false;
  Outcome outcome_;
};

Outcome Relay::Run(const std::string& hello_json) {
  AppendFrame(FrameType::kHello, hello_json, to_daemon_.tail());
  SendToDaemon();
  enum { kDaemon, kSignals, kInput, kOut, kErr, kCount };
  for (;;) {
    // Past the end (EXIT, or a failure), only what the container already wrote is left to deliver.
    if (finished_ && OutputDone()) return outcome_;

    pollfd p[kCount];
    const bool relaying = acked_ && !finished_;
    short daemon_events = 0;
    if (!finished_ && PendingOutput() < kOutputPause) daemon_events |= POLLIN;
    if (!finished_ && !to_daemon_.empty()) daemon_events |= POLLOUT;
    // An fd polled with no events still reports POLLHUP, which would spin while output drains.
    p[kDaemon] = {daemon_events ? fds_.daemon : -1, daemon_events, 0};
    p[kSignals] = {relaying ? fds_.signals : -1, POLLIN, 0};
    p[kInput] = {relaying && input_open_ && to_daemon_.size() < kInputPause ? fds_.input : -1, POLLIN, 0};
    p[kOut] = {!out_.closed && !out_.queue.empty() ? out_.fd : -1, POLLOUT, 0};
    p[kErr] = {!err_.closed && !err_.queue.empty() ? err_.fd : -1, POLLOUT, 0};

    if (poll(p, kCount, -1) < 0) {
      if (errno == EINTR) continue;
      Finish(Outcome::kFailed, 255, vc::Format("poll: %s", std::strerror(errno)));
      return outcome_;
    }
    if (p[kDaemon].revents & POLLOUT) SendToDaemon();
    if (!finished_ && (p[kDaemon].revents & (POLLIN | POLLHUP | POLLERR))) {
      if (daemon_events & POLLIN) ReadDaemon();
      else SendToDaemon();  // writing only: the send reports the broken connection
    }
    if (!finished_ && p[kSignals].revents) ReadSignals();
    if (!finished_ && p[kInput].revents) ReadInput();
    if (p[kOut].revents) Drain(out_);
    if (p[kErr].revents) Drain(err_);
    if (!finished_ && !to_daemon_.empty()) SendToDaemon();
  }
}

void Relay::Finish(Outcome::Kind kind, int value, std::string message) {
  if (finished_) return;
  finished_ = true;
  outcome_.kind = kind;
  outcome_.value = value;
  outcome_.message = std::move(message);
}

void Relay::SendToDaemon() {
  while (!to_daemon_.empty()) {
    ssize_t n = send(fds_.daemon, to_daemon_.front(), to_daemon_.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return;
      Lose(std::strerror(errno));
      return;
    }
    to_daemon_.Consume(static_cast<size_t>(n));
  }
}

void Relay::ReadDaemon() {
  char buf[kReadChunk];
  ssize_t n = read(fds_.daemon, buf, sizeof buf);
  if (n < 0) {
    if (errno == EINTR || errno == EAGAIN) return;
    Lose(std::strerror(errno));
    return;
  }
  if (n == 0) {
    Lose(acked_ ? "it closed before the container's exit status" : "it closed without answering hello");
    return;
  }
  decoder_.Feed(buf, static_cast<size_t>(n));
  Frame f;
  while (!finished_) {
    FrameDecoder::Step step = decoder_.Next(&f);
    if (step == FrameDecoder::Step::kNeedMore) return;
    if (step == FrameDecoder::Step::kError) {
      Finish(Outcome::kFailed, 255, "protocol error from the daemon: " + decoder_.error());
      return;
    }
    HandleFrame(f);
  }
}

void Relay::HandleFrame(const Frame& f) {
  if (!acked_) {
    if (f.type == FrameType::kAck) {
      acked_ = true;
      SignalReady();
      if (fds_.tty >= 0) QueueResize();
    } else if (f.type == FrameType::kError) {
      Finish(Outcome::kFailed, 255, f.payload);
    } else {
      Finish(Outcome::kFailed, 255,
             vc::Format("protocol error from the daemon: frame type %u before ACK", static_cast<unsigned>(f.type)));
    }
    return;
  }
  switch (f.type) {
    case FrameType::kStdout:
      Queue(out_, f.payload);
      break;
    case FrameType::kStderr:
      // With a terminal there is one stream; a daemon that still sends STDERR gets it there.
      Queue(fds_.errors >= 0 ? err_ : out_, f.payload);
      break;
    case FrameType::kExit:
      HandleExit(f.payload);
      break;
    case FrameType::kError:
      Finish(Outcome::kFailed, 255, f.payload);
      break;
    default:  // ACK again; the decoder lets through no other type
      Finish(Outcome::kFailed, 255,
             vc::Format("protocol error from the daemon: unexpected frame type %u", static_cast<unsigned>(f.type)));
      break;
  }
}

void Relay::HandleExit(const std::string& payload) {
  // The decoder checked the length (2).
  const unsigned kind = static_cast<unsigned char>(payload[0]);
  const unsigned value = static_cast<unsigned char>(payload[1]);
  if (kind == 0) {
    Finish(Outcome::kExited, static_cast<int>(value));
  } else if (kind == 1) {
    if (value < 1 || value > static_cast<unsigned>(SIGRTMAX)) {
      Finish(Outcome::kFailed, 255, vc::Format("protocol error from the daemon: EXIT: signal %u out of range", value));
    } else {
      Finish(Outcome::kSignalled, static_cast<int>(value));
    }
  } else {
    Finish(Outcome::kFailed, 255, vc::Format("protocol error from the daemon: EXIT: unknown kind %u", kind));
  }
}

void Relay::ReadInput() {
  char buf[kReadChunk];
  ssize_t n = read(fds_.input, buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n <= 0) {
    // EOF, or an error that will not go away (EIO: the terminal's master was closed): either way
    // the container's stdin has ended.
    input_open_ = false;
    AppendFrame(FrameType::kStdinEof, nullptr, 0, to_daemon_.tail());
  } else {
    AppendFrame(FrameType::kStdin, buf, static_cast<size_t>(n), to_daemon_.tail());
  }
}

void Relay::ReadSignals() {
  signalfd_siginfo si;
  while (read(fds_.signals, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
    if (si.ssi_signo == SIGWINCH) {
      if (fds_.tty >= 0) QueueResize();
      continue;
    }
    const uint8_t sig = static_cast<uint8_t>(si.ssi_signo);
    AppendFrame(FrameType::kSignal, &sig, 1, to_daemon_.tail());
  }
}

void Relay::QueueResize() {
  WindowSize ws = ReadWindowSize(fds_.tty);
  const uint8_t payload[4] = {
      static_cast<uint8_t>(ws.rows >> 8), static_cast<uint8_t>(ws.rows),
      static_cast<uint8_t>(ws.cols >> 8), static_cast<uint8_t>(ws.cols),
  };
  AppendFrame(FrameType::kResize, payload, sizeof payload, to_daemon_.tail());
}

void Relay::SignalReady() {
  if (fds_.ready < 0) return;
  // A starter that is gone (EPIPE) does not matter to the container: the relay goes on.
  const char byte = '\n';
  ssize_t n;
  do {
    n = write(fds_.ready, &byte, 1);
  } while (n < 0 && errno == EINTR);
  close(fds_.ready);
}

void Relay::Queue(Sink& sink, const std::string& bytes) {
  if (sink.closed) return;
  sink.queue.tail()->append(bytes);
  Drain(sink);
}

void Relay::Drain(Sink& sink) {
  // The engine's fds are blocking, and their O_NONBLOCK flag would be shared with whoever else
  // holds them (a user's shell, say). So: write only while poll says writable, PIPE_BUF bytes at
  // a time, which a pipe that polled writable takes whole. An error condition polls "ready" too,
  // and the write then reports it.
  while (!sink.queue.empty()) {
    pollfd p{sink.fd, POLLOUT, 0};
    if (poll(&p, 1, 0) != 1) return;
    const size_t n = std::min(sink.queue.size(), static_cast<size_t>(PIPE_BUF));
    ssize_t w = write(sink.fd, sink.queue.front(), n);
    if (w < 0) {
      if (errno == EINTR || errno == EAGAIN) return;
      sink.closed = true;
      sink.queue.Clear();
      return;
    }
    sink.queue.Consume(static_cast<size_t>(w));
  }
}

}  // namespace

Outcome RunRelay(const std::string& hello_json, const RelayFds& fds) {
  Relay relay(fds);
  return relay.Run(hello_json);
}

}  // namespace holder
