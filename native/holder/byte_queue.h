// Bytes waiting for a writer that may take them a little at a time (a socket, a pipe). Consumed
// bytes are dropped from the front in bulk, so the queue costs O(1) per byte without a ring.
#pragma once

#include <cstddef>
#include <string>

namespace holder {

class ByteQueue {
 public:
  size_t size() const { return data_.size() - start_; }
  bool empty() const { return size() == 0; }
  const char* front() const { return data_.data() + start_; }
  std::string* tail() { return &data_; }  // append here
  void Consume(size_t n) {
    start_ += n;
    if (start_ == data_.size()) {
      data_.clear();
      start_ = 0;
    } else if (start_ > 64 * 1024 && start_ > data_.size() / 2) {
      data_.erase(0, start_);
      start_ = 0;
    }
  }
  void Clear() {
    data_.clear();
    data_.shrink_to_fit();
    start_ = 0;
  }

 private:
  std::string data_;
  size_t start_ = 0;
};

}  // namespace holder
