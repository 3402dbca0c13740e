// Frame codec of the agent protocol (docs/agent-protocol.md, "Frames"). Pure: no I/O, no state,
// so it can be exercised on arbitrary bytes. The host's counterpart is src/agent/protocol.ts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/json.h"

namespace proto {

enum FrameType : uint8_t {
  kRequest = 1,   // host -> guest, JSON
  kResponse = 2,  // guest -> host, JSON
  kStdin = 3,     // host -> guest, raw; empty = close stdin
  kStdout = 4,    // guest -> host, raw; empty = end of stdout
  kStderr = 5,    // guest -> host, raw; empty = end of stderr
  kExit = 6,      // guest -> host, JSON
  kStdinAck = 7,  // guest -> host, 4-byte big-endian count
};

constexpr size_t kHeaderSize = 12;            // length(4) type(1) flags(1) reserved(2) id(4)
constexpr uint32_t kMaxPayload = 1u << 20;    // 1 MiB
constexpr uint32_t kMinLength = 8;            // `length` counts the 8 header bytes after it
constexpr uint32_t kMaxLength = 8 + kMaxPayload;

struct Frame {
  uint8_t type = 0;
  uint32_t id = 0;
  std::string payload;
};

enum class DecodeResult { kFrame, kNeedMore, kMalformed };

// Decodes the frame at the start of data[0, len).
//  - kFrame: *frame is filled and *consumed is its size on the wire.
//  - kNeedMore: the bytes so far are a valid prefix; call again with more.
//  - kMalformed: *error says why. Header fields are judged as soon as their bytes are present, so
//    a bad length or type is reported without waiting for the bytes the length announces.
// Never reads outside data[0, len).
DecodeResult decode(const uint8_t* data, size_t len, Frame* frame, size_t* consumed,
                    std::string* error);

// Appends one encoded frame to *out. len must not exceed kMaxPayload (callers chunk raw data).
void encode(std::string* out, uint8_t type, uint32_t id, const void* payload, size_t len);
inline void encode(std::string* out, uint8_t type, uint32_t id, const std::string& payload) {
  encode(out, type, id, payload.data(), payload.size());
}

uint32_t read_be32(const uint8_t* p);
void append_be32(std::string* out, uint32_t v);

// "REQUEST", "STDIN", ... or "unknown".
const char* type_name(uint8_t type);

// RESPONSE payloads (docs/agent-protocol.md, "Responses"): {"ok":true,"result":...} and
// {"ok":false,"error":{"code":...,"message":...}}.
std::string ok_payload(const json::Value& result);
std::string error_payload(const std::string& code, const std::string& message);

}  // namespace proto
