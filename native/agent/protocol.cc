#include "protocol.h"

namespace proto {

uint32_t read_be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

void append_be32(std::string* out, uint32_t v) {
  out->push_back(static_cast<char>(v >> 24));
  out->push_back(static_cast<char>(v >> 16));
  out->push_back(static_cast<char>(v >> 8));
  out->push_back(static_cast<char>(v));
}

const char* type_name(uint8_t type) {
  switch (type) {
    case kRequest: return "REQUEST";
    case kResponse: return "RESPONSE";
    case kStdin: return "STDIN";
    case kStdout: return "STDOUT";
    case kStderr: return "STDERR";
    case kExit: return "EXIT";
    case kStdinAck: return "STDIN_ACK";
    default: return "unknown";
  }
}

DecodeResult decode(const uint8_t* data, size_t len, Frame* frame, size_t* consumed,
                    std::string* error) {
  if (len < 4) return DecodeResult::kNeedMore;
  uint32_t length = read_be32(data);
  if (length < kMinLength || length > kMaxLength) {
    *error = "bad frame length " + std::to_string(length);
    return DecodeResult::kMalformed;
  }
  if (len >= 5 && (data[4] < kRequest || data[4] > kStdinAck)) {
    *error = "unknown frame type " + std::to_string(data[4]);
    return DecodeResult::kMalformed;
  }
  if (len >= 6 && data[5] != 0) {
    *error = "non-zero frame flags " + std::to_string(data[5]);
    return DecodeResult::kMalformed;
  }
  if ((len >= 7 && data[6] != 0) || (len >= 8 && data[7] != 0)) {
    *error = "non-zero reserved frame bytes";
    return DecodeResult::kMalformed;
  }
  size_t total = 4 + size_t{length};
  if (len < total) return DecodeResult::kNeedMore;
  frame->type = data[4];
  frame->id = read_be32(data + 8);
  frame->payload.assign(reinterpret_cast<const char*>(data) + kHeaderSize, total - kHeaderSize);
  *consumed = total;
  return DecodeResult::kFrame;
}

void encode(std::string* out, uint8_t type, uint32_t id, const void* payload, size_t len) {
  append_be32(out, static_cast<uint32_t>(8 + len));
  out->push_back(static_cast<char>(type));
  out->push_back(0);  // flags
  out->push_back(0);  // reserved
  out->push_back(0);
  append_be32(out, id);
  out->append(static_cast<const char*>(payload), len);
}

std::string ok_payload(const json::Value& result) {
  std::string payload = "{\"ok\":true,\"result\":";
  json::serialize_to(result, &payload);
  payload.push_back('}');
  return payload;
}

std::string error_payload(const std::string& code, const std::string& message) {
  json::Value err = json::Value::object();
  err.set("code", json::Value::string(code));
  err.set("message", json::Value::string(message));
  json::Value v = json::Value::object();
  v.set("ok", json::Value::boolean(false));
  v.set("error", std::move(err));
  return json::serialize(v);
}

}  // namespace proto
