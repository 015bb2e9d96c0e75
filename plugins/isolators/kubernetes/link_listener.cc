#include "link_listener.h"

#include <openssl/ssl.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "airlock/cpp/enclave_link.hpp"

namespace airlock::isolators::kubernetes {
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;

constexpr std::chrono::seconds kHandshakeTimeout{10};
constexpr std::chrono::hours kAuthorityLifetime{24 * 365};

}  // namespace

bool PendingLink::WaitConnected(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  changed_.wait_until(lock, deadline, [&] { return connected_ || abandoned_; });
  return connected_;
}

void PendingLink::Abandon() {
  std::lock_guard lock(mutex_);
  abandoned_ = true;
  changed_.notify_all();
}

bool PendingLink::connected() const {
  std::lock_guard lock(mutex_);
  return connected_;
}

bool PendingLink::closed() const {
  std::lock_guard lock(mutex_);
  return closed_;
}

struct LinkListener::Impl {
  sdk::Host host;  // a copy: the caller's may be a temporary
  std::unique_ptr<sdk::x509_mint::Authority> authority;
  asio::io_context io;
  ssl::context tls{ssl::context::tls_server};
  tcp::acceptor acceptor{io};
  std::thread thread;

  struct Waiting {
    int pump_fd = -1;
    std::shared_ptr<PendingLink> link;
  };
  std::mutex mutex;
  std::map<std::string, Waiting> waiting;  // GUARDED_BY(mutex), by certificate fingerprint

  ~Impl() {
    std::lock_guard lock(mutex);
    for (auto& [fingerprint, w] : waiting) ::close(w.pump_fd);
  }

  void Accept() {
    acceptor.async_accept([this](const boost::system::error_code& ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (!ec) Handshake(std::move(socket));
      Accept();
    });
  }

  void Handshake(tcp::socket socket) {
    auto stream = std::make_shared<std::unique_ptr<sdk::enclave_link::TlsStream>>(
        std::make_unique<sdk::enclave_link::TlsStream>(std::move(socket), tls));
    auto timer = std::make_shared<asio::steady_timer>(io, kHandshakeTimeout);
    timer->async_wait([stream](const boost::system::error_code& ec) {
      if (ec || !*stream) return;
      boost::system::error_code ignored;
      (*stream)->lowest_layer().close(ignored);
    });
    (*stream)->async_handshake(
        ssl::stream_base::server, [this, stream, timer](const boost::system::error_code& ec) {
          timer->cancel();
          if (ec) return;
          X509* peer = SSL_get0_peer_certificate((*stream)->native_handle());
          const std::string fingerprint = peer != nullptr ? sdk::x509_mint::Sha256Hex(peer) : "";
          Waiting found;
          {
            std::lock_guard lock(mutex);
            auto it = waiting.find(fingerprint);
            if (it != waiting.end()) {
              found = it->second;
              waiting.erase(it);  // one connection per certificate
            }
          }
          if (found.pump_fd < 0) {
            host.Warn(
                "enclave link: refused a connection whose certificate belongs to no "
                "waiting enclave (unknown, already used or abandoned)");
            boost::system::error_code ignored;
            (*stream)->lowest_layer().close(ignored);
            return;
          }
          sdk::enclave_link::LocalSocket local(io);
          boost::system::error_code assigned;
          local.assign(asio::local::stream_protocol(), found.pump_fd, assigned);
          if (assigned) {
            ::close(found.pump_fd);
            return;
          }
          sdk::enclave_link::Pump(std::move(*stream), std::move(local), [link = found.link] {
            std::lock_guard lock(link->mutex_);
            link->closed_ = true;
          });
          std::lock_guard lock(found.link->mutex_);
          found.link->connected_ = true;
          found.link->changed_.notify_all();
        });
  }
};

LinkListener::LinkListener(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

LinkListener::~LinkListener() {
  asio::post(impl_->io, [impl = impl_.get()] {
    boost::system::error_code ignored;
    impl->acceptor.close(ignored);
    impl->io.stop();
  });
  if (impl_->thread.joinable()) impl_->thread.join();
}

Result<std::unique_ptr<LinkListener>> LinkListener::Start(const std::string& address, uint16_t port,
                                                          const std::string& advertise_host,
                                                          sdk::Host host) {
  auto impl = std::make_unique<Impl>();
  impl->host = std::move(host);
  AIRLOCK_ASSIGN_OR_RETURN(impl->authority, sdk::x509_mint::Authority::Create(
                                                "Airlock enclave link CA", kAuthorityLifetime));
  AIRLOCK_ASSIGN_OR_RETURN(
      auto server, impl->authority->Issue(advertise_host, {advertise_host},
                                          sdk::x509_mint::Usage::kServer, kAuthorityLifetime));
  SSL_CTX_set_min_proto_version(impl->tls.native_handle(), TLS1_3_VERSION);
  boost::system::error_code ec;
  impl->tls.use_certificate_chain(asio::buffer(server.certificate_pem), ec);
  if (!ec) {
    impl->tls.use_private_key(
        asio::buffer(server.key_pem.view().data(), server.key_pem.view().size()), ssl::context::pem,
        ec);
  }
  if (!ec)
    impl->tls.add_certificate_authority(asio::buffer(impl->authority->certificate_pem()), ec);
  if (ec) return Status::Internal("enclave link TLS set-up failed: " + ec.message());
  // The store holds this authority only (none of the system's roots).
  impl->tls.set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);

  const auto ip = asio::ip::make_address(address, ec);
  if (ec) {
    return Status::InvalidArgument("kubernetes isolator configuration.link.listen_address '" +
                                   address.substr(0, 64) + "' is not an IP address");
  }
  const tcp::endpoint endpoint(ip, port);
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status::Unavailable("enclave link: cannot listen on " + address + ":" +
                               std::to_string(port) + ": " + ec.message());
  }
  Impl* raw = impl.get();
  raw->Accept();
  raw->thread = std::thread([raw] { raw->io.run(); });
  return std::unique_ptr<LinkListener>(new LinkListener(std::move(impl)));
}

uint16_t LinkListener::port() const {
  return impl_->acceptor.local_endpoint().port();
}

Result<ExpectedEnclave> LinkListener::Expect(const std::string& enclave_name,
                                             std::chrono::seconds lifetime) {
  AIRLOCK_ASSIGN_OR_RETURN(
      auto issued,
      impl_->authority->Issue(enclave_name, {}, sdk::x509_mint::Usage::kClient, lifetime));
  AIRLOCK_ASSIGN_OR_RETURN(auto pair, sdk::enclave_link::MakeControlPair());
  ExpectedEnclave expected;
  expected.host_fd = pair[0];
  expected.ca_pem = impl_->authority->certificate_pem();
  expected.certificate_pem = std::move(issued.certificate_pem);
  expected.key_pem = std::move(issued.key_pem);
  expected.fingerprint = issued.sha256_hex;
  expected.link = std::make_shared<PendingLink>();
  std::lock_guard lock(impl_->mutex);
  impl_->waiting[expected.fingerprint] = {pair[1], expected.link};
  return expected;
}

void LinkListener::Forget(const std::string& fingerprint) {
  int fd = -1;
  {
    std::lock_guard lock(impl_->mutex);
    auto it = impl_->waiting.find(fingerprint);
    if (it == impl_->waiting.end()) return;
    fd = it->second.pump_fd;
    it->second.link->Abandon();
    impl_->waiting.erase(it);
  }
  ::close(fd);
}

}  // namespace airlock::isolators::kubernetes
