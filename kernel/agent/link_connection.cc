#include "kernel/agent/link_connection.h"

#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

namespace airlock::agent {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

std::shared_ptr<LinkConnection> LinkConnection::Make(std::unique_ptr<TlsStream> stream,
                                                     size_t max_frame_bytes) {
  return std::shared_ptr<LinkConnection>(new LinkConnection(std::move(stream), max_frame_bytes));
}

LinkConnection::LinkConnection(std::unique_ptr<TlsStream> stream, size_t max_frame_bytes)
    : stream_(std::move(stream)), max_frame_bytes_(max_frame_bytes) {
  last_received_ns_ = Clock::now().time_since_epoch().count();
}

LinkConnection::~LinkConnection() = default;

Clock::time_point LinkConnection::last_received() const {
  return Clock::time_point(Clock::duration(last_received_ns_.load()));
}

void LinkConnection::Start(Handlers handlers) {
  handlers_ = std::move(handlers);
  asio::post(stream_->get_executor(), [self = shared_from_this()] { self->ReadHeader(); });
}

void LinkConnection::ReadHeader() {
  if (closed_) return;
  asio::async_read(*stream_, asio::buffer(header_, sizeof header_),
                   [self = shared_from_this()](boost::system::error_code ec, size_t) {
                     if (ec) return self->CloseNow(Status::Unavailable("link closed by the peer"));
                     auto header = DecodeLinkHeader(self->header_, self->max_frame_bytes_);
                     if (!header.ok()) return self->CloseNow(header.status());
                     self->ReadPayload(*header);
                   });
}

void LinkConnection::ReadPayload(LinkHeader header) {
  payload_.assign(header.payload_bytes, '\0');
  asio::async_read(*stream_, asio::buffer(payload_.data(), payload_.size()),
                   [self = shared_from_this(), header](boost::system::error_code ec, size_t) {
                     if (ec) return self->CloseNow(Status::Unavailable("link closed by the peer"));
                     self->last_received_ns_ = Clock::now().time_since_epoch().count();
                     LinkFrame frame{header.type, header.stream, std::move(self->payload_)};
                     self->payload_.clear();
                     if (self->handlers_.on_frame) self->handlers_.on_frame(std::move(frame));
                     self->ReadHeader();
                   });
}

void LinkConnection::Send(LinkFrameType type, uint32_t stream, std::string_view payload) {
  if (closed_) return;
  std::string bytes = EncodeLinkFrame(type, stream, payload);
  bool start = false;
  bool overflow = false;
  {
    std::lock_guard lock(mu_);
    if (queued_bytes_ + bytes.size() > kMaxQueuedBytes) {
      overflow = true;
    } else {
      queued_bytes_ += bytes.size();
      queue_.push_back(std::move(bytes));
      start = !writing_;
      if (start) writing_ = true;
    }
  }
  if (overflow) return Close(Status::ResourceExhausted("the peer stopped reading the link"));
  if (start)
    asio::post(stream_->get_executor(), [self = shared_from_this()] { self->WriteNext(); });
}

void LinkConnection::SendControl(const nlohmann::json& message) {
  Send(LinkFrameType::kControl, 0,
       message.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

void LinkConnection::WriteNext() {
  std::string* next = nullptr;
  {
    std::unique_lock lock(mu_);
    if (closed_ || queue_.empty()) {
      writing_ = false;
      if (!closed_ && close_after_flush_) {
        const Status why = close_reason_;
        lock.unlock();
        CloseNow(why);
      }
      return;
    }
    next = &queue_.front();  // stays put: only this chain pops
  }
  asio::async_write(*stream_, asio::buffer(*next),
                    [self = shared_from_this()](boost::system::error_code ec, size_t) {
                      {
                        std::lock_guard lock(self->mu_);
                        self->queued_bytes_ -= self->queue_.front().size();
                        self->queue_.pop_front();
                      }
                      if (ec) return self->CloseNow(Status::Unavailable("link write failed"));
                      self->WriteNext();
                    });
}

void LinkConnection::Close(const Status& why) {
  asio::post(stream_->get_executor(), [self = shared_from_this(), why] { self->CloseNow(why); });
}

void LinkConnection::CloseAfterFlush(const Status& why) {
  {
    std::lock_guard lock(mu_);
    close_after_flush_ = true;
    close_reason_ = why;
  }
  asio::post(stream_->get_executor(), [self = shared_from_this()] {
    bool idle;
    {
      std::lock_guard lock(self->mu_);
      idle = !self->writing_;
      if (idle) self->writing_ = true;
    }
    if (idle) self->WriteNext();
  });
}

void LinkConnection::CloseNow(const Status& why) {
  if (closed_.exchange(true)) return;
  boost::system::error_code ignored;
  stream_->lowest_layer().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  stream_->lowest_layer().close(ignored);
  auto on_closed = std::move(handlers_.on_closed);
  handlers_.on_frame = nullptr;
  if (on_closed) on_closed(why);
}

}  // namespace airlock::agent
