#include "kernel/core/peer_client.h"

#include <openssl/ssl.h>

#include <filesystem>
#include <fstream>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "kernel/core/peer_result.h"

namespace airlock {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using nlohmann::json;

namespace {

constexpr size_t kHeaderLimit = 16 * 1024;

struct PeerUrl {
  bool tls = false;
  std::string host;  // without brackets
  std::string port;
  std::string host_header;
};

Result<PeerUrl> ParsePeerUrl(const std::string& url) {
  PeerUrl out;
  std::string_view rest(url);
  if (rest.starts_with("https://")) {
    out.tls = true;
    rest.remove_prefix(8);
  } else if (rest.starts_with("http://")) {
    rest.remove_prefix(7);
  } else {
    return Status::InvalidArgument("replica URL '" + url + "' is not http:// or https://");
  }
  if (const size_t slash = rest.find('/'); slash != std::string_view::npos) {
    rest = rest.substr(0, slash);
  }
  out.host_header = std::string(rest);
  size_t colon;
  if (rest.starts_with("[")) {
    const size_t close = rest.find(']');
    if (close == std::string_view::npos) {
      return Status::InvalidArgument("replica URL '" + url + "' has an unclosed IPv6 address");
    }
    out.host = std::string(rest.substr(1, close - 1));
    colon = rest.find(':', close);
  } else {
    colon = rest.rfind(':');
    out.host = std::string(rest.substr(0, colon));
  }
  out.port = colon == std::string_view::npos ? (out.tls ? "443" : "80")
                                             : std::string(rest.substr(colon + 1));
  if (out.host.empty() || out.port.empty()) {
    return Status::InvalidArgument("replica URL '" + url + "' names no host or port");
  }
  return out;
}

bool IsIpLiteral(const std::string& host) {
  boost::system::error_code ec;
  net::ip::make_address(host, ec);
  return !ec;
}

void RunToCompletion(net::io_context& io) {
  io.restart();
  io.run();
}

// One request and its answer, read into `parser`, on a connected stream;
// every step bounded by the stream's expiry.
template <typename Stream, typename Body>
Status Exchange(net::io_context& io, Stream& stream, http::request<http::string_body>& request,
                http::response_parser<Body>& parser) {
  boost::system::error_code ec;
  http::async_write(stream, request, [&](const boost::system::error_code& e, size_t) { ec = e; });
  RunToCompletion(io);
  if (ec == beast::error::timeout) return Status::DeadlineExceeded("timed out sending");
  if (ec) return Status::Unavailable("sending failed: " + ec.message());
  beast::flat_buffer buffer;
  http::async_read(stream, buffer, parser,
                   [&](const boost::system::error_code& e, size_t) { ec = e; });
  RunToCompletion(io);
  if (ec == beast::error::timeout) return Status::DeadlineExceeded("timed out waiting");
  if (ec == http::error::body_limit || ec == http::error::header_limit) {
    return Status::ResourceExhausted("the answer is larger than a replica forwards");
  }
  if (ec) return Status::Unavailable("reading the answer failed: " + ec.message());
  return Status::Ok();
}

StatusCode CodeForHttpStatus(unsigned status) {
  switch (status) {
    case 400:
      return StatusCode::kInvalidArgument;
    case 401:
      return StatusCode::kUnauthenticated;
    case 403:
      return StatusCode::kPermissionDenied;
    case 404:
      return StatusCode::kNotFound;
    case 409:
      return StatusCode::kConflict;
    case 410:
      return StatusCode::kFailedPrecondition;
    case 412:
      return StatusCode::kFailedPrecondition;
    case 413:
      return StatusCode::kResourceExhausted;
    case 429:
      return StatusCode::kResourceExhausted;
    case 503:
      return StatusCode::kUnavailable;
    case 504:
      return StatusCode::kDeadlineExceeded;
    default:
      return status >= 500 ? StatusCode::kInternal : StatusCode::kUnknown;
  }
}

}  // namespace

Status StatusFromPeerAnswer(const PeerAnswer& answer, const std::string& who) {
  std::string message;
  std::string error;
  try {
    const json body = json::parse(answer.body);
    if (body.is_object()) {
      message = body.value("message", "");
      error = body.value("error", "");
    }
  } catch (const json::exception&) {
  }
  if (message.empty()) message = "answered HTTP " + std::to_string(answer.status);
  StatusCode code = CodeForHttpStatus(answer.status);
  // The owner's own code when it names one (the HTTP status folds several).
  for (StatusCode named :
       {StatusCode::kInvalidArgument, StatusCode::kNotFound, StatusCode::kPermissionDenied,
        StatusCode::kUnavailable, StatusCode::kCancelled, StatusCode::kDeadlineExceeded,
        StatusCode::kResourceExhausted, StatusCode::kFailedPrecondition, StatusCode::kAlreadyExists,
        StatusCode::kConflict, StatusCode::kNotImplemented, StatusCode::kInternal}) {
    if (error == StatusCodeName(named)) code = named;
  }
  return Status(code, who + ": " + message);
}

PeerClient::PeerClient(PeerClientOptions options) : options_(std::move(options)) {}
PeerClient::~PeerClient() = default;

Result<std::unique_ptr<PeerClient>> PeerClient::Create(PeerClientOptions options) {
  if (options.secret.empty()) return Status::InvalidArgument("the peer secret is empty");
  std::unique_ptr<PeerClient> client(new PeerClient(std::move(options)));
  auto tls = std::make_unique<ssl::context>(ssl::context::tls_client);
  tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                   ssl::context::no_compression);
  boost::system::error_code ec;
  if (client->options_.ca_file.empty()) {
    tls->set_default_verify_paths(ec);
  } else {
    tls->load_verify_file(client->options_.ca_file, ec);
  }
  if (ec) {
    return Status::InvalidArgument("state.peer.ca_file '" + client->options_.ca_file +
                                   "' cannot be loaded: " + ec.message());
  }
  tls->set_verify_mode(ssl::verify_peer);
  client->tls_ = std::move(tls);
  return client;
}

template <typename Body>
Status PeerClient::Send(const std::string& base_url, std::string_view method,
                        const std::string& target, const std::string& body,
                        std::chrono::milliseconds timeout,
                        http::response_parser<Body>& parser) const {
  AIRLOCK_ASSIGN_OR_RETURN(PeerUrl url, ParsePeerUrl(base_url));
  const std::string where = "replica at " + base_url;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  net::io_context io;

  boost::system::error_code ec;
  tcp::resolver::results_type endpoints;
  tcp::resolver resolver(io);
  resolver.async_resolve(url.host, url.port,
                         [&](const boost::system::error_code& e, tcp::resolver::results_type r) {
                           ec = e;
                           endpoints = std::move(r);
                         });
  io.run_until(deadline);
  if (!io.stopped()) {
    resolver.cancel();
    RunToCompletion(io);
    return Status::DeadlineExceeded(where + ": resolving its host timed out");
  }
  if (ec) return Status::Unavailable(where + ": cannot resolve its host: " + ec.message());

  http::request<http::string_body> request{http::string_to_verb(method), target, 11};
  request.set(http::field::host, url.host_header);
  request.set(http::field::user_agent, "airlockd-peer");
  request.set(http::field::authorization, "Bearer " + std::string(options_.secret.Reveal()));
  request.set("X-Airlock-Replica", options_.self);
  if (!body.empty()) {
    request.set(http::field::content_type, "application/json");
    request.body() = body;
  }
  request.keep_alive(false);
  request.prepare_payload();
  struct WipeAuthorization {
    http::request<http::string_body>& request;
    ~WipeAuthorization() {
      const auto value = request[http::field::authorization];
      OPENSSL_cleanse(const_cast<char*>(value.data()), value.size());
    }
  } wipe{request};

  parser.header_limit(kHeaderLimit);
  Status exchanged;
  if (url.tls) {
    beast::ssl_stream<beast::tcp_stream> stream(io, *tls_);
    beast::get_lowest_layer(stream).expires_at(deadline);
    beast::get_lowest_layer(stream).async_connect(
        endpoints, [&](const boost::system::error_code& e, const tcp::endpoint&) { ec = e; });
    RunToCompletion(io);
    if (ec) return Status::Unavailable(where + ": cannot connect: " + ec.message());
    if (!IsIpLiteral(url.host) &&
        SSL_set_tlsext_host_name(stream.native_handle(), url.host.c_str()) != 1) {
      return Status::Internal("cannot set the TLS server name");
    }
    stream.set_verify_callback(ssl::host_name_verification(url.host));
    stream.async_handshake(ssl::stream_base::client,
                           [&](const boost::system::error_code& e) { ec = e; });
    RunToCompletion(io);
    if (ec) return Status::Unavailable(where + ": TLS handshake failed: " + ec.message());
    exchanged = Exchange(io, stream, request, parser);
  } else {
    beast::tcp_stream stream(io);
    stream.expires_at(deadline);
    stream.async_connect(endpoints,
                         [&](const boost::system::error_code& e, const tcp::endpoint&) { ec = e; });
    RunToCompletion(io);
    if (ec) return Status::Unavailable(where + ": cannot connect: " + ec.message());
    exchanged = Exchange(io, stream, request, parser);
  }
  if (!exchanged.ok()) return Status(exchanged.code(), where + ": " + exchanged.message());
  return Status::Ok();
}

Result<PeerAnswer> PeerClient::Call(const std::string& base_url, std::string_view method,
                                    const std::string& target, const std::string& body,
                                    std::chrono::milliseconds timeout) const {
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxPeerResultBytes + kHeaderLimit);
  AIRLOCK_RETURN_IF_ERROR(Send(base_url, method, target, body, timeout, parser));
  PeerAnswer answer;
  answer.status = parser.get().result_int();
  answer.content_type = std::string(parser.get()[http::field::content_type]);
  answer.body = std::move(parser.release().body());
  return answer;
}

Status PeerClient::Download(const std::string& base_url, const std::string& target,
                            const std::string& path, uint64_t max_bytes,
                            std::chrono::milliseconds timeout) const {
  http::response_parser<http::file_body> parser;
  parser.body_limit(max_bytes);
  beast::error_code ec;
  parser.get().body().open(path.c_str(), beast::file_mode::write_new, ec);
  if (ec) return Status::Unavailable("cannot create a file for a forwarded download");
  const Status sent = Send(base_url, "GET", target, "", timeout, parser);
  parser.get().body().close();
  if (sent.ok() && parser.get().result_int() == 200) return Status::Ok();
  PeerAnswer refusal;
  if (sent.ok()) {
    // An error answer is a small JSON body; the file holds it.
    refusal.status = parser.get().result_int();
    std::ifstream in(path, std::ios::binary);
    refusal.body.resize(kHeaderLimit);
    in.read(refusal.body.data(), static_cast<std::streamsize>(refusal.body.size()));
    refusal.body.resize(static_cast<size_t>(in.gcount()));
  }
  std::error_code removed;
  std::filesystem::remove(path, removed);
  if (!sent.ok()) return sent;
  return StatusFromPeerAnswer(refusal, "replica at " + base_url);
}

Status PeerClient::Query(const std::string& base_url, const std::string& id, std::string_view sql,
                         const std::string& transport, sdk::BatchConsumer& consumer,
                         std::chrono::milliseconds timeout) const {
  const json body = {{"sql", std::string(sql)}, {"transport", transport}};
  AIRLOCK_ASSIGN_OR_RETURN(
      PeerAnswer answer,
      Call(base_url, "POST", "/v1/peer/requests/" + id + "/query", body.dump(), timeout));
  if (answer.status != 200) return StatusFromPeerAnswer(answer, "replica at " + base_url);
  if (answer.content_type != kPeerResultContentType) {
    return Status::Internal("replica at " + base_url + " answered a query with " +
                            answer.content_type);
  }
  return DecodePeerResult(answer.body, consumer);
}

Result<json> PeerClient::Tables(const std::string& base_url, const std::string& id,
                                std::chrono::milliseconds timeout) const {
  AIRLOCK_ASSIGN_OR_RETURN(
      PeerAnswer answer, Call(base_url, "GET", "/v1/peer/requests/" + id + "/tables", "", timeout));
  if (answer.status != 200) return StatusFromPeerAnswer(answer, "replica at " + base_url);
  try {
    json tables = json::parse(answer.body);
    if (!tables.is_object()) return Status::Internal("replica at " + base_url + ": bad tables");
    return tables;
  } catch (const json::exception&) {
    return Status::Internal("replica at " + base_url + " answered tables that are not JSON");
  }
}

Result<json> PeerClient::TakeGrant(const std::string& base_url, const std::string& id,
                                   const std::string& subject,
                                   std::chrono::milliseconds timeout) const {
  const json body = {{"subject", subject}};
  AIRLOCK_ASSIGN_OR_RETURN(
      PeerAnswer answer,
      Call(base_url, "POST", "/v1/peer/requests/" + id + "/credentials", body.dump(), timeout));
  if (answer.status != 200) return StatusFromPeerAnswer(answer, "replica at " + base_url);
  try {
    json grant = json::parse(answer.body);
    if (!grant.is_object() || !grant.contains("url")) {
      return Status::Internal("replica at " + base_url + " answered a malformed grant");
    }
    return grant;
  } catch (const json::exception&) {
    return Status::Internal("replica at " + base_url + " answered a grant that is not JSON");
  }
}

}  // namespace airlock
