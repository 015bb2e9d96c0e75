// A string that holds secret bytes (a resolved webhook secret, a Slack URL, a
// password, a header or a MAC computed from them) and overwrites them when it
// goes away, so they do not linger in freed heap memory.
#pragma once

#include <string>
#include <string_view>

#include <openssl/crypto.h>

namespace airlock::notifiers {

class WipedString {
 public:
  WipedString() = default;
  explicit WipedString(std::string_view text) : text_(text) {}
  ~WipedString() { Wipe(); }
  WipedString(const WipedString&) = delete;
  WipedString& operator=(const WipedString&) = delete;

  std::string& str() { return text_; }
  const std::string& str() const { return text_; }
  const char* c_str() const { return text_.c_str(); }
  std::string_view view() const { return text_; }
  bool empty() const { return text_.empty(); }

  void Wipe() {
    // The whole capacity: earlier, longer contents may still sit behind size().
    text_.resize(text_.capacity());
    if (!text_.empty()) OPENSSL_cleanse(text_.data(), text_.size());
    text_.clear();
  }

 private:
  std::string text_;
};

}  // namespace airlock::notifiers
