#include "channel.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "agent.h"
#include "common/json.h"
#include "log.h"
#include "protocol.h"

// --- OutBuffer -------------------------------------------------------------------------------

void OutBuffer::consume(size_t n) {
  off_ += n;
  if (off_ >= data_.size()) {
    clear();
  } else if (off_ >= (64u << 10) && off_ * 2 >= data_.size()) {
    // Compact once the consumed head dominates, so appends do not grow the string forever.
    data_.erase(0, off_);
    off_ = 0;
  }
}

void OutBuffer::clear() {
  data_.clear();
  off_ = 0;
  if (data_.capacity() > (4u << 20)) data_.shrink_to_fit();  // do not pin a burst's memory
}

// --- connections -----------------------------------------------------------------------------

Connection& conn_add(Agent& a, int fd, bool serial, const char* kind) {
  auto c = std::make_unique<Connection>();
  c->id = a.next_conn_id++;
  c->fd = fd;
  c->serial = serial;
  c->kind = kind;
  Connection& ref = *c;
  a.conns[ref.id] = std::move(c);
  return ref;
}

Connection* conn_find(Agent& a, uint64_t id) {
  auto it = a.conns.find(id);
  if (it == a.conns.end() || it->second->dead) return nullptr;
  return it->second.get();
}

void conn_send(Connection& c, uint8_t type, uint32_t id, const void* payload, size_t len) {
  if (c.dead) return;
  proto::encode(c.wbuf.tail(), type, id, payload, len);
}

void conn_drop(Agent& a, Connection& c, const char* why) {
  if (c.dead) return;
  c.dead = true;
  if (c.serial) logf("host disconnected from %s (%s)", c.kind, why);
  if (a.on_conn_gone) a.on_conn_gone(a, c.id);
}

void conn_protocol_error(Agent& a, Connection& c, const std::string& why) {
  logf("%s connection: %s", c.kind, why.c_str());
  // id 0 is never a request id: the host can log this as the reason before it closes.
  std::string payload = proto::error_payload("BAD_REQUEST", why);
  conn_send(c, proto::kResponse, 0, payload.data(), payload.size());
  if (c.serial) {
    c.discarding = true;  // conn_process_input() looks for the next session in what follows
    return;
  }
  c.rbuf.clear();
  conn_on_writable(a, c);  // one best-effort attempt to deliver the reason
  conn_drop(a, c, "protocol error");
}

// `err`: the errno of the failed read or write, 0 for an end of stream.
static void conn_lost(Agent& a, Connection& c, int err) {
  if (c.serial) {
    serial_host_gone(a, c.port);
    return;
  }
  // A vsock socket reset by the transport (a snapshot restore) fails reads with ENOTCONN; the
  // ECONNRESET is in its pending error, which only SO_ERROR reports.
  int pending = 0;
  socklen_t len = sizeof pending;
  bool reset = err == ECONNRESET ||
               (getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &pending, &len) == 0 && pending == ECONNRESET);
  if (reset && a.on_conn_reset) a.on_conn_reset(a, c.kind);
  conn_drop(a, c, err ? strerror(err) : "closed by host");
}

// --- virtio-serial sessions --------------------------------------------------------------------
//
// Each agent port is one byte stream for the VM's lifetime; host sessions follow each other on it. The
// host's close (POLLHUP) is only a level the agent samples, and the next host can connect and
// send its `hello` before the agent has seen the previous one go (or without the agent ever
// seeing it, when the close and the reconnect fall between two polls). So bytes are never thrown
// away on the strength of POLLHUP alone, and a `hello` frame, which every host session starts
// with and sends only then, marks where a new session begins in the stream.

static bool is_hello(const proto::Frame& frame) {
  if (frame.type != proto::kRequest) return false;
  json::Value req;
  std::string error;
  if (!json::parse(frame.payload, &req, &error) || !req.is_object()) return false;
  const json::Value* op = req.find("op");
  return op && op->is_string() && op->as_string() == "hello";
}

static void conn_process_input(Agent& a, Connection& c);

// Ends the session of `old` and starts the next one on the same port with `input` (its bytes
// from a `hello` on).
static void serial_new_session(Agent& a, Connection& old, std::string input) {
  conn_drop(a, old, "a new session began");
  Connection& c = serial_conn_add(a, old.port);
  c.rbuf = std::move(input);
  conn_process_input(a, c);
}

// A hello frame is small; a longer candidate is not waited for.
constexpr uint32_t kHelloMaxLength = 4096;

// The offset of the first whole `hello` frame in buf at or after `from`, or npos.
static size_t serial_find_hello(const std::string& buf, size_t from) {
  const auto* b = reinterpret_cast<const uint8_t*>(buf.data());
  size_t size = buf.size();
  for (size_t i = from; i + proto::kMinLength + 4 <= size; i++) {
    uint32_t len = proto::read_be32(b + i);
    if (len < proto::kMinLength || len > kHelloMaxLength || b[i + 4] != proto::kRequest) continue;
    if ((b[i + 5] | b[i + 6] | b[i + 7]) != 0) continue;
    proto::Frame frame;
    size_t used = 0;
    std::string error;
    if (proto::decode(b + i, size - i, &frame, &used, &error) == proto::DecodeResult::kFrame && is_hello(frame)) return i;
  }
  return std::string::npos;
}

// After malformed input the stream cannot be parsed: everything is thrown away up to the next
// `hello` frame, searched for at every offset (the host closes a connection whose input the agent
// rejected, and the next one starts with hello, possibly before the agent has seen the close).
// Keeps a tail that may be the beginning of one.
static void serial_resync(Agent& a, Connection& c, const char* data, size_t n) {
  c.rbuf.append(data, n);
  const auto* b = reinterpret_cast<const uint8_t*>(c.rbuf.data());
  size_t size = c.rbuf.size(), keep = size;
  for (size_t i = 0; i < size; i++) {
    size_t left = size - i;
    // Cheap checks first: a REQUEST header with zero flags/reserved and a small length.
    if (left >= 4) {
      uint32_t len = proto::read_be32(b + i);
      if (len < proto::kMinLength || len > kHelloMaxLength) continue;
    }
    if (left >= 5 && b[i + 4] != proto::kRequest) continue;
    if (left >= 8 && (b[i + 5] | b[i + 6] | b[i + 7]) != 0) continue;
    proto::Frame frame;
    size_t used = 0;
    std::string error;
    auto r = proto::decode(b + i, left, &frame, &used, &error);
    if (r == proto::DecodeResult::kNeedMore) {
      if (keep == size) keep = i;
    } else if (r == proto::DecodeResult::kFrame && is_hello(frame)) {
      std::string input = c.rbuf.substr(i);
      c.rbuf.clear();
      serial_new_session(a, c, std::move(input));
      return;
    }
  }
  c.rbuf.erase(0, keep);
}

// Bytes that arrived for c.
static void conn_input(Agent& a, Connection& c, const char* data, size_t n) {
  if (c.discarding) {
    if (c.serial) serial_resync(a, c, data, n);
    return;
  }
  c.rbuf.append(data, n);
  conn_process_input(a, c);
}

// Decodes and handles every whole frame in c.rbuf.
static void conn_process_input(Agent& a, Connection& c) {
  size_t off = 0;
  while (!c.dead && !c.discarding) {
    proto::Frame frame;
    size_t used = 0;
    std::string error;
    auto r = proto::decode(reinterpret_cast<const uint8_t*>(c.rbuf.data()) + off,
                           c.rbuf.size() - off, &frame, &used, &error);
    if (r == proto::DecodeResult::kNeedMore) {
      // virtio-serial: a frame cut short by a client that died takes the next session's bytes as
      // its own and would wait for the rest for ever; the host sends its hello again every few
      // seconds, so a whole hello inside the unfinished frame starts the next session.
      if (c.serial && c.hello) {
        size_t at = serial_find_hello(c.rbuf, off + 1);
        if (at != std::string::npos) {
          serial_new_session(a, c, c.rbuf.substr(at));
          return;
        }
      }
      break;
    }
    size_t start = off;
    if (r == proto::DecodeResult::kMalformed) {
      conn_protocol_error(a, c, "malformed frame: " + error);
    } else if (c.serial && c.hello && is_hello(frame)) {
      serial_new_session(a, c, c.rbuf.substr(start));
      return;
    } else {
      off += used;
      a.on_frame(a, c, frame);
    }
    if (c.discarding && !c.dead) {
      // Input rejected (virtio-serial): the next session's hello may follow, or even lie inside
      // the rejected frame, which may have taken its bytes for the rest of a frame cut short.
      std::string rest = c.rbuf.substr(start + 1);
      c.rbuf.clear();
      serial_resync(a, c, rest.data(), rest.size());
      return;
    }
  }
  if (!c.dead && !c.discarding) c.rbuf.erase(0, off);
}

void conn_on_readable(Agent& a, Connection& c) {
  static char buf[64 * 1024];
  // A few reads per wakeup at most, so one busy connection cannot starve the others.
  for (int round = 0; round < 4 && !c.dead; round++) {
    ssize_t n = read(c.fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return;
      conn_lost(a, c, errno);
      return;
    }
    if (n == 0) {
      conn_lost(a, c, 0);
      return;
    }
    conn_input(a, c, buf, static_cast<size_t>(n));
    if (static_cast<size_t>(n) < sizeof buf) return;
  }
}

void conn_on_writable(Agent& a, Connection& c) {
  while (!c.dead && !c.wbuf.empty()) {
    ssize_t n = write(c.fd, c.wbuf.data(), c.wbuf.size());
    if (n > 0) {
      c.wbuf.consume(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    // virtio-serial also answers EAGAIN while no host is connected; POLLHUP tells us that.
    if (n < 0 && errno == EAGAIN) return;
    conn_lost(a, c, n < 0 ? errno : EPIPE);
    return;
  }
}

void conns_reap_dead(Agent& a) {
  for (auto it = a.conns.begin(); it != a.conns.end();) {
    if (it->second->dead) {
      if (!it->second->serial) close(it->second->fd);
      it = a.conns.erase(it);
    } else {
      ++it;
    }
  }
}

void conns_flush_all(Agent& a, int timeout_ms) {
  int64_t deadline = monotonic_ms() + timeout_ms;
  for (;;) {
    std::vector<pollfd> fds;
    std::vector<Connection*> owners;
    for (auto& [id, c] : a.conns) {
      if (c->dead || c->wbuf.empty()) continue;
      conn_on_writable(a, *c);
      if (c->dead || c->wbuf.empty()) continue;
      fds.push_back(pollfd{c->fd, POLLOUT, 0});
      owners.push_back(c.get());
    }
    int64_t left = deadline - monotonic_ms();
    if (fds.empty() || left <= 0) return;
    // virtio-serial with no host reports POLLHUP immediately; give up on it rather than spin.
    if (poll(fds.data(), fds.size(), static_cast<int>(left)) < 0 && errno != EINTR) return;
    for (size_t i = 0; i < fds.size(); i++) {
      if (fds[i].revents & (POLLHUP | POLLERR)) owners[i]->wbuf.clear();
    }
  }
}

// --- listeners -------------------------------------------------------------------------------

int listen_unix(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    logf("unix socket path too long or empty: %s", path.c_str());
    return -1;
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    logf("socket(AF_UNIX): %s", strerror(errno));
    return -1;
  }
  // A stale socket from an earlier run would make bind fail; remove it, but nothing else.
  struct stat st;
  if (lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) unlink(path.c_str());
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0 || listen(fd, 64) < 0) {
    logf("listen on %s: %s", path.c_str(), strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

int listen_vsock(uint32_t port) {
  int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    logf("vsock unavailable: socket: %s", strerror(errno));
    return -1;
  }
  sockaddr_vm addr{};
  addr.svm_family = AF_VSOCK;
  addr.svm_port = port;
  addr.svm_cid = VMADDR_CID_ANY;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0 || listen(fd, 64) < 0) {
    logf("vsock unavailable: listen on port %u: %s", port, strerror(errno));
    close(fd);
    return -1;
  }
  logf("listening on vsock port %u", port);
  return fd;
}

bool vsock_device_present() {
  // The driver's sysfs directory lists the devices bound to it (as virtioN links); binding happens
  // while its module loads, so this is settled once /etc/vc-modules has been processed.
  DIR* d = opendir("/sys/bus/virtio/drivers/vmw_vsock_virtio_transport");
  if (!d) return false;
  bool found = false;
  while (dirent* e = readdir(d)) {
    if (std::strncmp(e->d_name, "virtio", 6) == 0) found = true;
  }
  closedir(d);
  return found;
}

void listener_accept(Agent& a, int fd, const char* kind) {
  // Out of fds, a pending connection would keep the listener readable and the loop spinning. A
  // spare fd, given up for a moment, lets us accept it and close it at once instead.
  static int spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
  for (int i = 0; i < 16; i++) {
    int c = accept4(fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c >= 0) {
      conn_add(a, c, false, kind);
      continue;
    }
    if (errno == EINTR || errno == ECONNABORTED) continue;
    if (errno == EAGAIN) return;
    logf("accept on %s: %s", kind, strerror(errno));
    if ((errno == EMFILE || errno == ENFILE) && spare >= 0) {
      close(spare);
      c = accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (c >= 0) close(c);
      spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
    }
    return;
  }
}

// --- virtio-serial ---------------------------------------------------------------------------

Connection& serial_conn_add(Agent& a, size_t port) {
  SerialPort& s = a.serial.ports[port];
  Connection& c = conn_add(a, s.fd, true, s.name.c_str());
  c.port = port;
  s.conn = c.id;
  logf("host connected on %s (%s)", s.name.c_str(), s.dev.c_str());
  return c;
}

void serial_host_gone(Agent& a, size_t port) {
  SerialPort& s = a.serial.ports[port];
  // Whole frames the host sent before closing still count, as a socket's data before EOF does
  // (say, a `shutdown` or an end of stdin); their responses are never written, since nobody is
  // there to read them. read() hands them out, then returns 0 while the host stays away (the
  // partial frame at the end goes with the session), or fails with EAGAIN once a host is back.
  // Bytes of that next session may be among those read here: a `hello` among them starts it (see
  // conn_process_input), and what comes after stays in the port for it.
  uint64_t gone = s.conn;
  static char buf[64 * 1024];
  for (int i = 0; i < 1024; i++) {  // a bound for safety only
    Connection* c = conn_find(a, s.conn);
    if (!c) break;
    ssize_t n = read(c->fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    conn_input(a, *c, buf, static_cast<size_t>(n));
  }
  if (s.conn != gone) return;  // the next session has begun already
  if (Connection* c = conn_find(a, gone)) conn_drop(a, *c, "port closed");
  s.conn = 0;
}
