// Incremental reading of a file through one growable buffer, so parsers can
// hand out string_views into it instead of allocating per field. The buffer
// grows only when a single record does not fit, up to a bound.
//
// Thread-safety: none; one reader per pull.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "airlock/cpp/status.hpp"

namespace airlock::connectors::files {

class BufferedFile {
 public:
  static constexpr size_t kDefaultChunk = 1 << 20;

  // Takes ownership of `fd`. `max_record_bytes` bounds the buffer growth.
  BufferedFile(int fd, size_t max_record_bytes, size_t chunk = kDefaultChunk);
  ~BufferedFile();
  BufferedFile(const BufferedFile&) = delete;
  BufferedFile& operator=(const BufferedFile&) = delete;

  // The unread bytes. Valid until the next Fill() or Rewind().
  const char* data() const { return buffer_.data() + begin_; }
  size_t size() const { return end_ - begin_; }
  // True once the file has no bytes beyond data() + size().
  bool eof() const { return eof_; }

  void Consume(size_t n) { begin_ += n; }

  // Reads more bytes after the unread ones (moving them to the front first,
  // growing the buffer when they fill it). Returns the number of new bytes:
  // 0 means end of file. ResourceExhausted when the unread bytes already
  // reach max_record_bytes (one record too large).
  Result<size_t> Fill();

  // Back to the start of the file.
  Status Rewind();

  // Bytes read from the file so far.
  uint64_t bytes_read() const { return bytes_read_; }

 private:
  int fd_;
  size_t max_record_bytes_;
  std::vector<char> buffer_;
  size_t begin_ = 0;
  size_t end_ = 0;
  bool eof_ = false;
  uint64_t bytes_read_ = 0;
};

}  // namespace airlock::connectors::files
