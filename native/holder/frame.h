// The holder <-> daemon wire format (docs/holder.md, "Protocol"): on a Unix stream
// socket, both directions, `u8 type | u32 big-endian length | payload[length]`.
//
// The decoder sees bytes from the daemon, which the holder trusts less than nothing: a length
// beyond kMaxPayload, a type it does not know, or a payload of the wrong size for its type is a
// protocol error that ends the connection, never an allocation or a read past the buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace holder {

enum class FrameType : uint8_t {
  kHello = 1,     // holder -> daemon: JSON {id, exec, tty, rows, cols}
  kAck = 2,       // daemon -> holder: empty, hello accepted
  kStdin = 3,     // holder -> daemon: bytes from fd 0 (or the pty slave)
  kStdinEof = 4,  // holder -> daemon: empty
  kStdout = 5,    // daemon -> holder: bytes for fd 1 (or the pty slave)
  kStderr = 6,    // daemon -> holder: bytes for fd 2
  kSignal = 7,    // holder -> daemon: u8 signal number
  kResize = 8,    // holder -> daemon: u16 BE rows, u16 BE cols
  kError = 9,     // daemon -> holder: UTF-8 message
  kExit = 10,     // daemon -> holder: u8 kind (0 exited, 1 signalled), u8 value
};

constexpr size_t kHeaderSize = 5;
constexpr uint32_t kMaxPayload = 1u << 20;

// What the daemon may send; anything else from it is a protocol error.
struct Frame {
  FrameType type;
  std::string payload;
};

// Appends one frame to `out`. The holder's own payloads never exceed kMaxPayload (its reads are
// smaller), which the caller guarantees.
void AppendFrame(FrameType type, const void* payload, size_t length, std::string* out);
inline void AppendFrame(FrameType type, const std::string& payload, std::string* out) {
  AppendFrame(type, payload.data(), payload.size(), out);
}

// Splits the daemon's byte stream into checked frames. Feed it what the socket gave, then take
// frames until Next() says there is no whole one left.
class FrameDecoder {
 public:
  enum class Step { kFrame, kNeedMore, kError };

  void Feed(const char* data, size_t length);
  // kFrame: *frame holds the next frame. kNeedMore: wait for more bytes. kError: error() says
  // what was wrong; the stream cannot be trusted past that point.
  Step Next(Frame* frame);
  const std::string& error() const { return error_; }
  // Bytes held that do not yet make a whole frame (a frame is at most kHeaderSize + kMaxPayload).
  size_t buffered() const { return buf_.size() - start_; }

 private:
  std::string buf_;
  size_t start_ = 0;
  std::string error_;
};

// The per-type payload rule for daemon -> holder frames: "" when `type`/`length` fit, else why not.
std::string CheckDaemonFrame(uint8_t type, uint32_t length);

}  // namespace holder
