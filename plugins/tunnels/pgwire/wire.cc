#include "wire.h"

namespace airlock::tunnels::pgwire {

void MessageWriter::Begin(char type) {
  out_.push_back(type);
  start_ = out_.size();
  out_.append(4, '\0');  // length, patched by End()
}

void MessageWriter::End() {
  const uint32_t length = static_cast<uint32_t>(out_.size() - start_);
  out_[start_] = static_cast<char>((length >> 24) & 0xff);
  out_[start_ + 1] = static_cast<char>((length >> 16) & 0xff);
  out_[start_ + 2] = static_cast<char>((length >> 8) & 0xff);
  out_[start_ + 3] = static_cast<char>(length & 0xff);
}

void MessageWriter::PutInt16(int16_t v) {
  const uint16_t u = static_cast<uint16_t>(v);
  out_.push_back(static_cast<char>(u >> 8));
  out_.push_back(static_cast<char>(u & 0xff));
}

void MessageWriter::PutInt32(int32_t v) {
  const uint32_t u = static_cast<uint32_t>(v);
  for (int shift = 24; shift >= 0; shift -= 8)
    out_.push_back(static_cast<char>((u >> shift) & 0xff));
}

void MessageWriter::PutInt64(int64_t v) {
  const uint64_t u = static_cast<uint64_t>(v);
  for (int shift = 56; shift >= 0; shift -= 8)
    out_.push_back(static_cast<char>((u >> shift) & 0xff));
}

void MessageWriter::PutCString(std::string_view text) {
  for (char c : text) {
    if (c != '\0') out_.push_back(c);
  }
  out_.push_back('\0');
}

void MessageWriter::Error(const PgError& error) {
  Begin('E');
  PutInt8('S');
  PutCString(error.severity);
  PutInt8('V');
  PutCString(error.severity);
  PutInt8('C');
  PutCString(error.sqlstate);
  PutInt8('M');
  PutCString(error.message);
  if (!error.detail.empty()) {
    PutInt8('D');
    PutCString(error.detail);
  }
  if (!error.hint.empty()) {
    PutInt8('H');
    PutCString(error.hint);
  }
  PutInt8(0);
  End();
}

void MessageWriter::ReadyForQuery(char status) {
  Begin('Z');
  PutInt8(static_cast<uint8_t>(status));
  End();
}

void MessageWriter::CommandComplete(std::string_view tag) {
  Begin('C');
  PutCString(tag);
  End();
}

void MessageWriter::CopyData(std::string_view bytes) {
  Begin('d');
  PutBytes(bytes);
  End();
}

void MessageWriter::ParameterStatus(std::string_view name, std::string_view value) {
  Begin('S');
  PutCString(name);
  PutCString(value);
  End();
}

void MessageWriter::Simple(char type) {
  Begin(type);
  End();
}

int32_t LoadInt32(const char* p) {
  const auto b = [&](int i) { return static_cast<uint32_t>(static_cast<uint8_t>(p[i])); };
  return static_cast<int32_t>((b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3));
}

int16_t LoadInt16(const char* p) {
  const auto b = [&](int i) { return static_cast<uint16_t>(static_cast<uint8_t>(p[i])); };
  return static_cast<int16_t>(static_cast<uint16_t>((b(0) << 8) | b(1)));
}

int64_t LoadInt64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<uint8_t>(p[i]);
  return static_cast<int64_t>(v);
}

bool BodyReader::Int16(int16_t* out) {
  if (remaining() < 2) return Fail();
  *out = LoadInt16(body_.data() + pos_);
  pos_ += 2;
  return true;
}

bool BodyReader::Int32(int32_t* out) {
  if (remaining() < 4) return Fail();
  *out = LoadInt32(body_.data() + pos_);
  pos_ += 4;
  return true;
}

bool BodyReader::CString(std::string_view* out) {
  const size_t nul = body_.find('\0', pos_);
  if (nul == std::string_view::npos) return Fail();
  *out = body_.substr(pos_, nul - pos_);
  pos_ = nul + 1;
  return true;
}

bool BodyReader::Bytes(size_t n, std::string_view* out) {
  if (remaining() < n) return Fail();
  *out = body_.substr(pos_, n);
  pos_ += n;
  return true;
}

}  // namespace airlock::tunnels::pgwire
