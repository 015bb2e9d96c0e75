#include "buffered_file.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

namespace airlock::connectors::files {

BufferedFile::BufferedFile(int fd, size_t max_record_bytes, size_t chunk)
    : fd_(fd), max_record_bytes_(max_record_bytes), buffer_(chunk) {}

BufferedFile::~BufferedFile() {
  if (fd_ >= 0) ::close(fd_);
}

Result<size_t> BufferedFile::Fill() {
  if (eof_) return size_t{0};
  if (begin_ > 0) {
    std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (end_ == buffer_.size()) {
    if (buffer_.size() >= max_record_bytes_) {
      return Status::ResourceExhausted("a record exceeds " + std::to_string(max_record_bytes_) +
                                       " bytes");
    }
    buffer_.resize(std::min(buffer_.size() * 2, max_record_bytes_));
  }
  for (;;) {
    const ssize_t n = ::read(fd_, buffer_.data() + end_, buffer_.size() - end_);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::Unavailable(std::string("read failed: ") + std::strerror(errno));
    if (n == 0) eof_ = true;
    end_ += static_cast<size_t>(n);
    bytes_read_ += static_cast<uint64_t>(n);
    return static_cast<size_t>(n);
  }
}

Status BufferedFile::Rewind() {
  if (::lseek(fd_, 0, SEEK_SET) != 0) {
    return Status::Unavailable(std::string("seek failed: ") + std::strerror(errno));
  }
  begin_ = end_ = 0;
  eof_ = false;
  bytes_read_ = 0;
  return Status::Ok();
}

}  // namespace airlock::connectors::files
