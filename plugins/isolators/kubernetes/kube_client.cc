#include "kube_client.h"

#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <fstream>
#include <sstream>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

namespace airlock::isolators::kubernetes {
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

constexpr int kCallTimeoutSeconds = 15;
constexpr std::chrono::seconds kConnectTimeout{10};
constexpr size_t kMaxReplyBytes = 8 << 20;
constexpr size_t kMaxWatchLineBytes = 4 << 20;
constexpr size_t kMaxTokenBytes = 64 * 1024;

struct ServerUrl {
  std::string host;
  std::string port = "443";
  std::string prefix;  // path the API is served under, without a trailing '/'
};

Result<ServerUrl> ParseServer(const std::string& server) {
  ServerUrl url;
  std::string rest = server.substr(std::string("https://").size());
  const size_t slash = rest.find('/');
  if (slash != std::string::npos) {
    url.prefix = rest.substr(slash);
    rest = rest.substr(0, slash);
  }
  if (!rest.empty() && rest.front() == '[') {
    const size_t close = rest.find(']');
    if (close == std::string::npos) return Status::InvalidArgument("bad IPv6 server address");
    url.host = rest.substr(1, close - 1);
    if (close + 1 < rest.size() && rest[close + 1] == ':') url.port = rest.substr(close + 2);
  } else if (const size_t colon = rest.rfind(':'); colon != std::string::npos) {
    url.host = rest.substr(0, colon);
    url.port = rest.substr(colon + 1);
  } else {
    url.host = rest;
  }
  if (url.host.empty() || url.port.empty() ||
      url.port.find_first_not_of("0123456789") != std::string::npos) {
    return Status::InvalidArgument("kubernetes isolator configuration.cluster.server '" +
                                   server.substr(0, 200) + "' is not https://host[:port]");
  }
  return url;
}

void SetSocketTimeouts(int fd, int seconds) {
  timeval tv{};
  tv.tv_sec = seconds;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

std::string ReplyMessage(const Json& body) {
  if (body.is_object()) {
    std::string message = body.value("message", "");
    const std::string reason = body.value("reason", "");
    if (message.size() > 1024) message = message.substr(0, 1024) + "...";
    if (!reason.empty()) message += message.empty() ? reason : " (" + reason + ")";
    if (!message.empty()) return message;
  }
  return "no explanation given";
}

}  // namespace

void WatchCanceller::Cancel() {
  std::lock_guard lock(mutex_);
  cancelled_ = true;
  if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
}

void WatchCanceller::Publish(int fd) {
  std::lock_guard lock(mutex_);
  fd_ = fd;
  if (fd_ >= 0 && cancelled_) ::shutdown(fd_, SHUT_RDWR);
}

struct KubeClient::Impl {
  ServerUrl url;
  ssl::context tls{ssl::context::tls_client};
  std::string token_file;
  sdk::SecretBytes token;    // when configured by reference
  std::string inline_token;  // from a kubeconfig; wiped with the client

  ~Impl() {
    if (!inline_token.empty()) OPENSSL_cleanse(inline_token.data(), inline_token.size());
  }

  Result<std::string> Token() const {
    if (!inline_token.empty()) return inline_token;
    if (token_file.empty()) return std::string(token.view());
    std::ifstream in(token_file, std::ios::binary);
    if (!in) {
      return Status::FailedPrecondition("cannot read the service account token '" + token_file +
                                        "'");
    }
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (text.size() > kMaxTokenBytes) return Status::FailedPrecondition("token file too large");
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) {
      text.pop_back();
    }
    return text;
  }

  // A connected, verified TLS stream; its socket times out after `seconds`.
  Result<std::unique_ptr<ssl::stream<tcp::socket>>> Connect(asio::io_context& io, int seconds) {
    auto stream = std::make_unique<ssl::stream<tcp::socket>>(io, tls);
    boost::system::error_code ec;
    asio::ip::make_address(url.host, ec);
    SSL* native = stream->native_handle();
    if (!ec) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(native), url.host.c_str());
    } else {
      SSL_set_tlsext_host_name(native, url.host.c_str());
      SSL_set1_host(native, url.host.c_str());
    }
    tcp::resolver resolver(io);
    auto endpoints = resolver.resolve(url.host, url.port, ec);
    if (ec) {
      return Status::Unavailable("cannot resolve the Kubernetes API server " + url.host + ": " +
                                 ec.message());
    }
    // The connect is bounded too: a silent address must not hold a
    // provision for the system's SYN retries (minutes).
    ec = asio::error::would_block;
    asio::async_connect(
        stream->lowest_layer(), endpoints,
        [&ec](const boost::system::error_code& e, const tcp::endpoint&) { ec = e; });
    io.restart();
    io.run_for(kConnectTimeout);
    if (ec == asio::error::would_block) {
      boost::system::error_code ignored;
      stream->lowest_layer().close(ignored);
      io.restart();
      io.run();  // lets the cancelled connect finish
      return Status::Unavailable("the Kubernetes API server " + url.host + ":" + url.port +
                                 " did not accept a connection within 10 s");
    }
    if (ec) {
      return Status::Unavailable("cannot connect to the Kubernetes API server " + url.host + ":" +
                                 url.port + ": " + ec.message());
    }
    SetSocketTimeouts(stream->lowest_layer().native_handle(), seconds);
    stream->handshake(ssl::stream_base::client, ec);
    if (ec) {
      return Status::Unavailable(
          "TLS with the Kubernetes API server failed (is ca_file the "
          "cluster's CA?): " +
          ec.message());
    }
    return stream;
  }

  Result<http::request<http::string_body>> Request(const std::string& method,
                                                   const std::string& target, const Json* body) {
    http::request<http::string_body> req;
    req.method_string(method);
    req.target(url.prefix + target);
    req.version(11);
    req.set(http::field::host, url.host);
    req.set(http::field::accept, "application/json");
    req.set(http::field::user_agent, "airlock-isolator-kubernetes/1.0");
    AIRLOCK_ASSIGN_OR_RETURN(std::string token_text, Token());
    // (None with a client certificate alone.)
    if (!token_text.empty()) req.set(http::field::authorization, "Bearer " + token_text);
    OPENSSL_cleanse(token_text.data(), token_text.size());
    if (body != nullptr) {
      req.set(http::field::content_type, "application/json");
      req.body() = body->dump();
    }
    req.prepare_payload();
    return req;
  }
};

KubeClient::KubeClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
KubeClient::~KubeClient() = default;

Result<std::unique_ptr<KubeClient>> KubeClient::Create(const ClusterAccess& access,
                                                       const sdk::Host& host) {
  auto impl = std::make_unique<Impl>();
  AIRLOCK_ASSIGN_OR_RETURN(impl->url, ParseServer(access.server));
  SSL_CTX_set_min_proto_version(impl->tls.native_handle(), TLS1_2_VERSION);
  boost::system::error_code ec;
  const std::string where = "kubernetes isolator configuration.cluster";
  if (!access.ca_pem.empty()) {
    impl->tls.add_certificate_authority(asio::buffer(access.ca_pem), ec);
    if (ec) return Status::InvalidArgument(where + ": the cluster's CA is not a PEM certificate");
  } else {
    impl->tls.load_verify_file(access.ca_file, ec);
    if (ec) {
      return Status::InvalidArgument(where + ".ca_file: cannot load '" + access.ca_file +
                                     "': " + ec.message());
    }
  }
  impl->tls.set_verify_mode(ssl::verify_peer);
  // A client certificate, when the user authenticates with one.
  if (!access.client_certificate_pem.empty()) {
    impl->tls.use_certificate_chain(asio::buffer(access.client_certificate_pem), ec);
  } else if (!access.client_certificate_file.empty()) {
    impl->tls.use_certificate_chain_file(access.client_certificate_file, ec);
  }
  if (ec) return Status::InvalidArgument(where + ": cannot load the client certificate");
  if (!access.client_key_pem.empty()) {
    impl->tls.use_private_key(asio::buffer(access.client_key_pem), ssl::context::pem, ec);
  } else if (!access.client_key_file.empty()) {
    impl->tls.use_private_key_file(access.client_key_file, ssl::context::pem, ec);
  }
  if (ec) return Status::InvalidArgument(where + ": cannot load the client key");
  impl->token_file = access.token_file;
  impl->inline_token = access.token;
  if (!access.token_reference.empty()) {
    auto token = host.ResolveSecret(access.token_reference);
    if (!token.ok()) return token.status().WithContext("kubernetes isolator cluster.token");
    impl->token = std::move(token).value();
  } else if (!access.token_file.empty()) {
    AIRLOCK_RETURN_IF_ERROR(impl->Token().status());
  }
  return std::unique_ptr<KubeClient>(new KubeClient(std::move(impl)));
}

Result<ApiReply> KubeClient::Call(const std::string& method, const std::string& target,
                                  const Json* body) {
  asio::io_context io;
  AIRLOCK_ASSIGN_OR_RETURN(auto stream, impl_->Connect(io, kCallTimeoutSeconds));
  AIRLOCK_ASSIGN_OR_RETURN(auto req, impl_->Request(method, target, body));
  boost::system::error_code ec;
  http::write(*stream, req, ec);
  if (ec) return Status::Unavailable("sending to the Kubernetes API server: " + ec.message());
  boost::beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxReplyBytes);
  http::read(*stream, buffer, parser, ec);
  if (ec) return Status::Unavailable("reading from the Kubernetes API server: " + ec.message());
  ApiReply reply;
  reply.status = static_cast<int>(parser.get().result_int());
  reply.body = Json::parse(parser.get().body(), nullptr, false);
  if (reply.body.is_discarded()) reply.body = nullptr;
  stream->shutdown(ec);  // best effort
  return reply;
}

Status StatusFromReply(const ApiReply& reply, const std::string& doing) {
  const std::string said = ReplyMessage(reply.body);
  const std::string prefix = "Kubernetes refused to " + doing + ": ";
  switch (reply.status) {
    case 401:
      return Status::Unauthenticated(prefix + said +
                                     "; the API server did not accept the kernel's token");
    case 403:
      return Status::PermissionDenied(
          prefix + said +
          "; the kernel's service account needs this permission in its Role (docs/kubernetes.md)");
    case 404:
      return Status::NotFound(prefix + said);
    case 409:
      return Status::AlreadyExists(prefix + said);
    case 410:
      return Status::FailedPrecondition(prefix + said);
    case 400:
    case 422:
      return Status::InvalidArgument(prefix + said);
    default:
      break;
  }
  if (reply.status >= 500) return Status::Unavailable(prefix + said);
  return Status::Unknown(prefix + "HTTP " + std::to_string(reply.status) + ": " + said);
}

Result<Json> KubeClient::Expect(const std::string& method, const std::string& target,
                                const Json* body, const std::string& doing) {
  AIRLOCK_ASSIGN_OR_RETURN(ApiReply reply, Call(method, target, body));
  if (reply.status < 200 || reply.status >= 300) return StatusFromReply(reply, doing);
  return std::move(reply.body);
}

Status KubeClient::Watch(const std::string& target,
                         const std::function<bool(const Json&)>& on_event,
                         WatchCanceller* canceller, const std::string& doing) {
  asio::io_context io;
  // The server ends the watch (timeoutSeconds); reads in between may wait
  // for the next event, so the socket's own timeout is generous.
  AIRLOCK_ASSIGN_OR_RETURN(auto stream, impl_->Connect(io, 300));
  const int fd = stream->lowest_layer().native_handle();
  canceller->Publish(fd);
  struct Unpublish {
    WatchCanceller* c;
    ~Unpublish() { c->Publish(-1); }
  } unpublish{canceller};
  auto cancelled = [&] { return canceller->cancelled(); };

  AIRLOCK_ASSIGN_OR_RETURN(auto req, impl_->Request("GET", target, nullptr));
  boost::system::error_code ec;
  http::write(*stream, req, ec);
  if (ec) {
    if (cancelled()) return Status::Cancelled("watch cancelled");
    return Status::Unavailable("sending a watch to the Kubernetes API server: " + ec.message());
  }
  boost::beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(boost::none);
  http::read_header(*stream, buffer, parser, ec);
  if (ec) {
    if (cancelled()) return Status::Cancelled("watch cancelled");
    return Status::Unavailable("reading a watch from the Kubernetes API server: " + ec.message());
  }
  const int status = static_cast<int>(parser.get().result_int());
  std::string line;
  char chunk[16384];
  if (status != 200) {
    // The error's body is a Status object: read it whole (bounded).
    std::string text;
    while (!parser.is_done() && text.size() < kMaxReplyBytes) {
      parser.get().body().data = chunk;
      parser.get().body().size = sizeof chunk;
      http::read(*stream, buffer, parser, ec);
      if (ec && ec != http::error::need_buffer) break;
      text.append(chunk, sizeof chunk - parser.get().body().size);
    }
    ApiReply reply{status, Json::parse(text, nullptr, false)};
    if (reply.body.is_discarded()) reply.body = nullptr;
    return StatusFromReply(reply, doing);
  }
  while (!parser.is_done()) {
    parser.get().body().data = chunk;
    parser.get().body().size = sizeof chunk;
    // read_some: each event must be seen when it arrives, not when 16 KiB
    // of them have.
    http::read_some(*stream, buffer, parser, ec);
    if (ec && ec != http::error::need_buffer) {
      if (cancelled()) return Status::Cancelled("watch cancelled");
      if (ec == http::error::end_of_stream || ec == asio::ssl::error::stream_truncated) break;
      return Status::Unavailable("the Kubernetes watch broke: " + ec.message());
    }
    line.append(chunk, sizeof chunk - parser.get().body().size);
    if (line.size() > kMaxWatchLineBytes) {
      return Status::ResourceExhausted("a Kubernetes watch event is larger than 4 MiB");
    }
    size_t newline;
    while ((newline = line.find('\n')) != std::string::npos) {
      const Json event = Json::parse(line.substr(0, newline), nullptr, false);
      line.erase(0, newline + 1);
      if (event.is_discarded() || !event.is_object()) continue;
      if (!on_event(event)) return Status::Ok();
    }
    if (cancelled()) return Status::Cancelled("watch cancelled");
  }
  return cancelled() ? Status::Cancelled("watch cancelled") : Status::Ok();
}

std::string QueryEscape(const std::string& value) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

}  // namespace airlock::isolators::kubernetes
