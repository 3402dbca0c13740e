// Connections to the host: framing on a byte stream, write buffering, the host sessions on a
// virtio-serial port, and the vsock / Unix listeners. Finding the ports: serial_ports.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

struct Agent;

// Frames waiting to be written to one connection.
class OutBuffer {
 public:
  size_t size() const { return data_.size() - off_; }
  bool empty() const { return size() == 0; }
  const char* data() const { return data_.data() + off_; }
  std::string* tail() { return &data_; }  // append target for proto::encode
  void consume(size_t n);
  void clear();

 private:
  std::string data_;
  size_t off_ = 0;
};

// Output of processes is read only while their connection has less than this waiting, so a slow
// host throttles processes through their pipes (protocol: "Flow control").
constexpr size_t kConnOutputHighWater = 1u << 20;
// Requests are not read while this much (responses, acks) waits for the host to read.
constexpr size_t kConnInputPause = 4u << 20;

struct Connection {
  uint64_t id = 0;
  int fd = -1;
  bool serial = false;      // fd belongs to the SerialPort and outlives this connection
  size_t port = 0;          // serial: index of that port in Agent::serial.ports
  const char* kind = "";    // for logs
  bool hello = false;       // `hello` answered; other requests allowed
  bool dead = false;        // dropped; erased (and closed) by conns_reap_dead()
  bool discarding = false;  // serial after malformed input: ignore input up to the next `hello`
  std::string rbuf;         // received bytes not yet forming a whole frame
  OutBuffer wbuf;
};

Connection& conn_add(Agent& a, int fd, bool serial, const char* kind);
// nullptr when no such connection or when it has been dropped.
Connection* conn_find(Agent& a, uint64_t id);
void conn_send(Connection& c, uint8_t type, uint32_t id, const void* payload, size_t len);
void conn_on_readable(Agent& a, Connection& c);
void conn_on_writable(Agent& a, Connection& c);
// Marks the connection dead and calls Agent::on_conn_gone (its processes detach and keep running,
// its waits are forgotten).
void conn_drop(Agent& a, Connection& c, const char* why);
// Input that cannot be trusted any more: tell the host why (RESPONSE id 0), then drop the
// connection (sockets) or ignore its input until the next session's `hello` (virtio-serial).
void conn_protocol_error(Agent& a, Connection& c, const std::string& why);
void conns_reap_dead(Agent& a);
// Writes what it can to every connection, waiting up to timeout_ms for slow ones (shutdown).
void conns_flush_all(Agent& a, int timeout_ms);

int listen_unix(const std::string& path);  // -1 on failure (logged)
int listen_vsock(uint32_t port);           // -1 on failure (logged)
void listener_accept(Agent& a, int fd, const char* kind);
// Whether a virtio-vsock device is bound, i.e. whether a host can reach the vsock listener (the
// listen itself succeeds as soon as AF_VSOCK exists, device or not).
bool vsock_device_present();

// The host closed its side of serial port `port`: handle the whole frames it left, then drop the
// session, unless the next session's `hello` came among them. Nothing read from the port is
// discarded unparsed: a `hello` on the port always starts a new session (the host may be back
// before the agent notices it was away, or the agent may never see it away).
void serial_host_gone(Agent& a, size_t port);
// A Connection for the host session now starting on ports[port], recorded as the port's current one.
Connection& serial_conn_add(Agent& a, size_t port);
