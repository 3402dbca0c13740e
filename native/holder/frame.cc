#include "frame.h"

#include <cstring>

#include "common/result.h"

namespace holder {

void AppendFrame(FrameType type, const void* payload, size_t length, std::string* out) {
  const uint32_t n = static_cast<uint32_t>(length);
  const char header[kHeaderSize] = {
      static_cast<char>(type),        static_cast<char>(n >> 24), static_cast<char>(n >> 16),
      static_cast<char>(n >> 8),      static_cast<char>(n),
  };
  out->append(header, kHeaderSize);
  out->append(static_cast<const char*>(payload), length);
}

std::string CheckDaemonFrame(uint8_t type, uint32_t length) {
  // Checked before the payload arrives, so a hostile length is refused before anything waits for
  // (or buffers) a megabyte that is never coming.
  if (length > kMaxPayload) {
    return vc::Format("frame type %u: length %u exceeds the %u-byte limit", type, length, kMaxPayload);
  }
  switch (static_cast<FrameType>(type)) {
    case FrameType::kAck:
      if (length != 0) return vc::Format("ACK: length %u, expected 0", length);
      return "";
    case FrameType::kExit:
      if (length != 2) return vc::Format("EXIT: length %u, expected 2", length);
      return "";
    case FrameType::kStdout:
    case FrameType::kStderr:
    case FrameType::kError:
      return "";
    case FrameType::kHello:
    case FrameType::kStdin:
    case FrameType::kStdinEof:
    case FrameType::kSignal:
    case FrameType::kResize:
      return vc::Format("frame type %u is one the holder sends, not one it accepts", type);
  }
  return vc::Format("unknown frame type %u", type);
}

void FrameDecoder::Feed(const char* data, size_t length) {
  // Drop what was consumed before growing, so the buffer never holds more than one partial frame
  // plus one read's worth of bytes.
  if (start_ > 0 && (start_ == buf_.size() || start_ >= buf_.size() / 2)) {
    buf_.erase(0, start_);
    start_ = 0;
  }
  buf_.append(data, length);
}

FrameDecoder::Step FrameDecoder::Next(Frame* frame) {
  if (!error_.empty()) return Step::kError;
  const size_t avail = buf_.size() - start_;
  if (avail < kHeaderSize) return Step::kNeedMore;
  const auto* h = reinterpret_cast<const unsigned char*>(buf_.data() + start_);
  const uint8_t type = h[0];
  const uint32_t length = (static_cast<uint32_t>(h[1]) << 24) | (static_cast<uint32_t>(h[2]) << 16) |
                          (static_cast<uint32_t>(h[3]) << 8) | static_cast<uint32_t>(h[4]);
  error_ = CheckDaemonFrame(type, length);
  if (!error_.empty()) return Step::kError;
  if (avail - kHeaderSize < length) return Step::kNeedMore;
  frame->type = static_cast<FrameType>(type);
  frame->payload.assign(buf_, start_ + kHeaderSize, length);
  start_ += kHeaderSize + length;
  return Step::kFrame;
}

}  // namespace holder
