// Little-endian fields in and out of a byte buffer. The reader never reads past its end: a short
// read records an error naming the field (and where it was), and every later read returns zeros, so
// a decoder reads all its fields and then checks ok() once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"

namespace vmm::snapshot {

class ByteWriter {
 public:
  void u8(uint8_t v) { out_.push_back(v); }
  void u16(uint16_t v) { put(v, 2); }
  void u32(uint32_t v) { put(v, 4); }
  void u64(uint64_t v) { put(v, 8); }
  void bytes(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    out_.insert(out_.end(), b, b + n);
  }
  // A length (u32) and the bytes.
  void blob(const std::string& s) {
    u32(static_cast<uint32_t>(s.size()));
    bytes(s.data(), s.size());
  }
  void pad_to(size_t alignment) {
    while (out_.size() % alignment) out_.push_back(0);
  }
  size_t size() const { return out_.size(); }
  std::vector<uint8_t>& data() { return out_; }

 private:
  void put(uint64_t v, int n) {
    for (int i = 0; i < n; i++) out_.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  std::vector<uint8_t> out_;
};

class ByteReader {
 public:
  // `what` prefixes errors ("snapshot section vm").
  ByteReader(const uint8_t* data, size_t size, std::string what) : p_(data), n_(size), what_(std::move(what)) {}

  uint8_t u8(const char* field) { return static_cast<uint8_t>(get(field, 1)); }
  uint16_t u16(const char* field) { return static_cast<uint16_t>(get(field, 2)); }
  uint32_t u32(const char* field) { return static_cast<uint32_t>(get(field, 4)); }
  uint64_t u64(const char* field) { return get(field, 8); }
  // Copies `n` bytes, or zeros them when fewer are left.
  void bytes(const char* field, void* out, size_t n) {
    if (n == 0) return;  // `out` may be an empty vector's null data()
    if (!take(field, n)) {
      std::memset(out, 0, n);
      return;
    }
    std::memcpy(out, p_ + at_ - n, n);
  }
  // A u32 length, then that many bytes; at most `max` of them.
  std::string blob(const char* field, uint32_t max) {
    uint32_t len = u32(field);
    if (!ok()) return {};
    if (len > max) {
      fail(vc::Format("%s: %s is %u bytes, more than the %u allowed", what_.c_str(), field, len, max));
      return {};
    }
    if (!take(field, len)) return {};
    return std::string(reinterpret_cast<const char*>(p_ + at_ - len), len);
  }

  size_t offset() const { return at_; }
  size_t remaining() const { return n_ - at_; }
  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  const std::string& what() const { return what_; }
  // Records the first error only: it is the one that explains the rest.
  void fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
  }
  // After the last field: bytes left over mean the writer and reader disagree on the layout.
  void expect_end() {
    if (ok() && at_ != n_)
      fail(vc::Format("%s: %zu bytes left over after the last field (at offset %zu of %zu)", what_.c_str(), n_ - at_,
                      at_, n_));
  }
  vc::Status status() const { return ok() ? vc::Status() : vc::Status::Error(error_); }

 private:
  bool take(const char* field, size_t n) {
    if (!ok()) return false;
    if (n > n_ - at_) {
      fail(vc::Format("%s: %s needs %zu bytes at offset %zu, but only %zu are left (truncated)", what_.c_str(), field,
                      n, at_, n_ - at_));
      return false;
    }
    at_ += n;
    return true;
  }
  uint64_t get(const char* field, int n) {
    if (!take(field, n)) return 0;
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v |= static_cast<uint64_t>(p_[at_ - n + i]) << (8 * i);
    return v;
  }

  const uint8_t* p_;
  size_t n_;
  size_t at_ = 0;
  std::string what_;
  std::string error_;
};

}  // namespace vmm::snapshot
