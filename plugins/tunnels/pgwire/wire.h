// PostgreSQL protocol v3 framing: building backend messages into an output
// buffer and reading the fields of a frontend message body. Integers are
// big-endian on the wire. Pure functions, no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace airlock::tunnels::pgwire {

// Special request codes sent in place of a protocol version at startup.
inline constexpr int32_t kSslRequestCode = 80877103;
inline constexpr int32_t kGssEncRequestCode = 80877104;
inline constexpr int32_t kCancelRequestCode = 80877102;
inline constexpr int32_t kProtocolVersion3 = 3 << 16;
// The largest startup packet accepted (PostgreSQL's own limit).
inline constexpr size_t kMaxStartupPacket = 10000;

// One ErrorResponse / NoticeResponse.
struct PgError {
  std::string severity = "ERROR";  // ERROR, FATAL
  std::string sqlstate;            // five characters
  std::string message;
  std::string detail;  // optional
  std::string hint;    // optional
};

// Appends backend messages to `out`.
class MessageWriter {
 public:
  explicit MessageWriter(std::string& out) : out_(out) {}

  // Starts a message of `type`; every Put* until End() goes into its body.
  void Begin(char type);
  void End();

  void PutInt8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void PutInt16(int16_t v);
  void PutInt32(int32_t v);
  void PutInt64(int64_t v);
  void PutBytes(std::string_view bytes) { out_.append(bytes); }
  // The string and its terminating NUL (embedded NULs are dropped).
  void PutCString(std::string_view text);

  // Whole messages.
  void Error(const PgError& error);
  void ReadyForQuery(char status);
  void CommandComplete(std::string_view tag);
  void ParameterStatus(std::string_view name, std::string_view value);
  void Simple(char type);  // a message with an empty body
  void CopyData(std::string_view bytes);

 private:
  std::string& out_;
  size_t start_ = 0;
};

// Reads fields from one message body; each getter returns false when the body
// is too short (a protocol violation), after which the reader stays failed.
class BodyReader {
 public:
  explicit BodyReader(std::string_view body) : body_(body) {}

  bool Int16(int16_t* out);
  bool Int32(int32_t* out);
  // A NUL-terminated string (the NUL is consumed, not returned).
  bool CString(std::string_view* out);
  bool Bytes(size_t n, std::string_view* out);
  size_t remaining() const { return body_.size() - pos_; }
  bool done() const { return pos_ == body_.size(); }

 private:
  bool Fail() {
    pos_ = body_.size();
    return false;
  }

  std::string_view body_;
  size_t pos_ = 0;
};

int32_t LoadInt32(const char* p);
int16_t LoadInt16(const char* p);
int64_t LoadInt64(const char* p);

}  // namespace airlock::tunnels::pgwire
