#include "kernel/plugin_host/plugin_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <system_error>

#include "kernel/common/crypto.h"

namespace airlock::plugin_host {
namespace {

std::string Refusal(const std::string& path, const std::string& reason) {
  return "plugin " + path + ": " + reason;
}

std::string Mode(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof(text), "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

struct EvpMdCtxFree {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};

// SHA-256 of everything readable from `fd`, as lowercase hex.
Result<std::string> HashDescriptor(int fd, const std::string& path) {
  std::unique_ptr<EVP_MD_CTX, EvpMdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    return Status::Internal(Refusal(path, "cannot initialise SHA-256"));
  }
  std::array<char, 64 * 1024> chunk;
  uint64_t total = 0;
  for (;;) {
    const ssize_t n = ::read(fd, chunk.data(), chunk.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FailedPrecondition(
          Refusal(path, std::string("cannot read the file: ") + std::strerror(errno)));
    }
    if (n == 0) break;
    total += static_cast<uint64_t>(n);
    if (total > kMaxPluginFileBytes) {
      return Status::FailedPrecondition(Refusal(path, "file is larger than 1 GiB"));
    }
    if (EVP_DigestUpdate(ctx.get(), chunk.data(), static_cast<size_t>(n)) != 1) {
      return Status::Internal(Refusal(path, "SHA-256 update failed"));
    }
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_DigestFinal_ex(ctx.get(), digest, &length) != 1) {
    return Status::Internal(Refusal(path, "SHA-256 final failed"));
  }
  return HexEncode(std::string_view(reinterpret_cast<const char*>(digest), length));
}

}  // namespace

Result<CheckedPluginFile> CheckPluginFile(const std::string& path, bool hash) {
  namespace fs = std::filesystem;
  if (path.empty()) return Status::InvalidArgument("plugin path is empty");
  if (path.find('\0') != std::string::npos) {
    return Status::InvalidArgument("plugin path contains a NUL byte");
  }
  std::error_code ec;
  const fs::path absolute = fs::absolute(fs::path(path), ec).lexically_normal();
  if (ec) {
    return Status::FailedPrecondition(Refusal(path, "cannot resolve the path: " + ec.message()));
  }
  const std::string shown = absolute.string();

  struct stat link_info;
  if (::lstat(shown.c_str(), &link_info) != 0) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) {
      return Status::FailedPrecondition(Refusal(shown, "file does not exist"));
    }
    return Status::FailedPrecondition(
        Refusal(shown, std::string("cannot stat: ") + std::strerror(err)));
  }
  if (S_ISLNK(link_info.st_mode)) {
    return Status::FailedPrecondition(
        Refusal(shown, "is a symbolic link; configure the path of the file itself"));
  }
  if (!S_ISREG(link_info.st_mode)) {
    return Status::FailedPrecondition(Refusal(shown, "is not a regular file"));
  }

  const fs::path canonical = fs::canonical(absolute, ec);
  if (ec) {
    return Status::FailedPrecondition(Refusal(shown, "cannot resolve the path: " + ec.message()));
  }
  CheckedPluginFile checked;
  checked.canonical_path = canonical.string();

  // From here on every check is made through one descriptor, so the bytes
  // hashed are those of the inode whose mode was checked.
  Fd fd(::open(checked.canonical_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY));
  if (fd.get() < 0) {
    return Status::FailedPrecondition(
        Refusal(shown, std::string("cannot open: ") + std::strerror(errno)));
  }
  struct stat info;
  if (::fstat(fd.get(), &info) != 0) {
    return Status::FailedPrecondition(
        Refusal(shown, std::string("cannot stat: ") + std::strerror(errno)));
  }
  if (!S_ISREG(info.st_mode)) {
    return Status::FailedPrecondition(Refusal(shown, "is not a regular file"));
  }
  if ((info.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return Status::FailedPrecondition(Refusal(
        shown,
        "is writable by group or others (mode " + Mode(info.st_mode) + "); run chmod go-w on it"));
  }
  const std::string directory = canonical.parent_path().string();
  struct stat dir_info;
  if (::stat(directory.c_str(), &dir_info) != 0) {
    return Status::FailedPrecondition(
        Refusal(shown, "cannot stat its directory " + directory + ": " + std::strerror(errno)));
  }
  // Whoever may write the directory may replace the file, so the directory is
  // held to the file's rule, except for sticky directories (like /tmp) where
  // only the owner may rename or remove the file.
  if ((dir_info.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (dir_info.st_mode & S_ISVTX) == 0) {
    return Status::FailedPrecondition(
        Refusal(shown, "its directory " + directory + " is writable by group or others (mode " +
                           Mode(dir_info.st_mode) + ") without the sticky bit"));
  }
  if (static_cast<uint64_t>(info.st_size) > kMaxPluginFileBytes) {
    return Status::FailedPrecondition(Refusal(shown, "file is larger than 1 GiB"));
  }
  if (hash) {
    AIRLOCK_ASSIGN_OR_RETURN(checked.sha256, HashDescriptor(fd.get(), shown));
  }
  checked.device = info.st_dev;
  checked.inode = info.st_ino;
  return checked;
}

Status CheckPluginFileUnchanged(const CheckedPluginFile& file) {
  struct stat info;
  if (::stat(file.canonical_path.c_str(), &info) != 0 || info.st_dev != file.device ||
      info.st_ino != file.inode) {
    return Status::FailedPrecondition(
        Refusal(file.canonical_path, "file was replaced while it was being loaded"));
  }
  return Status::Ok();
}

Result<std::string> NormalizeSha256Pin(const std::string& pin) {
  std::string normalized;
  normalized.reserve(pin.size());
  for (const char c : pin) {
    if (c >= '0' && c <= '9') {
      normalized.push_back(c);
    } else if (c >= 'a' && c <= 'f') {
      normalized.push_back(c);
    } else if (c >= 'A' && c <= 'F') {
      normalized.push_back(static_cast<char>(c - 'A' + 'a'));
    } else {
      return Status::InvalidArgument("SHA-256 pin must be 64 hexadecimal digits");
    }
  }
  if (normalized.size() != 64) {
    return Status::InvalidArgument("SHA-256 pin must be 64 hexadecimal digits, got " +
                                   std::to_string(pin.size()) + " characters");
  }
  return normalized;
}

}  // namespace airlock::plugin_host
