#include "connection.h"

#include <sys/socket.h>

#include <array>

#include <boost/asio/write.hpp>

namespace airlock::tunnels::pgwire {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;

namespace {
constexpr size_t kReadChunk = 16 * 1024;
}

Connection::Connection(tcp::socket socket) : socket_(std::move(socket)) {
  boost::system::error_code ec;
  const auto remote = socket_.remote_endpoint(ec);
  if (ec) {
    peer_ = "unknown";
  } else {
    peer_ = remote.address().to_string() + ":" + std::to_string(remote.port());
    peer_is_loopback_ =
        remote.address().is_loopback() ||
        (remote.address().is_v6() && remote.address().to_v6().is_v4_mapped() &&
         net::ip::make_address_v4(net::ip::v4_mapped, remote.address().to_v6()).is_loopback());
  }
  socket_.set_option(tcp::no_delay(true), ec);
  native_fd_ = socket_.native_handle();
}

Connection::~Connection() {
  Close();
}

Status Connection::StartTls(ssl::context& context) {
  tls_ = std::make_unique<ssl::stream<tcp::socket&>>(socket_, context);
  boost::system::error_code ec;
  tls_->handshake(ssl::stream_base::server, ec);
  if (ec) return Status::Unavailable("TLS handshake failed: " + ec.message());
  return Status::Ok();
}

bool Connection::Read(size_t n, std::string* out) {
  std::array<char, kReadChunk> chunk;
  while (buffered() < n) {
    if (in_pos_ > 0 && in_pos_ == in_.size()) {
      in_.clear();
      in_pos_ = 0;
    }
    boost::system::error_code ec;
    const size_t got = tls_ != nullptr ? tls_->read_some(net::buffer(chunk), ec)
                                       : socket_.read_some(net::buffer(chunk), ec);
    if (ec || got == 0) return false;
    in_.append(chunk.data(), got);
  }
  out->append(in_, in_pos_, n);
  in_pos_ += n;
  if (in_pos_ == in_.size()) {
    in_.clear();
    in_pos_ = 0;
  } else if (in_pos_ > kReadChunk) {
    in_.erase(0, in_pos_);
    in_pos_ = 0;
  }
  return true;
}

bool Connection::Write(std::string_view data) {
  boost::system::error_code ec;
  if (tls_ != nullptr) {
    net::write(*tls_, net::buffer(data.data(), data.size()), ec);
  } else {
    net::write(socket_, net::buffer(data.data(), data.size()), ec);
  }
  return !ec;
}

void Connection::SetDeadline(Clock::duration from_now) {
  deadline_ns_ = std::chrono::duration_cast<std::chrono::nanoseconds>(
                     (Clock::now() + from_now).time_since_epoch())
                     .count();
}

bool Connection::DeadlinePassed(Clock::time_point now) const {
  const int64_t deadline = deadline_ns_.load();
  return deadline != 0 &&
         std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count() >
             deadline;
}

void Connection::ShutdownRead() {
  std::lock_guard<std::mutex> lock(fd_mutex_);
  // shutdown() acts on the socket from any thread; the lock keeps the
  // descriptor from being closed (and its number reused) meanwhile.
  if (!fd_closed_) ::shutdown(native_fd_, SHUT_RD);
}

void Connection::ShutdownBoth() {
  std::lock_guard<std::mutex> lock(fd_mutex_);
  if (!fd_closed_) ::shutdown(native_fd_, SHUT_RDWR);
}

void Connection::Close() {
  std::lock_guard<std::mutex> lock(fd_mutex_);
  if (fd_closed_) return;
  fd_closed_ = true;
  boost::system::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

}  // namespace airlock::tunnels::pgwire
