// A move-only holder for secret bytes: wiped on destruction, never printable.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "kernel/common/crypto.h"

namespace airlock {

class Secret {
 public:
  Secret() = default;
  // Copies `value` into heap storage that moves by pointer (never a
  // small-string buffer that would leave a copy behind), then wipes `value`.
  explicit Secret(std::string value) : value_(value.begin(), value.end()) {
    SecureWipe(value.data(), value.size());
  }
  ~Secret() { Wipe(); }

  Secret(const Secret&) = delete;
  Secret& operator=(const Secret&) = delete;
  Secret(Secret&& other) noexcept : value_(std::move(other.value_)) { other.Wipe(); }
  Secret& operator=(Secret&& other) noexcept {
    if (this != &other) {
      Wipe();
      value_ = std::move(other.value_);
      other.Wipe();
    }
    return *this;
  }

  // The bytes, for the one place that must use them (a hash, a connection).
  std::string_view Reveal() const { return {value_.data(), value_.size()}; }
  bool empty() const { return value_.empty(); }
  void Wipe() {
    SecureWipe(value_.data(), value_.size());
    value_.clear();
  }

 private:
  std::vector<char> value_;
};

}  // namespace airlock
