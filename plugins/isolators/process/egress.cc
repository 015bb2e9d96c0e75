#include "egress.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include <cctype>

namespace airlock::isolators::process {
namespace {

bool IsLoopbackLiteral(const std::string& text) {
  in_addr parsed{};
  return ::inet_pton(AF_INET, text.c_str(), &parsed) == 1 && (ntohl(parsed.s_addr) >> 24) == 127;
}

bool IsHostName(const std::string& text) {
  if (text.empty() || text.size() > 253) return false;
  for (char c : text) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-')) return false;
  }
  return true;
}

}  // namespace

Result<std::vector<EgressMapping>> ParseEgress(const Json& spec) {
  std::vector<EgressMapping> out;
  auto egress = spec.find("egress");
  if (egress == spec.end() || egress->is_null()) return out;
  if (!egress->is_array() || egress->size() > 64) {
    return Status::InvalidArgument("spec.egress must be an array of at most 64 routes");
  }
  for (size_t i = 0; i < egress->size(); ++i) {
    const std::string where = "spec.egress[" + std::to_string(i) + "]";
    EgressMapping m;
    AIRLOCK_RETURN_IF_ERROR(json_read::String((*egress)[i], "host", &m.host, true, where));
    AIRLOCK_RETURN_IF_ERROR(json_read::String((*egress)[i], "address", &m.address, true, where));
    if (!IsHostName(m.host)) return Status::InvalidArgument(where + ".host is not a host name");
    if (!IsLoopbackLiteral(m.address)) {
      return Status::InvalidArgument(where + ".address must be a 127.x.y.z address");
    }
    out.push_back(std::move(m));
  }
  return out;
}

std::string HostsFileText(const std::vector<EgressMapping>& egress) {
  std::string mapped;
  for (const EgressMapping& m : egress) {
    if (IsLoopbackLiteral(m.host)) continue;
    const std::string line = m.address + " " + m.host + "\n";
    if (mapped.find(line) == std::string::npos) mapped += line;
  }
  if (mapped.empty()) return mapped;
  // Approved names first: the first match wins, even for "localhost".
  return mapped + "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n";
}

Result<HostsFile> HostsFile::Write(const std::string& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return Status::Unavailable("cannot write the enclave hosts file " + path);
  HostsFile file;
  file.path_ = path;
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n <= 0) {
      ::close(fd);
      return Status::Unavailable("cannot write the enclave hosts file " + path);
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return file;
}

HostsFile::~HostsFile() {
  if (!path_.empty()) ::unlink(path_.c_str());
}

HostsFile& HostsFile::operator=(HostsFile&& other) noexcept {
  if (this != &other) {
    if (!path_.empty()) ::unlink(path_.c_str());
    path_ = std::move(other.path_);
    other.path_.clear();
  }
  return *this;
}

}  // namespace airlock::isolators::process
