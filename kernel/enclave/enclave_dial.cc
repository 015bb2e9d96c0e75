#include "kernel/enclave/enclave_dial.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <fstream>
#include <sstream>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>

#include "airlock/cpp/enclave_link.hpp"

namespace airlock::enclave {
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kAttemptTimeout{5000};

bool SplitHostPort(const std::string& text, std::string* host, std::string* port) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) return false;
  *host = text.substr(0, colon);
  if (host->size() > 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  *port = text.substr(colon + 1);
  return port->find_first_not_of("0123456789") == std::string::npos && port->size() <= 5;
}

Result<ssl::context> LinkContext(const std::string& dir) {
  ssl::context tls(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(tls.native_handle(), TLS1_3_VERSION);
  boost::system::error_code ec;
  tls.load_verify_file(dir + "/ca.crt", ec);
  if (ec) return Status::FailedPrecondition("link directory: cannot load ca.crt: " + ec.message());
  tls.use_certificate_chain_file(dir + "/tls.crt", ec);
  if (ec) return Status::FailedPrecondition("link directory: cannot load tls.crt: " + ec.message());
  tls.use_private_key_file(dir + "/tls.key", ssl::context::pem, ec);
  if (ec) return Status::FailedPrecondition("link directory: cannot load tls.key: " + ec.message());
  if (SSL_CTX_check_private_key(tls.native_handle()) != 1) {
    return Status::FailedPrecondition("link directory: tls.key does not match tls.crt");
  }
  tls.set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  return tls;
}

// One attempt: TCP connect and the TLS handshake, both bounded.
Result<std::unique_ptr<sdk::enclave_link::TlsStream>> Attempt(asio::io_context& io, ssl::context& tls,
                                                         const std::string& host,
                                                         const std::string& port) {
  auto stream = std::make_unique<sdk::enclave_link::TlsStream>(io, tls);
  SSL* native = stream->native_handle();
  boost::system::error_code ec;
  asio::ip::make_address(host, ec);
  if (!ec) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(native), host.c_str());
  } else {
    SSL_set_tlsext_host_name(native, host.c_str());
    SSL_set1_host(native, host.c_str());
  }
  tcp::resolver resolver(io);
  auto endpoints = resolver.resolve(host, port, ec);
  if (ec) return Status::Unavailable("cannot resolve the kernel " + host + ": " + ec.message());

  boost::system::error_code result = asio::error::would_block;
  asio::async_connect(stream->lowest_layer(), endpoints,
                      [&](const boost::system::error_code& e, const tcp::endpoint&) {
                        if (e) {
                          result = e;
                          return;
                        }
                        stream->async_handshake(
                            ssl::stream_base::client,
                            [&](const boost::system::error_code& h) { result = h; });
                      });
  io.restart();
  io.run_for(kAttemptTimeout);
  if (result == asio::error::would_block) {
    boost::system::error_code ignored;
    stream->lowest_layer().close(ignored);
    io.restart();
    io.run();  // lets the cancelled operations finish
    return Status::DeadlineExceeded("the kernel did not answer in time");
  }
  if (result) return Status::Unavailable("cannot reach the kernel: " + result.message());
  return stream;
}

}  // namespace

Status DialAndServe(const DialOptions& options, EnclaveEnvironment env) {
  std::string host, port;
  if (!SplitHostPort(options.kernel, &host, &port)) {
    return Status::InvalidArgument("--dial wants host:port");
  }
  AIRLOCK_ASSIGN_OR_RETURN(ssl::context tls, LinkContext(options.link_dir));
  asio::io_context io;
  const Clock::time_point deadline = Clock::now() + options.connect_deadline;
  std::unique_ptr<sdk::enclave_link::TlsStream> stream;
  Status last = Status::Unavailable("not tried");
  for (auto backoff = std::chrono::milliseconds(100);;
       backoff = std::min(backoff * 2, kAttemptTimeout)) {
    auto attempt = Attempt(io, tls, host, port);
    if (attempt.ok()) {
      stream = std::move(attempt).value();
      break;
    }
    last = attempt.status();
    if (Clock::now() + backoff >= deadline) return last.WithContext("dialing " + options.kernel);
    std::this_thread::sleep_for(backoff);
  }

  AIRLOCK_ASSIGN_OR_RETURN(auto pair, sdk::enclave_link::MakeControlPair());
  sdk::enclave_link::LocalSocket local(io);
  boost::system::error_code ec;
  local.assign(asio::local::stream_protocol(), pair[1], ec);
  if (ec) {
    ::close(pair[0]);
    ::close(pair[1]);
    return Status::Internal("cannot adopt the control socket: " + ec.message());
  }
  Status served = Status::Ok();
  std::thread enclave([&served, fd = pair[0], env = std::move(env)]() mutable {
    served = ServeEnclave(fd, std::move(env));
  });
  sdk::enclave_link::Pump(std::move(stream), std::move(local), [] {});
  io.restart();
  io.run();
  enclave.join();
  return served;
}

}  // namespace airlock::enclave
