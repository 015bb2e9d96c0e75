// One agent link over TLS (either side): reads frames (link_frame.h) and
// hands them to a handler, and writes queued frames in order.
//
// Every handler runs on the stream's executor, one at a time; Send and Close
// may be called from any thread. Reads are bounded by the frame limit given
// at construction; queued output is bounded by kMaxQueuedBytes (a peer that
// stops reading loses the link rather than the process its memory).
#pragma once

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <nlohmann/json.hpp>

#include "airlock/cpp/status.hpp"
#include "kernel/agent/link_frame.h"

namespace airlock::agent {

using TlsStream = boost::asio::ssl::stream<boost::asio::ip::tcp::socket>;

class LinkConnection : public std::enable_shared_from_this<LinkConnection> {
 public:
  struct Handlers {
    std::function<void(LinkFrame frame)> on_frame;
    // Once, when the link ends for any reason (peer, protocol error, Close).
    std::function<void(const Status& why)> on_closed;
  };

  static constexpr size_t kMaxQueuedBytes = size_t{256} << 20;

  // `stream` has completed its TLS handshake.
  static std::shared_ptr<LinkConnection> Make(std::unique_ptr<TlsStream> stream,
                                              size_t max_frame_bytes);
  ~LinkConnection();

  // Starts reading. Call once.
  void Start(Handlers handlers);
  // Queues one frame; dropped silently once the link is closed.
  void Send(LinkFrameType type, uint32_t stream, std::string_view payload);
  void SendControl(const nlohmann::json& message);
  // Ends the link (idempotent); on_closed gets `why`.
  void Close(const Status& why);
  // Ends the link once every frame queued so far is written.
  void CloseAfterFlush(const Status& why);

  bool closed() const { return closed_.load(); }
  // When the last frame arrived (for heartbeat checks).
  std::chrono::steady_clock::time_point last_received() const;

 private:
  LinkConnection(std::unique_ptr<TlsStream> stream, size_t max_frame_bytes);
  void ReadHeader();
  void ReadPayload(LinkHeader header);
  void WriteNext();
  void CloseNow(const Status& why);

  std::unique_ptr<TlsStream> stream_;
  const size_t max_frame_bytes_;
  Handlers handlers_;
  unsigned char header_[kLinkHeaderBytes] = {};
  std::string payload_;
  std::atomic<bool> closed_{false};
  std::atomic<int64_t> last_received_ns_{0};

  std::mutex mu_;
  std::deque<std::string> queue_;   // GUARDED_BY(mu_)
  size_t queued_bytes_ = 0;         // GUARDED_BY(mu_)
  bool writing_ = false;            // GUARDED_BY(mu_)
  bool close_after_flush_ = false;  // GUARDED_BY(mu_)
  Status close_reason_;             // GUARDED_BY(mu_)
};

}  // namespace airlock::agent
