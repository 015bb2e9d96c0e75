#include "decision_client.h"

#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace airlock::policy::http_decision {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kHeaderLimit = 16 * 1024;

bool IsIpLiteral(const std::string& host) {
  boost::system::error_code ec;
  net::ip::make_address(host, ec);
  return !ec;
}

// Runs the io_context until every posted operation has completed. Each
// operation is bounded by its stream's expiry, so this always returns.
void RunToCompletion(net::io_context& io) {
  io.restart();
  io.run();
}

int64_t MillisLeft(Clock::time_point deadline) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
}

}  // namespace

struct DecisionClient::Connection {
  explicit Connection(size_t buffer_limit) : buffer(buffer_limit) {}

  beast::tcp_stream& lowest() { return secure ? beast::get_lowest_layer(*secure) : *plain; }

  template <typename Fn>
  void WithStream(Fn&& fn) {
    if (secure) {
      fn(*secure);
    } else {
      fn(*plain);
    }
  }

  net::io_context io;
  std::unique_ptr<beast::tcp_stream> plain;
  std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer;
  bool connected = false;  // usable for another request
  bool reused = false;     // taken from the pool (it may have been closed by the peer)
};

Result<std::unique_ptr<DecisionClient>> DecisionClient::Create(
    const DecisionServiceConfig& config) {
  std::unique_ptr<DecisionClient> client(new DecisionClient(config));
  if (config.tls) {
    auto tls = std::make_unique<ssl::context>(ssl::context::tls_client);
    tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                     ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                     ssl::context::no_compression);
    boost::system::error_code ec;
    if (config.ca_file.empty()) {
      tls->set_default_verify_paths(ec);
    } else {
      tls->load_verify_file(config.ca_file, ec);
    }
    if (ec) {
      return Status::InvalidArgument("http-decision configuration.tls.ca_file '" + config.ca_file +
                                     "' cannot be loaded: " + ec.message());
    }
    tls->set_verify_mode(ssl::verify_peer);
    client->tls_ = std::move(tls);
  }
  return client;
}

DecisionClient::DecisionClient(DecisionServiceConfig config) : config_(std::move(config)) {}

DecisionClient::~DecisionClient() = default;

int64_t DecisionClient::connections_opened() const {
  std::lock_guard lock(mutex_);
  return opened_;
}

std::unique_ptr<DecisionClient::Connection> DecisionClient::Acquire(Clock::time_point deadline,
                                                                    Status* why) {
  std::unique_lock lock(mutex_);
  if (!slot_free_.wait_until(lock, deadline, [&] { return in_use_ < config_.max_connections; })) {
    *why = Status::DeadlineExceeded("all " + std::to_string(config_.max_connections) +
                                    " connections to the decision service stayed busy for " +
                                    std::to_string(config_.timeout_ms) + " ms");
    return nullptr;
  }
  ++in_use_;
  if (!idle_.empty()) {
    auto c = std::move(idle_.back());
    idle_.pop_back();
    c->reused = true;
    return c;
  }
  return std::make_unique<Connection>(static_cast<size_t>(config_.max_response_bytes) +
                                      kHeaderLimit);
}

void DecisionClient::Release(std::unique_ptr<Connection> connection, bool reusable) {
  {
    std::lock_guard lock(mutex_);
    --in_use_;
    if (reusable && connection && connection->connected) {
      idle_.push_back(std::move(connection));
    }
  }
  slot_free_.notify_one();
  // A connection not kept is destroyed here, outside the lock.
}

Status DecisionClient::Connect(Connection& c, Clock::time_point deadline) {
  const std::string where = config_.host + ":" + config_.port;
  const auto connect_deadline =
      std::min(deadline, Clock::now() + std::chrono::milliseconds(config_.connect_timeout_ms));
  c.plain.reset();
  c.secure.reset();
  c.buffer.consume(c.buffer.size());

  tcp::resolver resolver(c.io);
  boost::system::error_code ec;
  tcp::resolver::results_type endpoints;
  resolver.async_resolve(config_.host, config_.port,
                         [&](const boost::system::error_code& e, tcp::resolver::results_type r) {
                           ec = e;
                           endpoints = std::move(r);
                         });
  c.io.restart();
  c.io.run_until(connect_deadline);
  if (!c.io.stopped()) {
    resolver.cancel();
    RunToCompletion(c.io);
    return Status::DeadlineExceeded("resolving " + config_.host + " timed out");
  }
  if (ec) return Status::Unavailable("cannot resolve " + config_.host + ": " + ec.message());

  if (tls_) {
    c.secure = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(c.io, *tls_);
  } else {
    c.plain = std::make_unique<beast::tcp_stream>(c.io);
  }
  {
    std::lock_guard lock(mutex_);
    ++opened_;
  }
  c.lowest().expires_at(connect_deadline);
  c.lowest().async_connect(
      endpoints, [&](const boost::system::error_code& e, const tcp::endpoint&) { ec = e; });
  RunToCompletion(c.io);
  if (ec == beast::error::timeout) {
    return Status::DeadlineExceeded("connecting to " + where + " timed out after " +
                                    std::to_string(config_.connect_timeout_ms) + " ms");
  }
  if (ec) return Status::Unavailable("cannot connect to " + where + ": " + ec.message());

  if (c.secure) {
    const std::string& name = config_.server_name.empty() ? config_.host : config_.server_name;
    if (!IsIpLiteral(name) &&
        SSL_set_tlsext_host_name(c.secure->native_handle(), name.c_str()) != 1) {
      return Status::Internal("cannot set the TLS server name");
    }
    c.secure->set_verify_mode(ssl::verify_peer);
    c.secure->set_verify_callback(ssl::host_name_verification(name));
    c.lowest().expires_at(connect_deadline);
    c.secure->async_handshake(ssl::stream_base::client,
                              [&](const boost::system::error_code& e) { ec = e; });
    RunToCompletion(c.io);
    if (ec == beast::error::timeout) {
      return Status::DeadlineExceeded("TLS handshake with " + where + " timed out");
    }
    if (ec) return Status::Unavailable("TLS handshake with " + where + " failed: " + ec.message());
  }
  c.connected = true;
  return Status::Ok();
}

Result<HttpAnswer> DecisionClient::Exchange(Connection& c, std::string_view body,
                                            std::string_view authorization,
                                            Clock::time_point deadline, bool* nothing_received) {
  *nothing_received = false;
  if (!c.connected) {
    Status connected = Connect(c, deadline);
    if (!connected.ok()) {
      c.connected = false;
      return connected;
    }
  }
  c.connected = false;  // until this exchange completes cleanly

  http::request<http::string_body> request{http::verb::post, config_.target, 11};
  const bool default_port = config_.port == (config_.tls ? "443" : "80");
  const bool v6 = config_.host.find(':') != std::string::npos;
  request.set(http::field::host, (v6 ? "[" + config_.host + "]" : config_.host) +
                                     (default_port ? "" : ":" + config_.port));
  request.set(http::field::user_agent, "airlock-http-decision");
  request.set(http::field::content_type, "application/json");
  request.set(http::field::accept, "application/json");
  if (!authorization.empty()) request.set(http::field::authorization, authorization);
  request.keep_alive(true);
  request.body().assign(body.data(), body.size());
  request.prepare_payload();

  boost::system::error_code ec;
  c.lowest().expires_at(deadline);
  c.WithStream([&](auto& stream) {
    http::async_write(stream, request, [&](const boost::system::error_code& e, size_t) { ec = e; });
  });
  RunToCompletion(c.io);
  if (!authorization.empty()) {
    // The header value lives in the request's own field storage: wipe it.
    const auto value = request[http::field::authorization];
    OPENSSL_cleanse(const_cast<char*>(value.data()), value.size());
  }
  const std::string timeout_message =
      "the decision service did not answer within " + std::to_string(config_.timeout_ms) + " ms";
  if (ec == beast::error::timeout || MillisLeft(deadline) < 0) {
    return Status::DeadlineExceeded(timeout_message);
  }
  if (ec) {
    *nothing_received = true;
    return Status::Unavailable("sending to the decision service failed: " + ec.message());
  }

  http::response_parser<http::string_body> parser;
  parser.header_limit(kHeaderLimit);
  parser.body_limit(static_cast<uint64_t>(config_.max_response_bytes));
  c.WithStream([&](auto& stream) {
    http::async_read(stream, c.buffer, parser,
                     [&](const boost::system::error_code& e, size_t) { ec = e; });
  });
  RunToCompletion(c.io);
  if (ec == beast::error::timeout) return Status::DeadlineExceeded(timeout_message);
  if (ec == http::error::body_limit || ec == http::error::header_limit ||
      ec == http::error::buffer_overflow) {
    return Status::ResourceExhausted("the decision service answer exceeds " +
                                     std::to_string(config_.max_response_bytes) + " bytes");
  }
  if (ec) {
    *nothing_received = !parser.got_some();
    return Status::Unavailable("reading the decision service answer failed: " + ec.message());
  }
  HttpAnswer answer;
  answer.status = parser.get().result_int();
  c.connected = parser.get().keep_alive();
  answer.body = std::move(parser.release().body());
  return answer;
}

Result<HttpAnswer> DecisionClient::Post(std::string_view body, std::string_view authorization) {
  const auto deadline = Clock::now() + std::chrono::milliseconds(config_.timeout_ms);
  Status why;
  std::unique_ptr<Connection> c = Acquire(deadline, &why);
  if (!c) return why;
  bool nothing_received = false;
  Result<HttpAnswer> answer = Exchange(*c, body, authorization, deadline, &nothing_received);
  if (!answer.ok() && c->reused && nothing_received && MillisLeft(deadline) > 0) {
    // A pooled connection the service had closed meanwhile: retry once on a
    // fresh one (a decision query has no side effects).
    c = std::make_unique<Connection>(static_cast<size_t>(config_.max_response_bytes) +
                                     kHeaderLimit);
    answer = Exchange(*c, body, authorization, deadline, &nothing_received);
  }
  Release(std::move(c), answer.ok());
  return answer;
}

}  // namespace airlock::policy::http_decision
