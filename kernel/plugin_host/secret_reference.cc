#include "kernel/plugin_host/secret_reference.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

namespace airlock::plugin_host {
namespace {

// A reference is configuration, not a secret, but it is still untrusted text:
// quote at most this much of it, with non-printable bytes replaced.
constexpr size_t kMaxQuotedReference = 256;

std::string Quote(std::string_view text) {
  std::string out;
  const size_t n = std::min(text.size(), kMaxQuotedReference);
  out.reserve(n + 5);
  for (size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    out.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?');
  }
  if (text.size() > n) out += "...";
  return "'" + out + "'";
}

bool ValidEnvName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool letter = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
    const bool digit = c >= '0' && c <= '9';
    if (!letter && !(digit && i > 0)) return false;
  }
  return true;
}

// Secret bytes get a heap buffer of at least this capacity so that moving the
// std::string inside Secret transfers the allocation instead of copying bytes
// out of the small-string buffer (which would leave an unwiped copy behind).
constexpr size_t kMinSecretCapacity = 32;

Result<Secret> FromEnvironment(std::string_view reference, std::string_view name) {
  if (!ValidEnvName(name)) {
    // Not quoted: a malformed reference may be a value pasted by mistake.
    return Status::InvalidArgument(
        "secret reference env: needs a variable name like env:DB_PASSWORD");
  }
  const char* value = std::getenv(std::string(name).c_str());
  if (value == nullptr) {
    return Status::NotFound("secret reference " + Quote(reference) +
                            ": environment variable is not set");
  }
  const size_t length = std::strlen(value);
  if (length == 0) {
    return Status::FailedPrecondition("secret reference " + Quote(reference) +
                                      ": environment variable is empty");
  }
  std::string bytes;
  bytes.reserve(std::max(length, kMinSecretCapacity));
  bytes.append(value, length);
  return Secret(std::move(bytes));
}

// Closes a descriptor on scope exit.
class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() {
    if (fd_ >= 0) ::close(fd_);
  }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;

 private:
  int fd_;
};

Result<Secret> FromFile(std::string_view reference, std::string_view path_view) {
  const std::string path(path_view);
  if (path.empty() || path.front() != '/') {
    return Status::InvalidArgument(
        "secret reference file: needs an absolute path like file:/run/secrets/db");
  }
  if (path.find('\0') != std::string::npos) {
    return Status::InvalidArgument("secret reference file: path contains a NUL byte");
  }
  // O_NONBLOCK: opening a FIFO must not hang; it is refused below anyway.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) {
    const int err = errno;
    const std::string why = std::strerror(err);
    if (err == ENOENT || err == ENOTDIR) {
      return Status::NotFound("secret reference " + Quote(reference) + ": " + why);
    }
    return Status::FailedPrecondition("secret reference " + Quote(reference) +
                                      ": cannot open: " + why);
  }
  FdCloser closer(fd);
  struct stat info;
  if (::fstat(fd, &info) != 0) {
    return Status::FailedPrecondition("secret reference " + Quote(reference) +
                                      ": cannot stat: " + std::strerror(errno));
  }
  if (!S_ISREG(info.st_mode)) {
    return Status::FailedPrecondition("secret reference " + Quote(reference) +
                                      ": not a regular file");
  }
  if (static_cast<uint64_t>(info.st_size) > kMaxSecretFileBytes) {
    return Status::ResourceExhausted("secret reference " + Quote(reference) + ": file is " +
                                     std::to_string(info.st_size) + " bytes, more than " +
                                     std::to_string(kMaxSecretFileBytes));
  }
  // Read into a fixed buffer one byte larger than the cap: a file that grew
  // since fstat is still caught, and the buffer never reallocates (which would
  // leave an unwiped copy of the bytes in freed memory).
  std::string bytes(kMaxSecretFileBytes + 1, '\0');
  size_t used = 0;
  while (used < bytes.size()) {
    const ssize_t n = ::read(fd, bytes.data() + used, bytes.size() - used);
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      SecureWipe(bytes.data(), used);
      return Status::FailedPrecondition("secret reference " + Quote(reference) +
                                        ": read failed: " + std::strerror(err));
    }
    if (n == 0) break;
    used += static_cast<size_t>(n);
  }
  if (used > kMaxSecretFileBytes) {
    SecureWipe(bytes.data(), used);
    return Status::ResourceExhausted("secret reference " + Quote(reference) +
                                     ": file is larger than " +
                                     std::to_string(kMaxSecretFileBytes) + " bytes");
  }
  if (used > 0 && bytes[used - 1] == '\n') {
    --used;
    if (used > 0 && bytes[used - 1] == '\r') --used;
  }
  if (used == 0) {
    return Status::FailedPrecondition("secret reference " + Quote(reference) + ": file is empty");
  }
  // Shrinking never reallocates; the tail beyond `used` holds at most the
  // stripped newline and zeros.
  bytes.resize(used);
  return Secret(std::move(bytes));
}

}  // namespace

Result<Secret> ResolveSecretReference(std::string_view reference) {
  const size_t colon = reference.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    return Status::InvalidArgument(
        "secret reference has no scheme: expected env:NAME or file:/absolute/path");
  }
  const std::string_view scheme = reference.substr(0, colon);
  const std::string_view rest = reference.substr(colon + 1);
  if (scheme == "env") return FromEnvironment(reference, rest);
  if (scheme == "file") return FromFile(reference, rest);
  return Status::InvalidArgument("secret reference scheme " + Quote(scheme) +
                                 " is not supported (use env: or file:)");
}

}  // namespace airlock::plugin_host
