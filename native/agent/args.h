// Typed access to request arguments (docs/agent-protocol.md, "Requests"). Each getter returns false
// after recording a BAD_REQUEST message that names the argument. null counts as absent
// (JSON.stringify keeps null but drops undefined, so hosts may send either for an optional
// argument). Nested objects get their own Args whose messages name "outer.inner".
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "common/json.h"

class Args {
 public:
  explicit Args(const json::Value& req, std::string prefix = "")
      : req_(req), prefix_(std::move(prefix)) {}
  const std::string& error() const { return error_; }

  const json::Value* get(const char* name) const {
    const json::Value* v = req_.find(name);
    return v && !v->is_null() ? v : nullptr;
  }

  // The full name of an argument as the host knows it (with the prefix of a nested object).
  std::string name(const char* n) const { return prefix_ + n; }

  // Records a BAD_REQUEST reason for an argument the caller checked itself.
  bool fail(const char* n, const std::string& what) {
    error_ = name(n) + ": " + what;
    return false;
  }

  bool integer(const char* n, bool required, double lo, double hi, int64_t* out,
               bool* present = nullptr) {
    const json::Value* v = get(n);
    if (present) *present = v != nullptr;
    if (!v) return required ? fail(n, "missing") : true;
    double d = v->as_number();
    if (!v->is_number() || d != std::floor(d) || d < lo || d > hi) {
      return fail(n, "expected an integer from " + fmt(lo) + " to " + fmt(hi) + ", got " + got(*v));
    }
    *out = static_cast<int64_t>(d);
    return true;
  }

  bool process_id(uint32_t* out) {
    int64_t v = 0;
    if (!integer("process", true, 1, 4294967295.0, &v)) return false;
    *out = static_cast<uint32_t>(v);
    return true;
  }

  bool boolean(const char* n, bool* out) {
    const json::Value* v = get(n);
    if (!v) return true;
    if (!v->is_bool()) return fail(n, "expected a boolean, got " + got(*v));
    *out = v->as_bool();
    return true;
  }

  // Strings end up in execve()/chdir()/mount(), which cannot carry NUL bytes.
  bool string(const char* n, std::string* out, bool required = false, bool* present = nullptr) {
    const json::Value* v = get(n);
    if (present) *present = v != nullptr;
    if (!v) return required ? fail(n, "missing") : true;
    if (!v->is_string()) return fail(n, "expected a string, got " + got(*v));
    if (v->as_string().find('\0') != std::string::npos) return fail(n, "contains a NUL byte");
    *out = v->as_string();
    return true;
  }

  bool string_array(const char* n, bool required, std::vector<std::string>* out,
                    bool* present = nullptr) {
    const json::Value* v = get(n);
    if (present) *present = v != nullptr;
    if (!v) return required ? fail(n, "missing") : true;
    if (!v->is_array()) return fail(n, "expected an array of strings, got " + got(*v));
    for (size_t i = 0; i < v->items().size(); i++) {
      const json::Value& item = v->items()[i];
      std::string at = std::string(n) + "[" + std::to_string(i) + "]";
      if (!item.is_string()) return fail(at.c_str(), "expected a string, got " + got(item));
      if (item.as_string().find('\0') != std::string::npos) {
        return fail(at.c_str(), "contains a NUL byte");
      }
      out->push_back(item.as_string());
    }
    return true;
  }

  // An optional nested object; *out stays nullptr when absent.
  bool object(const char* n, const json::Value** out, bool required = false) {
    const json::Value* v = get(n);
    if (!v) return required ? fail(n, "missing") : true;
    if (!v->is_object()) return fail(n, "expected an object, got " + got(*v));
    *out = v;
    return true;
  }

  // Adopts the first error of a nested Args, so the caller has one place to read it from.
  bool take(const Args& nested) {
    error_ = nested.error_;
    return false;
  }

 private:
  static std::string fmt(double d) { return std::to_string(static_cast<int64_t>(d)); }

 public:
  // The value as JSON, cut to 40 bytes, for messages.
  static std::string got(const json::Value& v) {
    std::string s = json::serialize(v);
    return s.size() > 40 ? s.substr(0, 37) + "..." : s;
  }

 private:

  const json::Value& req_;
  std::string prefix_;
  std::string error_;
};

// "K=V" entries with a non-empty key; false with the BAD_REQUEST reason naming "env[i]".
inline bool check_env(Args& args, const std::vector<std::string>& env) {
  for (size_t i = 0; i < env.size(); i++) {
    if (env[i].find('=') == std::string::npos || env[i][0] == '=') {
      std::string at = "env[" + std::to_string(i) + "]";
      return args.fail(at.c_str(), "expected \"KEY=VALUE\"");
    }
  }
  return true;
}
