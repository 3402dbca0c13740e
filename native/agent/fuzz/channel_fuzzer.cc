// libFuzzer entry point: the agent's connection layer (native/agent/channel.cc) over the bytes of a
// hostile host, through a real socket: frames decoded from a stream read in pieces, protocol errors
// answered with RESPONSE id 0, and on virtio-serial the session rules (a `hello` always starts a
// new session, even inside a frame cut short; after malformed input, everything up to the next
// `hello` is skipped; the host closing its side between reads).
//
// Input: one byte of settings (bit 7: a socket connection instead of a virtio-serial port; the rest
// seeds the read sizes and when the host goes away), then the stream. The frames reach a small
// stand-in for the request dispatcher (requests.cc: hello, malformed JSON, id 0, a type the host
// does not send), so nothing is ever run. Checked: frames reach only a live connection that is not
// skipping input; a session started by a `hello` in the stream gets that `hello` first; a port
// never has two live sessions; no connection holds more than the bytes fed.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>

#include "agent/agent.h"
#include "agent/channel.h"
#include "agent/fuzz/fuzz_check.h"
#include "agent/log.h"
#include "agent/protocol.h"
#include "common/json.h"

namespace {

using agent_fuzz::require;

struct Run {
  std::set<uint64_t> opened_by_host;  // sessions the harness started (the host connecting)
  std::set<uint64_t> got_frame;       // connections that have had a frame
  size_t fed = 0;
};
Run* g_run = nullptr;

// What handle_frame does with the frames that need no process or container.
void OnFrame(Agent& a, Connection& c, const proto::Frame& f) {
  require(!c.dead && !c.discarding && f.type >= proto::kRequest && f.type <= proto::kStdinAck);
  bool first = g_run->got_frame.insert(c.id).second;
  json::Value req;
  std::string error;
  bool hello = f.type == proto::kRequest && json::parse(f.payload, &req, &error) && req.is_object() &&
               req.find("op") && req.find("op")->as_string() == "hello";
  if (c.serial && first && !g_run->opened_by_host.count(c.id)) require(hello);
  if (f.type == proto::kStdin) return;  // no such process: dropped
  if (f.type != proto::kRequest) return conn_protocol_error(a, c, "frame type not sent by the host");
  if (error.size() || !req.is_object()) return conn_protocol_error(a, c, "bad JSON");
  if (f.id == 0) return conn_protocol_error(a, c, "request id 0");
  if (hello) c.hello = true;
  std::string reply = hello || c.hello ? proto::ok_payload(json::Value::object())
                                       : proto::error_payload("BAD_REQUEST", "hello first");
  conn_send(c, proto::kResponse, f.id, reply.data(), reply.size());
}

int NonBlocking(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  return fd;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static int null_log = [] {
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    log_set_fd(fd);
    return fd;
  }();
  (void)null_log;
  const bool socket_conn = data[0] & 0x80;
  uint32_t state = (data[0] & 0x7f) | 0x100;
  data++;
  size--;

  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) abort();
  NonBlocking(sv[0]);
  NonBlocking(sv[1]);
  Run run;
  g_run = &run;
  {
    Agent a;
    a.on_frame = OnFrame;
    uint64_t socket_id = 0;
    if (socket_conn) {
      socket_id = conn_add(a, dup(sv[0]), false, "unix").id;
    } else {
      SerialPort port;
      port.fd = sv[0];
      port.name = "agent.0";
      port.dev = "/dev/vport0p1";
      a.serial.ports.push_back(port);
    }
    static char drain[64 * 1024];
    size_t at = 0;
    while (at < size) {
      state ^= state << 13;
      state ^= state >> 17;
      state ^= state << 5;
      size_t piece = std::min<size_t>(size - at, 1 + state % 509);
      Connection* c = nullptr;
      if (socket_conn) {
        c = conn_find(a, socket_id);
        if (!c) break;  // dropped after a protocol error
      } else {
        if (a.serial.ports[0].conn == 0) run.opened_by_host.insert(serial_conn_add(a, 0).id);
        c = conn_find(a, a.serial.ports[0].conn);
        require(c != nullptr);
      }
      if (write(sv[1], data + at, piece) != static_cast<ssize_t>(piece)) abort();
      at += piece;
      run.fed += piece;
      conn_on_readable(a, *c);
      if (!socket_conn && state % 13 == 0 && a.serial.ports[0].conn != 0) serial_host_gone(a, 0);
      size_t live = 0;
      for (auto& [id, conn] : a.conns) {
        if (conn->dead) continue;
        live++;
        require(conn->rbuf.size() <= run.fed);
        conn_on_writable(a, *conn);
      }
      require(live <= 1);
      conns_reap_dead(a);
      while (read(sv[1], drain, sizeof drain) > 0) {
      }
    }
    for (auto& [id, conn] : a.conns) conn->dead = true;
    conns_reap_dead(a);
  }
  g_run = nullptr;
  close(sv[0]);
  close(sv[1]);
  return 0;
}
