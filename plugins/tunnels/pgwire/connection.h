// One client socket, plain or upgraded to TLS after an SSLRequest, used with
// blocking calls from the connection's own thread. Other threads may only
// shut it down (revocation, the idle watchdog, tunnel shutdown); the
// watchdog enforces the deadline set around each blocking call.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>

#include "airlock/cpp/status.hpp"

namespace airlock::tunnels::pgwire {

class Connection {
 public:
  using Clock = std::chrono::steady_clock;

  explicit Connection(boost::asio::ip::tcp::socket socket);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  const std::string& peer() const { return peer_; }
  bool peer_is_loopback() const { return peer_is_loopback_; }
  bool tls() const { return tls_ != nullptr; }

  // Bytes received but not consumed yet.
  size_t buffered() const { return in_.size() - in_pos_; }

  // Server-side TLS handshake. Must be called with nothing buffered.
  Status StartTls(boost::asio::ssl::context& context);

  // Appends exactly n bytes to *out. False on end of stream, error, or when
  // the socket was shut down (deadline, revocation).
  bool Read(size_t n, std::string* out);
  bool Write(std::string_view data);

  // The deadline the watchdog enforces for the blocking call in progress.
  void SetDeadline(Clock::duration from_now);
  void ClearDeadline() { deadline_ns_ = 0; }
  bool DeadlinePassed(Clock::time_point now) const;

  // From any thread.
  void ShutdownRead();
  void ShutdownBoth();
  // From the owner thread: closes the descriptor.
  void Close();

 private:
  boost::asio::ip::tcp::socket socket_;
  std::unique_ptr<boost::asio::ssl::stream<boost::asio::ip::tcp::socket&>> tls_;
  std::string peer_;
  bool peer_is_loopback_ = false;
  std::string in_;
  size_t in_pos_ = 0;

  std::atomic<int64_t> deadline_ns_{0};  // steady clock; 0 = none
  std::mutex fd_mutex_;
  int native_fd_ = -1;      // GUARDED_BY(fd_mutex_) for use by other threads
  bool fd_closed_ = false;  // GUARDED_BY(fd_mutex_)
};

}  // namespace airlock::tunnels::pgwire
