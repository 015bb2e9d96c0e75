#include "kernel/api/client_hello.h"

#include <cstdint>

namespace airlock {

namespace {

// Reads big-endian fields from a bounded span; every read past the end
// sets `short_` and yields 0.
class Cursor {
 public:
  explicit Cursor(std::string_view bytes) : bytes_(bytes) {}

  uint32_t Int(size_t width) {
    if (bytes_.size() - at_ < width || short_) {
      short_ = true;
      return 0;
    }
    uint32_t value = 0;
    for (size_t i = 0; i < width; ++i) {
      value = (value << 8) | static_cast<uint8_t>(bytes_[at_ + i]);
    }
    at_ += width;
    return value;
  }

  std::string_view Take(size_t n) {
    if (bytes_.size() - at_ < n || short_) {
      short_ = true;
      return {};
    }
    std::string_view out = bytes_.substr(at_, n);
    at_ += n;
    return out;
  }

  bool short_read() const { return short_; }
  bool done() const { return at_ == bytes_.size(); }

 private:
  std::string_view bytes_;
  size_t at_ = 0;
  bool short_ = false;
};

constexpr uint8_t kHandshakeRecord = 22;
constexpr uint8_t kClientHello = 1;
constexpr uint16_t kAlpnExtension = 16;

}  // namespace

ClientHelloScan ScanClientHello(std::string_view bytes) {
  ClientHelloScan scan;
  using State = ClientHelloScan::State;
  if (bytes.empty()) return scan;
  if (static_cast<uint8_t>(bytes[0]) != kHandshakeRecord) {
    scan.state = State::kNotHello;
    return scan;
  }
  if (bytes.size() < 5) return scan;
  Cursor header(bytes.substr(0, 5));
  header.Int(1);
  const uint32_t major = header.Int(1);
  header.Int(1);
  const uint32_t record_length = header.Int(2);
  if (major != 3 || record_length == 0 || record_length > 16384) {
    scan.state = State::kNotHello;
    return scan;
  }
  if (bytes.size() < 5 + record_length) return scan;  // incomplete
  scan.state = State::kNotHello;
  Cursor record(bytes.substr(5, record_length));
  if (record.Int(1) != kClientHello) return scan;
  const uint32_t hello_length = record.Int(3);
  // A ClientHello longer than its first record is not scanned (offers nothing).
  if (record.short_read()) return scan;
  std::string_view body = record.Take(hello_length);
  if (record.short_read()) {
    scan.state = State::kDone;
    return scan;
  }
  Cursor hello(body);
  hello.Take(2 + 32);        // legacy_version, random
  hello.Take(hello.Int(1));  // legacy_session_id
  hello.Take(hello.Int(2));  // cipher_suites
  hello.Take(hello.Int(1));  // legacy_compression_methods
  if (hello.short_read()) return scan;
  scan.state = State::kDone;
  if (hello.done()) return scan;  // no extensions
  Cursor extensions(hello.Take(hello.Int(2)));
  if (hello.short_read()) {
    scan.state = State::kNotHello;
    return scan;
  }
  while (!extensions.done() && !extensions.short_read()) {
    const uint32_t type = extensions.Int(2);
    std::string_view data = extensions.Take(extensions.Int(2));
    if (extensions.short_read() || type != kAlpnExtension) continue;
    Cursor alpn(data);
    Cursor list(alpn.Take(alpn.Int(2)));
    while (!list.done() && !list.short_read() && scan.protocols.size() < 64) {
      std::string_view name = list.Take(list.Int(1));
      if (list.short_read() || name.empty()) break;
      scan.protocols.emplace_back(name);
    }
  }
  return scan;
}

}  // namespace airlock
