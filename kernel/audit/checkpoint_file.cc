#include "kernel/audit/checkpoint_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>

namespace airlock {
namespace {

// A checkpoint line is about 330 bytes; anything much longer is not one.
constexpr size_t kMaxCheckpointLine = 4096;
// Shipped files may be whole syslog files: their lines are bounded too.
constexpr size_t kMaxShippedLine = 1u << 20;
constexpr size_t kReadChunk = 1u << 16;

// Calls `on_line(number, text)` for every complete line of `path`;
// returns the bytes after the last newline (a torn tail) through `rest`.
Status ForEachLine(const std::string& path, bool* exists, uint64_t* good_end_offset,
                   std::string* rest,
                   const std::function<bool(uint64_t, std::string_view)>& on_line) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) {
      *exists = false;
      return Status::Ok();
    }
    return Status::Unavailable("cannot open " + path + ": " + std::strerror(errno));
  }
  *exists = true;
  std::string buffer;
  uint64_t buffer_offset = 0;
  uint64_t line = 0;
  Status status;
  while (true) {
    const size_t old = buffer.size();
    buffer.resize(old + kReadChunk);
    ssize_t got;
    do {
      got = ::read(fd, buffer.data() + old, kReadChunk);
    } while (got < 0 && errno == EINTR);
    if (got < 0) {
      status = Status::Unavailable("cannot read " + path + ": " + std::strerror(errno));
      break;
    }
    buffer.resize(old + static_cast<size_t>(got));
    size_t start = 0;
    bool stop = false;
    for (size_t newline; (newline = buffer.find('\n', start)) != std::string::npos;) {
      if (!on_line(++line, std::string_view(buffer).substr(start, newline - start))) {
        stop = true;
        break;
      }
      start = newline + 1;
      *good_end_offset = buffer_offset + start;
    }
    if (stop) break;
    buffer.erase(0, start);
    buffer_offset += start;
    if (got == 0) {
      *rest = std::move(buffer);
      break;
    }
    if (buffer.size() > kMaxShippedLine) {
      // An endless line: skip it rather than hold it.
      buffer_offset += buffer.size();
      buffer.clear();
    }
  }
  ::close(fd);
  return status;
}

}  // namespace

std::string CheckpointsPathFor(const std::string& log_path) {
  return log_path + ".checkpoints";
}

Result<CheckpointFileContents> ReadCheckpointFile(const std::string& path) {
  CheckpointFileContents contents;
  std::string rest;
  uint64_t lines = 0;
  AIRLOCK_RETURN_IF_ERROR(ForEachLine(
      path, &contents.exists, &contents.good_end_offset, &rest,
      [&](uint64_t number, std::string_view text) {
        lines = number;
        auto parsed = text.size() > kMaxCheckpointLine
                          ? Result<AuditCheckpoint>(Status::InvalidArgument("line too long"))
                          : ParseCheckpointLine(text);
        if (!parsed.ok()) {
          contents.bad_line = number;
          contents.problem = parsed.status().message();
          return false;
        }
        contents.checkpoints.push_back(FoundCheckpoint{path, number, std::move(parsed).value()});
        return true;
      }));
  if (contents.bad_line == 0 && !rest.empty()) {
    contents.torn_tail = true;
    contents.torn_line = lines + 1;
  }
  return contents;
}

Result<CheckpointFileContents> ReadShippedCheckpoints(const std::string& path) {
  CheckpointFileContents contents;
  std::string rest;
  AIRLOCK_RETURN_IF_ERROR(ForEachLine(
      path, &contents.exists, &contents.good_end_offset, &rest,
      [&](uint64_t number, std::string_view text) {
        const size_t tag = text.find(kShippedCheckpointTag);
        if (tag == std::string_view::npos) return true;
        std::string_view object = text.substr(tag + std::strlen(kShippedCheckpointTag));
        while (!object.empty() && (object.back() == '\r' || object.back() == ' ')) {
          object.remove_suffix(1);
        }
        if (object.size() > kMaxCheckpointLine) return true;
        auto parsed = ParseCheckpointLine(object);
        if (parsed.ok()) {
          contents.checkpoints.push_back(FoundCheckpoint{path, number, std::move(parsed).value()});
        }
        return true;
      }));
  if (!contents.exists) return Status::NotFound("cannot open " + path + ": no such file");
  return contents;
}

Result<std::unique_ptr<CheckpointFileWriter>> CheckpointFileWriter::Open(const std::string& path,
                                                                         uint64_t good_end_offset) {
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Status::Unavailable("cannot open audit checkpoints " + path + ": " +
                               std::strerror(errno));
  }
  std::unique_ptr<CheckpointFileWriter> writer(new CheckpointFileWriter(path, fd));
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    return Status::Unavailable("cannot stat audit checkpoints " + path + ": " +
                               std::strerror(errno));
  }
  if (static_cast<uint64_t>(info.st_size) > good_end_offset) {
    if (::ftruncate(fd, static_cast<off_t>(good_end_offset)) != 0 || ::fdatasync(fd) != 0) {
      return Status::Unavailable("cannot cut the torn tail of audit checkpoints " + path + ": " +
                                 std::strerror(errno));
    }
  }
  // Make a newly created entry durable.
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (parent.empty()) parent = ".";
  if (const int dir = ::open(parent.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return writer;
}

CheckpointFileWriter::~CheckpointFileWriter() {
  if (fd_ >= 0) ::close(fd_);
}

Status CheckpointFileWriter::Append(const std::string& line) {
  std::string data = line + "\n";
  std::string_view rest(data);
  while (!rest.empty()) {
    const ssize_t wrote = ::write(fd_, rest.data(), rest.size());
    if (wrote < 0) {
      if (errno == EINTR) continue;
      return Status::Unavailable("cannot write audit checkpoints " + path_ + ": " +
                                 std::strerror(errno));
    }
    rest.remove_prefix(static_cast<size_t>(wrote));
  }
  while (::fdatasync(fd_) != 0) {
    if (errno != EINTR) {
      return Status::Unavailable("cannot sync audit checkpoints " + path_ + ": " +
                                 std::strerror(errno));
    }
  }
  return Status::Ok();
}

}  // namespace airlock
