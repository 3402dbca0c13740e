// libFuzzer entry point: the holder's frame decoder, fed bytes a hostile daemon chose, cut into
// reads the way a socket might cut them.
//
// Input: one byte that seeds how the rest is split into reads, then the stream itself. Checked:
// the same frames (and the same error) however the stream is split; every frame the decoder gives
// passes the per-type rules; re-encoding the frames gives back exactly the bytes they came from;
// after an error the decoder never yields another frame; it never holds more than the input.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "holder/frame.h"

namespace {

void require(bool ok) {
  if (!ok) __builtin_trap();
}

struct Decoded {
  std::vector<holder::Frame> frames;
  bool failed = false;
  std::string error;
};

// Feeds `data` in pieces whose sizes come from `seed` (0: all at once), taking frames as they come.
Decoded Decode(const uint8_t* data, size_t size, uint32_t seed) {
  Decoded d;
  holder::FrameDecoder decoder;
  size_t at = 0;
  uint32_t state = seed | 1;
  while (at < size && !d.failed) {
    size_t piece = size - at;
    if (seed != 0) {
      state ^= state << 13;
      state ^= state >> 17;
      state ^= state << 5;
      piece = std::min<size_t>(piece, 1 + state % 23);
    }
    decoder.Feed(reinterpret_cast<const char*>(data + at), piece);
    at += piece;
    require(decoder.buffered() <= at);
    holder::Frame f;
    for (;;) {
      holder::FrameDecoder::Step step = decoder.Next(&f);
      if (step == holder::FrameDecoder::Step::kNeedMore) break;
      if (step == holder::FrameDecoder::Step::kError) {
        d.failed = true;
        d.error = decoder.error();
        require(!d.error.empty());
        require(decoder.Next(&f) == holder::FrameDecoder::Step::kError);
        break;
      }
      require(holder::CheckDaemonFrame(static_cast<uint8_t>(f.type), static_cast<uint32_t>(f.payload.size())).empty());
      d.frames.push_back(f);
    }
  }
  return d;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint32_t seed = data[0];
  data++;
  size--;
  const Decoded whole = Decode(data, size, 0);
  const Decoded split = Decode(data, size, seed + 1);
  require(whole.failed == split.failed && whole.error == split.error);
  require(whole.frames.size() == split.frames.size());
  std::string encoded;
  for (size_t i = 0; i < whole.frames.size(); i++) {
    require(whole.frames[i].type == split.frames[i].type && whole.frames[i].payload == split.frames[i].payload);
    holder::AppendFrame(whole.frames[i].type, whole.frames[i].payload, &encoded);
  }
  require(encoded.size() <= size && encoded.compare(0, encoded.size(), reinterpret_cast<const char*>(data), encoded.size()) == 0);
  return 0;
}
