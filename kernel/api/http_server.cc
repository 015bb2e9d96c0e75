// The listener and the server's lifecycle: TLS context, bind, accept loop,
// I/O threads and the handler pool. Per-connection work is http_session.cc.
#include "kernel/api/http_server.h"

#include <openssl/ssl.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core/bind_handler.hpp>

#include "kernel/api/client_hello.h"
#include "kernel/api/http_session.h"

namespace airlock {
namespace {

namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using boost::system::error_code;

// Pause before accepting again after an accept error (EMFILE, ENFILE...) so
// a full descriptor table does not turn the accept loop into a busy loop.
constexpr std::chrono::milliseconds kAcceptBackoff{50};

// TLS 1.2 suites with forward secrecy and AEAD only; TLS 1.3 suites are
// OpenSSL's defaults, all of which qualify.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

constexpr unsigned char kSessionIdContext[] = "airlock-http";

Result<std::unique_ptr<ssl::context>> MakeTlsContext(const TlsOptions& tls) {
  if (tls.certificate_file.empty() || tls.private_key_file.empty()) {
    return Status::InvalidArgument("tls: certificate_file and private_key_file are required");
  }
  auto context = std::make_unique<ssl::context>(ssl::context::tls_server);
  SSL_CTX* native = context->native_handle();
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                       ssl::context::single_dh_use);
  SSL_CTX_set_options(
      native, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION);
  if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1 ||
      SSL_CTX_set_cipher_list(native, kTls12Ciphers) != 1) {
    return Status::Internal("tls: cannot restrict protocol versions and ciphers");
  }
  error_code ec;
  context->use_certificate_chain_file(tls.certificate_file, ec);
  if (ec) {
    return Status::InvalidArgument("tls: cannot load certificate chain " + tls.certificate_file +
                                   ": " + ec.message());
  }
  context->use_private_key_file(tls.private_key_file, ssl::context::pem, ec);
  if (ec) {
    return Status::InvalidArgument("tls: cannot load private key " + tls.private_key_file + ": " +
                                   ec.message());
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    return Status::InvalidArgument("tls: private key does not match the certificate");
  }
  if (!tls.client_ca_file.empty()) {
    // Advertise the CA names so clients pick the right certificate, but
    // accept any certificate: the identity plugin verifies it, with reasons
    // it can audit, instead of a bare handshake failure here.
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(tls.client_ca_file.c_str());
    if (names == nullptr) {
      return Status::InvalidArgument("tls: cannot load client CA names from " + tls.client_ca_file);
    }
    SSL_CTX_set_client_CA_list(native, names);  // takes ownership
    SSL_CTX_set_verify(native, SSL_VERIFY_PEER | SSL_VERIFY_CLIENT_ONCE,
                       [](int, X509_STORE_CTX*) { return 1; });
    // Resumed sessions must stay within this server's certificate context.
    SSL_CTX_set_session_id_context(native, kSessionIdContext, sizeof(kSessionIdContext) - 1);
  } else {
    SSL_CTX_set_verify(native, SSL_VERIFY_NONE, nullptr);
  }
  return context;
}

Status ValidateOptions(const HttpServerOptions& options) {
  if (options.io_threads < 1 || options.handler_threads < 1) {
    return Status::InvalidArgument("http: io_threads and handler_threads must be at least 1");
  }
  if (options.body_limit == 0 || options.header_limit == 0 || options.max_header_count == 0 ||
      options.max_connections == 0) {
    return Status::InvalidArgument("http: limits must be positive");
  }
  if (options.header_limit > std::numeric_limits<std::uint32_t>::max()) {
    return Status::InvalidArgument("http: header_limit is too large");
  }
  if (options.read_timeout.count() <= 0 || options.idle_timeout.count() <= 0 ||
      options.preauth_timeout.count() <= 0) {
    return Status::InvalidArgument("http: timeouts must be positive");
  }
  const std::string budget =
      sdk::ConnectionLimits{options.max_connections, options.max_preauth_connections,
                            options.max_preauth_connections_per_address, 0}
          .Check();
  if (!budget.empty()) return Status::InvalidArgument("http: " + budget);
  return Status::Ok();
}

// Accepts connections, each onto its own strand, until the I/O contexts
// stop. Connections are dealt to the I/O contexts in turn; each context has
// one thread, so a connection's completions never hop between threads (with
// one context run by several threads, the thread that reaps an event from
// epoll wakes another to run its handler: a context switch per event).
class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(std::vector<net::io_context*> contexts,
           std::shared_ptr<http_internal::ServerContext> context)
      : contexts_(std::move(contexts)),
        context_(std::move(context)),
        acceptor_(net::make_strand(*contexts_.front())),
        backoff_(acceptor_.get_executor()) {}

  Status Listen(const tcp::endpoint& endpoint) {
    const std::string where =
        endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
    error_code ec;
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) return Status::Unavailable("http: cannot listen on " + where + ": " + ec.message());
    port_ = acceptor_.local_endpoint(ec).port();
    if (ec) return Status::Unavailable("http: cannot read bound port: " + ec.message());
    return Status::Ok();
  }

  uint16_t port() const { return port_; }

  void Run() {
    net::dispatch(acceptor_.get_executor(),
                  boost::beast::bind_front_handler(&Listener::DoAccept, shared_from_this()));
  }

 private:
  void DoAccept() {
    net::io_context& ioc = *contexts_[next_context_];
    next_context_ = (next_context_ + 1) % contexts_.size();
    acceptor_.async_accept(net::make_strand(ioc), boost::beast::bind_front_handler(
                                                      &Listener::OnAccept, shared_from_this()));
  }

  // A connection whose ClientHello is still being read, to tell whether it
  // goes to the hand-off (HttpServerOptions::handoff_alpn).
  struct Sniffing {
    explicit Sniffing(tcp::socket s)
        : socket(std::move(s)), deadline(socket.get_executor()), retry(socket.get_executor()) {}
    tcp::socket socket;
    net::steady_timer deadline;  // preauth_timeout from accept: then it closes
    net::steady_timer retry;     // the rest of the record is on its way
  };

  void StartSniffing(tcp::socket socket) {
    auto sniffing = std::make_shared<Sniffing>(std::move(socket));
    sniffing_.fetch_add(1);
    sniffing->deadline.expires_after(context_->options.preauth_timeout);
    sniffing->deadline.async_wait([sniffing](error_code ec) {
      if (!ec) sniffing->socket.close(ec);
    });
    Sniff(sniffing);
  }

  void EndSniffing(const std::shared_ptr<Sniffing>& sniffing) {
    sniffing->deadline.cancel();
    sniffing->retry.cancel();
    sniffing_.fetch_sub(1);
  }

  // Peeks at the ClientHello (reading nothing) until it tells whether the
  // connection is for the hand-off: then its descriptor goes there,
  // otherwise its session starts as usual.
  void Sniff(std::shared_ptr<Sniffing> sniffing) {
    sniffing->socket.async_wait(
        tcp::socket::wait_read, [self = shared_from_this(), sniffing](error_code ec) {
          if (ec) return self->EndSniffing(sniffing);
          std::string peeked(kMaxClientHelloBytes, '\0');
          const ssize_t got = ::recv(sniffing->socket.native_handle(), peeked.data(), peeked.size(),
                                     MSG_PEEK | MSG_DONTWAIT);
          if (got <= 0) return self->EndSniffing(sniffing);  // gone: the socket closes
          peeked.resize(static_cast<size_t>(got));
          const ClientHelloScan scan = ScanClientHello(peeked);
          if (scan.state == ClientHelloScan::State::kIncomplete) {
            sniffing->retry.expires_after(std::chrono::milliseconds(5));
            sniffing->retry.async_wait([self, sniffing](error_code wait_ec) {
              if (wait_ec) return self->EndSniffing(sniffing);
              self->Sniff(sniffing);
            });
            return;
          }
          self->EndSniffing(sniffing);
          const auto& options = self->context_->options;
          for (const std::string& offered : scan.protocols) {
            if (offered != options.handoff_alpn) continue;
            error_code released;
            const int fd = sniffing->socket.release(released);
            if (!released && fd >= 0) options.handoff(fd);
            return;
          }
          http_internal::StartSession(std::move(sniffing->socket), self->context_);
        });
  }

  void OnAccept(error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted) return;
    if (ec) {
      spdlog::warn("http: accept failed: {}", ec.message());
      backoff_.expires_after(kAcceptBackoff);
      backoff_.async_wait([self = shared_from_this()](error_code wait_ec) {
        if (!wait_ec) self->DoAccept();
      });
      return;
    }
    // While too many are being sniffed, the budget of the sessions decides.
    if (context_->ssl && context_->options.handoff &&
        sniffing_.load() < context_->options.max_preauth_connections) {
      StartSniffing(std::move(socket));
    } else {
      http_internal::StartSession(std::move(socket), context_);
    }
    DoAccept();
  }

  const std::vector<net::io_context*> contexts_;
  size_t next_context_ = 0;  // only the acceptor's strand touches it
  const std::shared_ptr<http_internal::ServerContext> context_;
  tcp::acceptor acceptor_;
  net::steady_timer backoff_;
  uint16_t port_ = 0;
  std::atomic<size_t> sniffing_{0};  // connections whose ClientHello is being read
};

}  // namespace

struct HttpServer::Impl {
  // Destruction order matters: sessions and the listener belong to the I/O
  // contexts, and queued handler-pool work holds sessions, so Stop() tears
  // down the pool, then the listener, then the I/O contexts.
  std::vector<std::unique_ptr<net::io_context>> contexts;  // one per I/O thread
  // Keep a context with no connection yet running until Stop().
  std::vector<net::executor_work_guard<net::io_context::executor_type>> keep_running;
  std::unique_ptr<net::thread_pool> handler_pool;
  std::shared_ptr<Listener> listener;
  std::shared_ptr<http_internal::ServerContext> context;
  std::vector<std::thread> io_threads;
  uint16_t port = 0;
  std::mutex stop_mutex;
  bool stopped = false;  // GUARDED_BY(stop_mutex)
};

Status CheckTlsOptions(const TlsOptions& tls) {
  return MakeTlsContext(tls).status();
}

Result<std::unique_ptr<HttpServer>> HttpServer::Start(HttpServerOptions options,
                                                      HttpHandler handler) {
  AIRLOCK_RETURN_IF_ERROR(ValidateOptions(options));
  if (!handler) return Status::InvalidArgument("http: a handler is required");
  error_code ec;
  const auto address = net::ip::make_address(options.address, ec);
  if (ec) return Status::InvalidArgument("http: invalid listen address '" + options.address + "'");
  const tcp::endpoint endpoint(address, options.port);

  std::unique_ptr<ssl::context> tls_context;
  if (options.tls) {
    AIRLOCK_ASSIGN_OR_RETURN(tls_context, MakeTlsContext(*options.tls));
  }

  auto impl = std::make_unique<Impl>();
  const int io_threads = options.io_threads;
  std::vector<net::io_context*> contexts;
  for (int i = 0; i < io_threads; ++i) {
    impl->contexts.push_back(std::make_unique<net::io_context>(1));
    contexts.push_back(impl->contexts.back().get());
    impl->keep_running.push_back(net::make_work_guard(*impl->contexts.back()));
  }
  impl->handler_pool = std::make_unique<net::thread_pool>(options.handler_threads);
  auto context = std::make_shared<http_internal::ServerContext>(
      std::move(options), std::move(handler), impl->handler_pool->get_executor());
  context->ssl = std::move(tls_context);
  impl->context = context;

  impl->listener = std::make_shared<Listener>(std::move(contexts), context);
  AIRLOCK_RETURN_IF_ERROR(impl->listener->Listen(endpoint));
  impl->port = impl->listener->port();
  impl->listener->Run();

  impl->io_threads.reserve(static_cast<size_t>(io_threads));
  for (int i = 0; i < io_threads; ++i) {
    impl->io_threads.emplace_back([ioc = impl->contexts[static_cast<size_t>(i)].get()] {
      // Completion handlers do not throw by design; if one does (allocation
      // failure), log it and keep serving the other connections.
      for (;;) {
        try {
          ioc->run();
          return;
        } catch (const std::exception& e) {
          spdlog::error("http: I/O thread caught: {}", e.what());
        }
      }
    });
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() {
  Stop();
}

uint16_t HttpServer::port() const {
  return impl_->port;
}

sdk::ConnectionBudgetStats HttpServer::connection_stats() const {
  return impl_->context->budget.stats();
}

void HttpServer::Stop() {
  std::lock_guard<std::mutex> lock(impl_->stop_mutex);
  if (impl_->stopped) return;
  impl_->stopped = true;
  // Stopping the contexts abandons every pending accept, read and write at
  // once, so idle keep-alive connections cannot delay shutdown.
  for (auto& ioc : impl_->contexts) ioc->stop();
  for (auto& thread : impl_->io_threads) thread.join();
  impl_->io_threads.clear();
  // Running handlers finish (their responses are queued to the stopped
  // context and dropped); queued ones are destroyed unrun.
  impl_->handler_pool->stop();
  impl_->handler_pool->join();
  impl_->handler_pool.reset();
  impl_->listener.reset();
  // Destroying the contexts destroys the queued completion handlers, which
  // release the last references to sessions and so close their sockets.
  impl_->keep_running.clear();
  impl_->contexts.clear();
}

}  // namespace airlock
