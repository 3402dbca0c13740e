// libFuzzer entry point: the agent's frame decoder (proto::decode, docs/agent-protocol.md
// "Frames") over a byte stream a hostile host chose, cut into reads the way a socket might cut
// them, and consumed the way conn_process_input does (decode at an offset, then move past it).
//
// Input: one byte that seeds how the rest is split into reads, then the stream. Checked: the same
// frames (and the same error) however the stream is split; each frame passes the header rules
// (type REQUEST..STDIN_ACK, payload at most kMaxPayload) and re-encodes to exactly the bytes it
// came from; every shorter prefix of a frame asks for more; a malformed frame says why.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "agent/fuzz/fuzz_check.h"
#include "agent/protocol.h"

namespace {

using agent_fuzz::require;

struct Decoded {
  std::vector<proto::Frame> frames;
  bool malformed = false;
  std::string error;
};

// Feeds `data` in pieces whose sizes come from `seed` (0: all at once), taking frames as they come.
Decoded Decode(const uint8_t* data, size_t size, uint32_t seed) {
  Decoded d;
  std::string buf;
  size_t off = 0, at = 0;
  uint32_t state = seed | 1;
  while (at < size && !d.malformed) {
    size_t piece = size - at;
    if (seed != 0) {
      state ^= state << 13;
      state ^= state >> 17;
      state ^= state << 5;
      piece = std::min<size_t>(piece, 1 + state % 61);
    }
    buf.append(reinterpret_cast<const char*>(data + at), piece);
    at += piece;
    for (;;) {
      proto::Frame f;
      size_t used = 0;
      std::string error;
      const auto* b = reinterpret_cast<const uint8_t*>(buf.data()) + off;
      proto::DecodeResult r = proto::decode(b, buf.size() - off, &f, &used, &error);
      if (r == proto::DecodeResult::kNeedMore) break;
      if (r == proto::DecodeResult::kMalformed) {
        require(!error.empty());
        d.malformed = true;
        d.error = error;
        break;
      }
      require(used >= proto::kHeaderSize && used <= buf.size() - off);
      require(f.type >= proto::kRequest && f.type <= proto::kStdinAck);
      require(f.payload.size() <= proto::kMaxPayload && used == proto::kHeaderSize + f.payload.size());
      d.frames.push_back(f);
      off += used;
    }
  }
  return d;
}

// Every prefix of a whole frame is a valid beginning: the decoder asks for more.
void CheckPrefixes(const std::string& wire) {
  const auto* b = reinterpret_cast<const uint8_t*>(wire.data());
  for (size_t n = 0; n < wire.size(); n = n < 16 ? n + 1 : n * 2) {
    proto::Frame f;
    size_t used = 0;
    std::string error;
    require(proto::decode(b, n, &f, &used, &error) == proto::DecodeResult::kNeedMore);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint32_t seed = data[0];
  data++;
  size--;
  const Decoded whole = Decode(data, size, 0);
  const Decoded split = Decode(data, size, seed + 1);
  require(whole.malformed == split.malformed && whole.error == split.error);
  require(whole.frames.size() == split.frames.size());
  std::string encoded;
  for (size_t i = 0; i < whole.frames.size(); i++) {
    const proto::Frame& f = whole.frames[i];
    require(f.type == split.frames[i].type && f.id == split.frames[i].id && f.payload == split.frames[i].payload);
    std::string one;
    proto::encode(&one, f.type, f.id, f.payload);
    CheckPrefixes(one);
    encoded += one;
  }
  require(encoded.size() <= size && encoded.compare(0, encoded.size(), reinterpret_cast<const char*>(data), encoded.size()) == 0);
  return 0;
}
