#include "safe_open.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <utility>

namespace airlock::connectors::files {
namespace {

constexpr char kOutside[] = "path outside the configured root";

bool HasParentComponent(std::string_view path) {
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string_view::npos) end = path.size();
    if (path.substr(start, end - start) == "..") return true;
    start = end + 1;
  }
  return false;
}

Status OpenError(int error, std::string_view relative) {
  switch (error) {
    case ENOENT:
    case ENOTDIR:
      return Status::NotFound("file '" + std::string(relative) + "' not found");
    case EXDEV:
    case ELOOP:
      return Status::PermissionDenied(kOutside);
    case EACCES:
    case EPERM:
      return Status::PermissionDenied("file '" + std::string(relative) + "' is not readable");
    default:
      return Status::Unavailable("cannot open '" + std::string(relative) +
                                 "': " + std::strerror(error));
  }
}

// Checks the descriptor is a regular file and makes reads blocking again (it
// was opened O_NONBLOCK so a FIFO could not stall the open). Closes on error.
Result<int> Finish(int fd, std::string_view relative) {
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::InvalidArgument("'" + std::string(relative) + "' is not a regular file");
  }
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  return fd;
}

}  // namespace

Result<RootDirectory> RootDirectory::Open(const std::string& path) {
  if (path.empty()) return Status::InvalidArgument("root must not be empty");
  std::unique_ptr<char, decltype(&std::free)> resolved(::realpath(path.c_str(), nullptr),
                                                       &std::free);
  if (!resolved) {
    return Status::InvalidArgument("root '" + path +
                                   "' cannot be resolved: " + std::strerror(errno));
  }
  const int fd = ::open(resolved.get(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    return Status::InvalidArgument("root '" + path +
                                   "' is not a readable directory: " + std::strerror(errno));
  }
  return RootDirectory(fd, resolved.get());
}

RootDirectory::RootDirectory(RootDirectory&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)) {}

RootDirectory& RootDirectory::operator=(RootDirectory&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
  }
  return *this;
}

RootDirectory::~RootDirectory() {
  if (fd_ >= 0) ::close(fd_);
}

Result<int> RootDirectory::OpenFile(std::string_view relative) const {
  if (relative.empty()) return Status::InvalidArgument("empty file name");
  if (relative.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument("file name contains a NUL byte");
  }
  if (relative.front() == '/') return Status::PermissionDenied(kOutside);
  const std::string name(relative);

  struct open_how how;
  std::memset(&how, 0, sizeof how);
  how.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  const long fd = ::syscall(SYS_openat2, fd_, name.c_str(), &how, sizeof how);
  if (fd >= 0) return Finish(static_cast<int>(fd), relative);
  if (errno == ENOSYS || errno == EPERM) return OpenWithRealpath(name);  // old kernel, seccomp
  return OpenError(errno, relative);
}

Result<int> RootDirectory::OpenWithRealpath(const std::string& relative) const {
  const std::string joined = path_ + "/" + relative;
  std::unique_ptr<char, decltype(&std::free)> resolved(::realpath(joined.c_str(), nullptr),
                                                       &std::free);
  if (!resolved) {
    // Refuse escapes before reporting absence, so probing outside says nothing.
    if (HasParentComponent(relative)) return Status::PermissionDenied(kOutside);
    return OpenError(errno, relative);
  }
  const std::string_view real(resolved.get());
  if (!(real.size() > path_.size() && real.substr(0, path_.size()) == path_ &&
        real[path_.size()] == '/')) {
    return Status::PermissionDenied(kOutside);
  }
  const int fd = ::open(resolved.get(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW);
  if (fd < 0) return OpenError(errno, relative);
  return Finish(fd, relative);
}

Result<std::vector<std::string>> RootDirectory::List() const {
  const int dir_fd = ::openat(fd_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0)
    return Status::Unavailable(std::string("cannot list root: ") + std::strerror(errno));
  struct CloseDir {
    void operator()(DIR* d) const { ::closedir(d); }
  };
  std::unique_ptr<DIR, CloseDir> dir(::fdopendir(dir_fd));
  if (!dir) {
    ::close(dir_fd);
    return Status::Unavailable(std::string("cannot list root: ") + std::strerror(errno));
  }
  std::vector<std::string> names;
  while (const dirent* entry = ::readdir(dir.get())) {
    if (entry->d_name[0] == '.') continue;
    if (entry->d_type != DT_REG && entry->d_type != DT_LNK && entry->d_type != DT_UNKNOWN) continue;
    names.emplace_back(entry->d_name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace airlock::connectors::files
