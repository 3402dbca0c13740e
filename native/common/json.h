// A minimal, strict JSON value type, parser and serializer for the agent protocol.
//
// Written here rather than taken from a library because the agent is a static PID-1 binary with no
// third-party dependencies, and because its parser sees bytes from the host: it must reject anything
// that is not RFC 8259 JSON in valid UTF-8, bound its recursion, and never crash.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace json {

enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };

struct Member;

class Value {
 public:
  Value() = default;  // null
  static Value boolean(bool b);
  static Value number(double n);
  static Value string(std::string s);
  static Value array();
  static Value object();

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::kNull; }
  bool is_bool() const { return type_ == Type::kBool; }
  bool is_number() const { return type_ == Type::kNumber; }
  bool is_string() const { return type_ == Type::kString; }
  bool is_array() const { return type_ == Type::kArray; }
  bool is_object() const { return type_ == Type::kObject; }

  // Accessors return a neutral value (false, 0, "", empty) on a type mismatch; callers check the
  // type first when it matters.
  bool as_bool() const { return type_ == Type::kBool && bool_; }
  double as_number() const { return type_ == Type::kNumber ? number_ : 0; }
  const std::string& as_string() const { return string_; }
  const std::vector<Value>& items() const { return items_; }
  const std::vector<Member>& members() const { return members_; }

  // Object member lookup (linear: protocol objects have a handful of keys); nullptr when absent
  // or when this is not an object.
  const Value* find(std::string_view key) const;

  // Builders. set() replaces an existing key so serialized objects never hold duplicates.
  Value& set(std::string key, Value v);
  Value& push(Value v);
  // Appends without the duplicate check of set(); for the parser, which checks keys itself.
  Value& append_member(std::string key, Value v);

 private:
  Type type_ = Type::kNull;
  bool bool_ = false;
  double number_ = 0;
  std::string string_;
  std::vector<Value> items_;
  std::vector<Member> members_;
};

struct Member {
  std::string key;
  Value value;
};

// Nesting deeper than this is rejected, which bounds the parser's recursion.
constexpr int kMaxDepth = 64;

// Parses exactly one JSON value (surrounding whitespace allowed, nothing else). Rejects invalid
// UTF-8, unpaired surrogate escapes, control characters in strings, duplicate object keys, numbers
// outside the double range, and nesting beyond kMaxDepth. On failure returns false and sets *error
// to a short reason with the byte offset.
bool parse(std::string_view text, Value* out, std::string* error);

// Compact serialization. Integral numbers print without a fraction; non-finite numbers print as
// null; bytes of strings that are not valid UTF-8 are replaced by U+FFFD so the output is always
// valid JSON.
std::string serialize(const Value& v);
void serialize_to(const Value& v, std::string* out);

// Whether `s` is valid UTF-8 by the parser's rules (a string that serializes unchanged).
bool valid_utf8(std::string_view s);

}  // namespace json
