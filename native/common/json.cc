#include "common/json.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <unordered_set>

namespace json {

Value Value::boolean(bool b) {
  Value v;
  v.type_ = Type::kBool;
  v.bool_ = b;
  return v;
}

Value Value::number(double n) {
  Value v;
  v.type_ = Type::kNumber;
  v.number_ = n;
  return v;
}

Value Value::string(std::string s) {
  Value v;
  v.type_ = Type::kString;
  v.string_ = std::move(s);
  return v;
}

Value Value::array() {
  Value v;
  v.type_ = Type::kArray;
  return v;
}

Value Value::object() {
  Value v;
  v.type_ = Type::kObject;
  return v;
}

const Value* Value::find(std::string_view key) const {
  if (type_ != Type::kObject) return nullptr;
  for (const Member& m : members_) {
    if (m.key == key) return &m.value;
  }
  return nullptr;
}

Value& Value::set(std::string key, Value v) {
  for (Member& m : members_) {
    if (m.key == key) {
      m.value = std::move(v);
      return *this;
    }
  }
  members_.push_back(Member{std::move(key), std::move(v)});
  return *this;
}

Value& Value::append_member(std::string key, Value v) {
  members_.push_back(Member{std::move(key), std::move(v)});
  return *this;
}

Value& Value::push(Value v) {
  items_.push_back(std::move(v));
  return *this;
}

// ---------------------------------------------------------------------------------------------
// UTF-8

// Length of the valid UTF-8 sequence starting at s[i], or 0 if the bytes there are not one
// (overlong forms, surrogates and code points above U+10FFFF are invalid).
static size_t utf8_sequence(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  if (c < 0x80) return 1;
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;  // overlong
    if (c == 0xED) hi = 0x9F;  // UTF-16 surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;  // overlong
    if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; k++) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
  }
  return n;
}

bool valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_sequence(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

static void append_utf8(std::string* out, unsigned cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

// ---------------------------------------------------------------------------------------------
// Parser: recursive descent over a string_view; every read is bounds-checked via peek().

namespace {

class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) {}

  bool run(Value* out, std::string* error) {
    skip_ws();
    bool ok = parse_value(out, 0);
    if (ok) {
      skip_ws();
      if (pos_ != s_.size()) ok = fail("unexpected data after the value");
    }
    if (!ok && error) *error = error_ + " at byte " + std::to_string(error_pos_);
    return ok;
  }

 private:
  int peek() const { return pos_ < s_.size() ? static_cast<unsigned char>(s_[pos_]) : -1; }

  bool fail(const char* why) {
    if (error_.empty()) {
      error_ = why;
      error_pos_ = pos_;
    }
    return false;
  }

  void skip_ws() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) {
      pos_++;
    }
  }

  bool literal(const char* word) {
    size_t n = std::strlen(word);
    if (s_.substr(pos_, n) != word) return fail("invalid literal");
    pos_ += n;
    return true;
  }

  bool parse_value(Value* out, int depth) {
    switch (peek()) {
      case '{': return parse_object(out, depth + 1);
      case '[': return parse_array(out, depth + 1);
      case '"': {
        std::string str;
        if (!parse_string(&str)) return false;
        *out = Value::string(std::move(str));
        return true;
      }
      case 't':
        if (!literal("true")) return false;
        *out = Value::boolean(true);
        return true;
      case 'f':
        if (!literal("false")) return false;
        *out = Value::boolean(false);
        return true;
      case 'n':
        if (!literal("null")) return false;
        *out = Value();
        return true;
      case -1: return fail("unexpected end of input");
      default:
        if (peek() == '-' || (peek() >= '0' && peek() <= '9')) return parse_number(out);
        return fail("unexpected character");
    }
  }

  bool parse_object(Value* out, int depth) {
    if (depth > kMaxDepth) return fail("nesting too deep");
    pos_++;  // '{'
    *out = Value::object();
    skip_ws();
    if (peek() == '}') {
      pos_++;
      return true;
    }
    // Duplicate keys are rejected (they make a request ambiguous). Small objects are checked by a
    // linear scan; large ones by a set, so a hostile object cannot make parsing quadratic.
    std::unordered_set<std::string> seen;
    for (;;) {
      skip_ws();
      if (peek() != '"') return fail("expected a string key");
      std::string key;
      if (!parse_string(&key)) return false;
      if (out->members().size() < 16) {
        if (out->find(key)) return fail("duplicate key");
      } else {
        if (seen.empty()) {
          for (const Member& m : out->members()) seen.insert(m.key);
        }
        if (!seen.insert(key).second) return fail("duplicate key");
      }
      skip_ws();
      if (peek() != ':') return fail("expected ':'");
      pos_++;
      skip_ws();
      Value v;
      if (!parse_value(&v, depth)) return false;
      out->append_member(std::move(key), std::move(v));
      skip_ws();
      if (peek() == ',') {
        pos_++;
        continue;
      }
      if (peek() == '}') {
        pos_++;
        return true;
      }
      return fail("expected ',' or '}'");
    }
  }

  bool parse_array(Value* out, int depth) {
    if (depth > kMaxDepth) return fail("nesting too deep");
    pos_++;  // '['
    *out = Value::array();
    skip_ws();
    if (peek() == ']') {
      pos_++;
      return true;
    }
    for (;;) {
      skip_ws();
      Value v;
      if (!parse_value(&v, depth)) return false;
      out->push(std::move(v));
      skip_ws();
      if (peek() == ',') {
        pos_++;
        continue;
      }
      if (peek() == ']') {
        pos_++;
        return true;
      }
      return fail("expected ',' or ']'");
    }
  }

  bool hex4(unsigned* out) {
    if (pos_ + 4 > s_.size()) return fail("truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
      char c = s_[pos_ + i];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= c - '0';
      else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
      else return fail("invalid \\u escape");
    }
    pos_ += 4;
    *out = v;
    return true;
  }

  bool parse_string(std::string* out) {
    pos_++;  // opening quote
    for (;;) {
      int c = peek();
      if (c == -1) return fail("unterminated string");
      if (c == '"') {
        pos_++;
        return true;
      }
      if (c < 0x20) return fail("control character in string");
      if (c == '\\') {
        pos_++;
        int e = peek();
        pos_++;
        switch (e) {
          case '"': out->push_back('"'); break;
          case '\\': out->push_back('\\'); break;
          case '/': out->push_back('/'); break;
          case 'b': out->push_back('\b'); break;
          case 'f': out->push_back('\f'); break;
          case 'n': out->push_back('\n'); break;
          case 'r': out->push_back('\r'); break;
          case 't': out->push_back('\t'); break;
          case 'u': {
            unsigned cp;
            if (!hex4(&cp)) return false;
            if (cp >= 0xDC00 && cp <= 0xDFFF) return fail("unpaired low surrogate");
            if (cp >= 0xD800 && cp <= 0xDBFF) {
              // A high surrogate must be followed by an escaped low surrogate.
              if (s_.substr(pos_, 2) != "\\u") return fail("unpaired high surrogate");
              pos_ += 2;
              unsigned lo;
              if (!hex4(&lo)) return false;
              if (lo < 0xDC00 || lo > 0xDFFF) return fail("unpaired high surrogate");
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            }
            append_utf8(out, cp);
            break;
          }
          default:
            pos_--;
            return fail("invalid escape");
        }
        continue;
      }
      size_t n = utf8_sequence(s_, pos_);
      if (n == 0) return fail("invalid UTF-8");
      out->append(s_.data() + pos_, n);
      pos_ += n;
    }
  }

  bool parse_number(Value* out) {
    size_t start = pos_;
    const auto digits = [&]() {
      size_t from = pos_;
      while (peek() >= '0' && peek() <= '9') pos_++;
      return pos_ > from;
    };
    if (peek() == '-') pos_++;
    if (peek() == '0') {
      pos_++;  // no leading zeros: "0" stands alone
    } else if (!digits()) {
      return fail("invalid number");
    }
    if (peek() == '.') {
      pos_++;
      if (!digits()) return fail("invalid number");
    }
    if (peek() == 'e' || peek() == 'E') {
      pos_++;
      if (peek() == '+' || peek() == '-') pos_++;
      if (!digits()) return fail("invalid number");
    }
    // strtod needs a terminated string; the token is short and already validated.
    std::string token(s_.substr(start, pos_ - start));
    double v = std::strtod(token.c_str(), nullptr);
    if (!std::isfinite(v)) {
      pos_ = start;
      return fail("number out of range");
    }
    *out = Value::number(v);
    return true;
  }

  std::string_view s_;
  size_t pos_ = 0;
  std::string error_;
  size_t error_pos_ = 0;
};

}  // namespace

bool parse(std::string_view text, Value* out, std::string* error) {
  Parser p(text);
  Value v;
  if (!p.run(&v, error)) return false;
  *out = std::move(v);
  return true;
}

// ---------------------------------------------------------------------------------------------
// Serializer

static void serialize_string(std::string_view s, std::string* out) {
  static const char kHex[] = "0123456789abcdef";
  out->push_back('"');
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(static_cast<char>(c));
      i++;
    } else if (c == '\n') {
      out->append("\\n");
      i++;
    } else if (c == '\r') {
      out->append("\\r");
      i++;
    } else if (c == '\t') {
      out->append("\\t");
      i++;
    } else if (c < 0x20 || c == 0x7F) {
      out->append("\\u00");
      out->push_back(kHex[c >> 4]);
      out->push_back(kHex[c & 15]);
      i++;
    } else {
      size_t n = utf8_sequence(s, i);
      if (n == 0) {
        out->append("\xEF\xBF\xBD");  // U+FFFD for a byte that is not valid UTF-8
        i++;
      } else {
        out->append(s.data() + i, n);
        i += n;
      }
    }
  }
  out->push_back('"');
}

static void serialize_number(double n, std::string* out) {
  if (!std::isfinite(n)) {
    out->append("null");
    return;
  }
  char buf[40];
  // Integers up to 2^53 are exact in a double; print them without exponent or fraction.
  if (n == std::floor(n) && std::fabs(n) <= 9007199254740992.0) {
    std::snprintf(buf, sizeof buf, "%.0f", n);
    out->append(buf);
    return;
  }
  // Otherwise the shortest precision that reads back as the same double (4.56, not
  // 4.5599999999999996); 17 digits always do.
  for (int precision = 15; precision <= 17; precision++) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, n);
    if (precision == 17 || std::strtod(buf, nullptr) == n) break;
  }
  out->append(buf);
}

void serialize_to(const Value& v, std::string* out) {
  switch (v.type()) {
    case Type::kNull: out->append("null"); break;
    case Type::kBool: out->append(v.as_bool() ? "true" : "false"); break;
    case Type::kNumber: serialize_number(v.as_number(), out); break;
    case Type::kString: serialize_string(v.as_string(), out); break;
    case Type::kArray: {
      out->push_back('[');
      bool first = true;
      for (const Value& item : v.items()) {
        if (!first) out->push_back(',');
        first = false;
        serialize_to(item, out);
      }
      out->push_back(']');
      break;
    }
    case Type::kObject: {
      out->push_back('{');
      bool first = true;
      for (const Member& m : v.members()) {
        if (!first) out->push_back(',');
        first = false;
        serialize_string(m.key, out);
        out->push_back(':');
        serialize_to(m.value, out);
      }
      out->push_back('}');
      break;
    }
  }
}

std::string serialize(const Value& v) {
  std::string out;
  serialize_to(v, &out);
  return out;
}

}  // namespace json
