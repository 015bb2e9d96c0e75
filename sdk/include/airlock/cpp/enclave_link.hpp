// Carrying an enclave's control channel over a network stream, for isolators
// that run enclaves somewhere else (a pod, another machine): provision()
// hands the host one end of a local socket pair, and the bytes of the other
// end travel over a TLS connection the remote enclave made (or the isolator
// made to it). The control channel is a plain byte stream in both
// directions; descriptors cannot cross a network, so such an isolator
// reports "egress": "direct" and the host sends no egress routes.
//
// Pump() copies both directions on the caller's io_context and calls `done`
// once, when either side ends or fails (the other is shut down then).
// Header-only; needs Boost.Asio's SSL support (link OpenSSL::SSL, OpenSSL::Crypto).
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <functional>
#include <memory>
#include <utility>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>

#include "airlock/cpp/status.hpp"

namespace airlock::sdk::enclave_link {

using TlsStream = boost::asio::ssl::stream<boost::asio::ip::tcp::socket>;
using LocalSocket = boost::asio::local::stream_protocol::socket;

// A connected AF_UNIX stream pair: [0] for the host (provision's
// control_fd), [1] for the pump. Both close-on-exec.
inline Result<std::array<int, 2>> MakeControlPair() {
  int fds[2] = {-1, -1};
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    return Status::Unavailable("socketpair failed");
  }
  return std::array<int, 2>{fds[0], fds[1]};
}

namespace detail {

struct PumpState : std::enable_shared_from_this<PumpState> {
  PumpState(std::unique_ptr<TlsStream> t, LocalSocket l, std::function<void()> d)
      : tls(std::move(t)), local(std::move(l)), done(std::move(d)) {}
  std::unique_ptr<TlsStream> tls;
  LocalSocket local;
  std::function<void()> done;
  std::array<char, 16384> from_tls{};
  std::array<char, 16384> from_local{};
  bool finished = false;

  void Finish() {
    if (finished) return;
    finished = true;
    boost::system::error_code ignored;
    local.close(ignored);
    tls->lowest_layer().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
    tls->lowest_layer().close(ignored);
    if (done) std::exchange(done, nullptr)();
  }

  void ReadTls() {
    auto self = shared_from_this();
    tls->async_read_some(
        boost::asio::buffer(from_tls), [self](const boost::system::error_code& ec, size_t n) {
          if (ec || self->finished) return self->Finish();
          boost::asio::async_write(self->local, boost::asio::buffer(self->from_tls.data(), n),
                                   [self](const boost::system::error_code& wec, size_t) {
                                     if (wec) return self->Finish();
                                     self->ReadTls();
                                   });
        });
  }

  void ReadLocal() {
    auto self = shared_from_this();
    local.async_read_some(
        boost::asio::buffer(from_local), [self](const boost::system::error_code& ec, size_t n) {
          if (ec || self->finished) return self->Finish();
          boost::asio::async_write(*self->tls, boost::asio::buffer(self->from_local.data(), n),
                                   [self](const boost::system::error_code& wec, size_t) {
                                     if (wec) return self->Finish();
                                     self->ReadLocal();
                                   });
        });
  }
};

}  // namespace detail

// Copies bytes between `tls` (handshake done) and `local` until either ends.
// Both must belong to the same single-threaded io_context (one TLS object is
// never read and written from two threads). `done` runs on that context.
inline void Pump(std::unique_ptr<TlsStream> tls, LocalSocket local, std::function<void()> done) {
  auto state =
      std::make_shared<detail::PumpState>(std::move(tls), std::move(local), std::move(done));
  state->ReadTls();
  state->ReadLocal();
}

}  // namespace airlock::sdk::enclave_link
