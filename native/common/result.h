// Errors as values for the VMM, the addon and the host helpers (all build with -fno-exceptions). A failure
// carries one message that names the field and the offending value, e.g.
// "bzImage: setup header version 0x20a is older than 2.12 (0x20c)".
#pragma once

#include <cstdarg>
#include <cstdio>
#include <string>
#include <utility>

namespace vc {

// printf-style message builder for error paths.
inline std::string Format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
inline std::string Format(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return buf;
}

// Success, or an error message.
class Status {
 public:
  Status() = default;
  static Status Error(std::string message) { Status s; s.error_ = std::move(message); s.failed_ = true; return s; }
  bool ok() const { return !failed_; }
  const std::string& error() const { return error_; }

 private:
  std::string error_;
  bool failed_ = false;
};

// A value, or an error message. `value` is default-constructed on failure.
template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit on purpose, `return value;`
  Result(Status failure) : status_(std::move(failure)) {}  // NOLINT: `return Status::Error(...)`
  bool ok() const { return status_.ok(); }
  const std::string& error() const { return status_.error(); }
  const Status& status() const { return status_; }
  const T& value() const { return value_; }
  T& value() { return value_; }
  const T* operator->() const { return &value_; }
  T* operator->() { return &value_; }

 private:
  T value_{};
  Status status_;
};

}  // namespace vc
