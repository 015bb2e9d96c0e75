#include "kernel/core/syslog_tls.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netdb.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace airlock {
namespace {

using Clock = std::chrono::steady_clock;

// Printable US-ASCII without spaces, at most `max` characters ("-" if none).
std::string Token(std::string_view text, size_t max) {
  std::string out;
  for (char c : text) {
    if (out.size() == max) break;
    if (c > 32 && c < 127) out.push_back(c);
  }
  return out.empty() ? "-" : out;
}

std::string OpenSslError(const std::string& what) {
  const unsigned long code = ERR_get_error();
  char buf[256] = {0};
  if (code != 0) ERR_error_string_n(code, buf, sizeof buf);
  ERR_clear_error();
  return what + (code != 0 ? std::string(": ") + buf : std::string());
}

bool IsAddress(const std::string& host) {
  unsigned char buf[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

}  // namespace

std::string SyslogMessage(const nlohmann::json& record, std::string_view hostname, int pid) {
  constexpr int kFacilityLogAudit = 13, kSeverityInformational = 6;
  const auto text = [&](const char* key) {
    const auto it = record.find(key);
    return it != record.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  const auto seq = record.find("seq");
  std::string out = "<" + std::to_string(kFacilityLogAudit * 8 + kSeverityInformational) + ">1 ";
  out += Token(text("ts"), 64) + " " + Token(hostname, 255) + " airlock " + std::to_string(pid) +
         " " + Token(text("event"), 32) + " ";
  // Structured data: the record's place in the chain, for deduplication.
  // 32473 is the enterprise number RFC 5612 reserves for examples.
  out += "[airlock@32473 seq=\"" +
         (seq != record.end() && seq->is_number_unsigned() ? std::to_string(seq->get<uint64_t>())
                                                           : std::string("0")) +
         "\"]";
  out += " \xEF\xBB\xBF";  // the message is UTF-8 (RFC 5424 6.4)
  out += record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return out;
}

Result<std::unique_ptr<SyslogTlsClient>> SyslogTlsClient::Create(
    const std::string& url, const std::string& ca_file, std::chrono::milliseconds timeout) {
  constexpr std::string_view kScheme = "tls://";
  if (url.rfind(kScheme, 0) != 0)
    return Status::InvalidArgument("a syslog URL is tls://host[:port]");
  std::string authority = url.substr(kScheme.size());
  if (const size_t slash = authority.find('/'); slash != std::string::npos) {
    authority.resize(slash);
  }
  auto client = std::make_unique<SyslogTlsClient>();
  if (!authority.empty() && authority.front() == '[') {  // [v6]:port
    const size_t close = authority.find(']');
    if (close == std::string::npos) return Status::InvalidArgument("bad address in " + url);
    client->host_ = authority.substr(1, close - 1);
    client->port_ = close + 1 < authority.size() && authority[close + 1] == ':'
                        ? authority.substr(close + 2)
                        : "6514";
  } else if (const size_t colon = authority.rfind(':'); colon != std::string::npos) {
    client->host_ = authority.substr(0, colon);
    client->port_ = authority.substr(colon + 1);
  } else {
    client->host_ = authority;
    client->port_ = "6514";
  }
  if (client->host_.empty() || client->port_.empty() ||
      client->port_.find_first_not_of("0123456789") != std::string::npos) {
    return Status::InvalidArgument("bad host or port in " + url);
  }
  client->timeout_ = timeout;
  client->ctx_ = SSL_CTX_new(TLS_client_method());
  if (client->ctx_ == nullptr) return Status::Internal(OpenSslError("TLS context"));
  SSL_CTX_set_min_proto_version(client->ctx_, TLS1_2_VERSION);
  SSL_CTX_set_verify(client->ctx_, SSL_VERIFY_PEER, nullptr);
  const int loaded = ca_file.empty()
                         ? SSL_CTX_set_default_verify_paths(client->ctx_)
                         : SSL_CTX_load_verify_locations(client->ctx_, ca_file.c_str(), nullptr);
  if (loaded != 1) return Status::InvalidArgument(OpenSslError("loading the receiver's CA"));
  return client;
}

SyslogTlsClient::~SyslogTlsClient() {
  Close();
  if (ctx_ != nullptr) SSL_CTX_free(ctx_);
}

void SyslogTlsClient::Close() {
  if (ssl_ != nullptr) {
    SSL_free(ssl_);
    ssl_ = nullptr;
  }
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

Status SyslogTlsClient::Connect() {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (const int rc = getaddrinfo(host_.c_str(), port_.c_str(), &hints, &found); rc != 0) {
    return Status::Unavailable("resolving " + host_ + ": " + gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, void (*)(addrinfo*)> addresses(found, freeaddrinfo);
  Status last = Status::Unavailable("no address for " + host_);
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    const int fd =
        ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
    if (fd < 0) continue;
    if (::connect(fd, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
      last = Status::Unavailable("connecting to " + host_ + ":" + port_ + ": " + strerror(errno));
      ::close(fd);
      continue;
    }
    pollfd p{fd, POLLOUT, 0};
    int error = 0;
    socklen_t len = sizeof error;
    if (::poll(&p, 1, static_cast<int>(timeout_.count())) != 1 ||
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0 || error != 0) {
      last = Status::Unavailable("connecting to " + host_ + ":" + port_ + ": " +
                                 (error != 0 ? strerror(error) : "timed out"));
      ::close(fd);
      continue;
    }
    fd_ = fd;
    break;
  }
  if (fd_ < 0) return last;
  // Blocking from here, each read and write bounded by the timeout.
  ::fcntl(fd_, F_SETFL, ::fcntl(fd_, F_GETFL) & ~O_NONBLOCK);
  timeval tv{static_cast<time_t>(timeout_.count() / 1000),
             static_cast<suseconds_t>(timeout_.count() % 1000 * 1000)};
  ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ssl_ = SSL_new(ctx_);
  if (ssl_ == nullptr || SSL_set_fd(ssl_, fd_) != 1) {
    Close();
    return Status::Internal(OpenSslError("TLS session"));
  }
  if (IsAddress(host_)) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), host_.c_str());
  } else {
    SSL_set_tlsext_host_name(ssl_, host_.c_str());
    SSL_set1_host(ssl_, host_.c_str());
  }
  if (SSL_connect(ssl_) != 1) {
    const long verify = SSL_get_verify_result(ssl_);
    Status failed = Status::Unavailable(
        verify != X509_V_OK ? "the syslog receiver's certificate does not verify: " +
                                  std::string(X509_verify_cert_error_string(verify))
                            : OpenSslError("TLS handshake with " + host_ + ":" + port_));
    Close();
    return failed;
  }
  return Status::Ok();
}

Status SyslogTlsClient::WaitAcknowledged(Clock::time_point deadline) {
  for (;;) {
    int unacknowledged = 0;
    if (::ioctl(fd_, SIOCOUTQ, &unacknowledged) != 0) {
      return Status::Unavailable(std::string("reading the send queue: ") + strerror(errno));
    }
    if (unacknowledged == 0) return Status::Ok();
    // A receiver sends nothing; readable means it closed the connection.
    pollfd p{fd_, POLLIN | POLLRDHUP, 0};
    if (::poll(&p, 1, 5) > 0)
      return Status::Unavailable("the syslog receiver closed the connection");
    if (Clock::now() > deadline) {
      return Status::Unavailable("the syslog receiver did not acknowledge the records in time");
    }
  }
}

Status SyslogTlsClient::Send(const std::vector<std::string>& messages) {
  if (ssl_ == nullptr) AIRLOCK_RETURN_IF_ERROR(Connect());
  const Clock::time_point deadline = Clock::now() + timeout_;
  std::string frames;
  for (const std::string& m : messages) frames += std::to_string(m.size()) + " " + m;
  size_t written = 0;
  while (written < frames.size()) {
    size_t n = 0;
    if (SSL_write_ex(ssl_, frames.data() + written, frames.size() - written, &n) != 1) {
      Status failed = Status::Unavailable(OpenSslError("writing to the syslog receiver"));
      Close();
      return failed;
    }
    written += n;
  }
  Status acknowledged = WaitAcknowledged(deadline);
  if (!acknowledged.ok()) Close();
  return acknowledged;
}

}  // namespace airlock
