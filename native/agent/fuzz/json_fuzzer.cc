// libFuzzer entry point: the JSON parser and serializer every request goes through
// (native/common/json.h), on bytes a hostile host chose.
//
// Checked: a parse either succeeds or says why; what parses serializes to valid UTF-8 that parses
// again and serializes to the same text (a fixed point), with every string valid UTF-8 and no
// nesting past kMaxDepth; and any bytes at all, as a string value, serialize to JSON that parses
// back to a valid string.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "agent/fuzz/fuzz_check.h"
#include "common/json.h"

namespace {

using agent_fuzz::require;

// The nesting of containers (a scalar is at depth 0, [1] at depth 1).
int Depth(const json::Value& v) {
  int deepest = 0;
  for (const json::Value& item : v.items()) deepest = std::max(deepest, 1 + Depth(item));
  for (const json::Member& m : v.members()) {
    require(json::valid_utf8(m.key));
    deepest = std::max(deepest, 1 + Depth(m.value));
  }
  if (v.is_array() || v.is_object()) deepest = std::max(deepest, 1);
  if (v.is_string()) require(json::valid_utf8(v.as_string()));
  return deepest;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  json::Value v;
  std::string error;
  if (json::parse(text, &v, &error)) {
    require(Depth(v) <= json::kMaxDepth);
    const std::string once = json::serialize(v);
    require(json::valid_utf8(once));
    json::Value again;
    std::string error2;
    require(json::parse(once, &again, &error2));
    require(json::serialize(again) == once);
  } else {
    require(!error.empty());
  }

  const std::string quoted = json::serialize(json::Value::string(std::string(text)));
  require(json::valid_utf8(quoted));
  json::Value back;
  require(json::parse(quoted, &back, &error) && back.is_string() && json::valid_utf8(back.as_string()));
  if (json::valid_utf8(text)) require(back.as_string() == text);
  return 0;
}
