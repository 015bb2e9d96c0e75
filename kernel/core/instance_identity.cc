#include "kernel/core/instance_identity.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <system_error>

#include "kernel/common/crypto.h"

namespace airlock {
namespace {

constexpr size_t kNonceBytes = 16;
constexpr size_t kIdDigits = 32;

std::string ErrnoText(int err) {
  return std::error_code(err, std::generic_category()).message();
}

bool IsLowerHex(const std::string& text) {
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

// The nonce file's first line, or Unavailable/NotFound.
Result<std::string> ReadNonce(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    if (errno == ENOENT) return Status::NotFound(path);
    return Status::Unavailable("cannot read " + path + ": " + ErrnoText(errno));
  }
  char buf[128];
  const ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  if (n < 0) return Status::Unavailable("cannot read " + path + ": " + ErrnoText(errno));
  std::string text(buf, static_cast<size_t>(n));
  if (!text.empty() && text.back() == '\n') text.pop_back();
  if (text.size() != 2 * kNonceBytes || !IsLowerHex(text)) {
    return Status::FailedPrecondition(path + " is not an instance nonce (" +
                                      std::to_string(2 * kNonceBytes) +
                                      " hex digits); remove it to give this kernel a new identity");
  }
  return text;
}

// Writes a fresh nonce to a temporary file, syncs it and links it into place;
// a concurrent creator's link wins and both then read the same file.
Status CreateNonce(const std::string& dir, const std::string& path) {
  const std::string temp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Status::Unavailable("cannot create " + temp + ": " + ErrnoText(errno));
  const std::string text = RandomHex(kNonceBytes) + "\n";
  const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                       ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  if (!written) {
    ::unlink(temp.c_str());
    return Status::Unavailable("cannot write " + temp + ": " + ErrnoText(err));
  }
  const bool linked = ::link(temp.c_str(), path.c_str()) == 0 || errno == EEXIST;
  const int link_err = errno;
  ::unlink(temp.c_str());
  if (!linked) return Status::Unavailable("cannot create " + path + ": " + ErrnoText(link_err));
  if (const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  return Status::Ok();
}

}  // namespace

Result<std::string> LoadInstanceId(const std::string& state_dir) {
  std::error_code ec;
  const std::filesystem::path canonical = std::filesystem::canonical(state_dir, ec);
  if (ec) {
    return Status::Unavailable("cannot resolve the state directory " + state_dir + ": " +
                               ec.message());
  }
  const std::string path = (canonical / "instance.nonce").string();
  Result<std::string> nonce = ReadNonce(path);
  if (!nonce.ok() && nonce.status().code() == StatusCode::kNotFound) {
    AIRLOCK_RETURN_IF_ERROR(CreateNonce(canonical.string(), path));
    nonce = ReadNonce(path);
  }
  if (!nonce.ok()) return nonce.status();
  return Sha256Hex("airlock-instance\n" + canonical.string() + "\n" + *nonce).substr(0, kIdDigits);
}

void AnnotateIsolatorConfig(nlohmann::json& config, const std::string& state_dir,
                            const std::string& instance_id) {
  config["$state_dir"] = (std::filesystem::path(state_dir) / "isolator").string();
  config["$instance_id"] = instance_id;
}

}  // namespace airlock
