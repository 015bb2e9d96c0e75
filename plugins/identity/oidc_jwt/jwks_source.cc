#include "jwks_source.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/url/parse.hpp>

#include <chrono>
#include <fstream>
#include <optional>
#include <sstream>

namespace airlock::identity::oidc_jwt {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

class FileSource : public JwksSource {
 public:
  FileSource(std::string path, size_t max_bytes) : path_(std::move(path)), max_bytes_(max_bytes) {}

  Result<std::string> Fetch() override {
    std::ifstream in(path_, std::ios::binary);
    if (!in) return Status::Unavailable("cannot open JWKS file " + path_);
    std::string text(max_bytes_ + 1, '\0');
    in.read(text.data(), static_cast<std::streamsize>(text.size()));
    if (in.bad()) return Status::Unavailable("cannot read JWKS file " + path_);
    text.resize(static_cast<size_t>(in.gcount()));
    if (text.size() > max_bytes_) {
      return Status::ResourceExhausted("JWKS file " + path_ + " exceeds " +
                                       std::to_string(max_bytes_) + " bytes");
    }
    return text;
  }

  std::string Describe() const override { return "file " + path_; }

 private:
  std::string path_;
  size_t max_bytes_;
};

class HttpsSource : public JwksSource {
 public:
  static Result<std::unique_ptr<JwksSource>> Make(const JwksSourceConfig& config) {
    auto parsed = boost::urls::parse_uri(config.url);
    if (!parsed || parsed->scheme() != "https" || parsed->host().empty() ||
        parsed->has_userinfo()) {
      return Status::InvalidArgument("jwks_url must be https://host[:port]/path");
    }
    std::unique_ptr<HttpsSource> source(new HttpsSource(config));
    source->host_ = parsed->host_address();
    source->ip_literal_ = parsed->host_type() == boost::urls::host_type::ipv4 ||
                          parsed->host_type() == boost::urls::host_type::ipv6;
    source->port_ = parsed->has_port() ? std::string(parsed->port()) : "443";
    source->target_ = std::string(parsed->encoded_path());
    if (source->target_.empty()) source->target_ = "/";
    if (parsed->has_query()) source->target_ += "?" + std::string(parsed->encoded_query());

    boost::system::error_code ec;
    source->tls_.set_verify_mode(ssl::verify_peer);
    SSL_CTX_set_min_proto_version(source->tls_.native_handle(), TLS1_2_VERSION);
    if (config.ca_file.empty()) {
      source->tls_.set_default_verify_paths(ec);
    } else {
      source->tls_.load_verify_file(config.ca_file, ec);
    }
    if (ec) {
      return Status::InvalidArgument(
          "cannot load CA certificates for jwks_url" +
          (config.ca_file.empty() ? std::string(" (system store)") : " from " + config.ca_file) +
          ": " + ec.message());
    }
    return std::unique_ptr<JwksSource>(std::move(source));
  }

  std::string Describe() const override { return url_; }

  Result<std::string> Fetch() override {
    try {
      return FetchOnce();
    } catch (const std::exception& e) {
      return Status::Unavailable("fetching " + url_ + " failed: " + e.what());
    }
  }

 private:
  explicit HttpsSource(const JwksSourceConfig& config)
      : url_(config.url),
        timeout_(std::chrono::milliseconds(config.timeout_ms)),
        max_bytes_(config.max_bytes),
        tls_(ssl::context::tls_client) {}

  Status Failed(const std::string& step, const boost::system::error_code& ec) const {
    if (ec == beast::error::timeout || ec == asio::error::operation_aborted) {
      return Status::DeadlineExceeded("fetching " + url_ + " timed out during " + step);
    }
    return Status::Unavailable("fetching " + url_ + " failed during " + step + ": " + ec.message());
  }

  Result<std::string> FetchOnce() {
    const Clock::time_point deadline = Clock::now() + timeout_;
    asio::io_context ioc;
    beast::ssl_stream<beast::tcp_stream> stream(ioc, tls_);
    boost::system::error_code ec;

    // Host name (or IP address) the server certificate must carry, and SNI.
    SSL* ssl_handle = stream.native_handle();
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl_handle);
    if (ip_literal_) {
      if (X509_VERIFY_PARAM_set1_ip_asc(param, host_.c_str()) != 1) {
        return Status::InvalidArgument("jwks_url host is not a valid IP address");
      }
    } else {
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      if (X509_VERIFY_PARAM_set1_host(param, host_.c_str(), host_.size()) != 1 ||
          SSL_set_tlsext_host_name(ssl_handle, host_.c_str()) != 1) {
        return Status::Internal("cannot set the expected TLS host name");
      }
    }

    // Resolve (not covered by the stream's timer: bounded by run_until).
    tcp::resolver resolver(ioc);
    std::optional<tcp::resolver::results_type> endpoints;
    resolver.async_resolve(host_, port_, [&](boost::system::error_code e, auto results) {
      ec = e;
      endpoints = std::move(results);
    });
    ioc.run_until(deadline);
    if (!endpoints) {
      resolver.cancel();
      ioc.restart();
      ioc.run();
      return Status::DeadlineExceeded("fetching " + url_ + " timed out resolving " + host_);
    }
    if (ec) return Failed("name resolution", ec);

    // Every later step runs under the stream's deadline, which closes the
    // socket when it passes, so each run() below returns by then.
    auto run_step = [&](auto initiate) {
      bool done = false;
      beast::get_lowest_layer(stream).expires_at(deadline);
      initiate([&](boost::system::error_code e, auto&&...) {
        ec = e;
        done = true;
      });
      ioc.restart();
      ioc.run();
      if (!done) ec = asio::error::operation_aborted;
    };

    run_step(
        [&](auto handler) { beast::get_lowest_layer(stream).async_connect(*endpoints, handler); });
    if (ec) return Failed("connect", ec);
    run_step([&](auto handler) { stream.async_handshake(ssl::stream_base::client, handler); });
    if (ec) {
      const long verify = SSL_get_verify_result(ssl_handle);
      if (verify != X509_V_OK) {
        return Status::Unavailable("fetching " + url_ +
                                   " failed: server certificate not trusted (" +
                                   X509_verify_cert_error_string(verify) + ")");
      }
      return Failed("TLS handshake", ec);
    }

    http::request<http::empty_body> request(http::verb::get, target_, 11);
    request.set(http::field::host, host_);
    request.set(http::field::accept, "application/json, application/jwk-set+json");
    request.set(http::field::user_agent, "airlock-oidc-jwt");
    run_step([&](auto handler) { http::async_write(stream, request, handler); });
    if (ec) return Failed("request", ec);

    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.header_limit(16 * 1024);
    parser.body_limit(max_bytes_);
    run_step([&](auto handler) { http::async_read(stream, buffer, parser, handler); });
    if (ec == http::error::body_limit) {
      return Status::ResourceExhausted("JWKS from " + url_ + " exceeds " +
                                       std::to_string(max_bytes_) + " bytes");
    }
    if (ec) return Failed("response", ec);
    const auto& response = parser.get();
    if (response.result() != http::status::ok) {
      return Status::Unavailable("fetching " + url_ + " answered HTTP " +
                                 std::to_string(response.result_int()));
    }
    // Close politely but do not wait long for it.
    beast::get_lowest_layer(stream).expires_after(std::chrono::milliseconds(200));
    stream.async_shutdown([](boost::system::error_code) {});
    ioc.restart();
    ioc.run();
    return std::string(response.body());
  }

  std::string url_;
  std::chrono::milliseconds timeout_;
  size_t max_bytes_;
  ssl::context tls_;
  std::string host_;
  bool ip_literal_ = false;
  std::string port_;
  std::string target_;
};

}  // namespace

Result<std::unique_ptr<JwksSource>> MakeJwksSource(const JwksSourceConfig& config) {
  if (!config.file.empty()) {
    return std::unique_ptr<JwksSource>(new FileSource(config.file, config.max_bytes));
  }
  return HttpsSource::Make(config);
}

}  // namespace airlock::identity::oidc_jwt
