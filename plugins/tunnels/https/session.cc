#include "session.h"

#include <sys/socket.h>

#include <array>
#include <chrono>
#include <exception>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

namespace airlock::tunnels::https {
namespace {

namespace beast = boost::beast;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;

constexpr uint32_t kHeaderLimit = 8 * 1024;
constexpr auto kWriteTimeout = std::chrono::seconds(30);
constexpr auto kLingerTimeout = std::chrono::seconds(2);
constexpr size_t kMaxLingerBytes = 1 << 20;
constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";

template <typename Stream>
constexpr bool kIsTls = !std::is_same_v<Stream, beast::tcp_stream>;

// Waits for a result posted by the connection's strand. A promise destroyed
// unfulfilled (the I/O context stopped) reads as failure.
bool Await(std::future<bool>& result) {
  try {
    return result.get();
  } catch (const std::future_error&) {
    return false;
  }
}

template <typename Stream>
class Session final : public SessionHandle,
                      public ResponseChannel,
                      public std::enable_shared_from_this<Session<Stream>> {
 public:
  template <typename... StreamArgs>
  Session(SessionContext& context, tcp::socket&& socket, StreamArgs&... stream_args)
      : context_(context), stream_(std::move(socket), stream_args...) {
    boost::system::error_code ec;
    const auto peer = Lowest().socket().remote_endpoint(ec);
    remote_ = ec ? std::string("unknown")
                 : peer.address().to_string() + ":" + std::to_string(peer.port());
    native_fd_ = Lowest().socket().native_handle();
  }
  // Before the first completion, from the acceptor's strand.
  void Start(sdk::ConnectionBudget::Ticket ticket) {
    ticket_.emplace(std::move(ticket));
    net::dispatch(stream_.get_executor(), [self = this->shared_from_this()] {
      // The TLS handshake and the first request header are pre-authentication
      // time, under one deadline.
      self->Lowest().expires_after(self->context_.config.preauth_timeout);
      if constexpr (kIsTls<Stream>) {
        self->DoHandshake();
      } else {
        self->DoReadHeader();
      }
    });
  }

  // --- SessionHandle -------------------------------------------------------

  void ForceClose() override {
    std::lock_guard<std::mutex> lock(fd_mutex_);
    broken_ = true;
    // shutdown() acts on the socket from any thread: pending reads and writes
    // on the strand fail at once and the session closes itself. The lock keeps
    // the descriptor from being closed (and its number reused) meanwhile.
    if (!fd_closed_) ::shutdown(native_fd_, SHUT_RDWR);
  }

  bool ClaimEndpointShare(const std::string& request_id) override {
    if (!authenticated_) authenticated_ = ticket_->Authenticate(request_id);
    return authenticated_;
  }

  // --- ResponseChannel -----------------------------------------------------

  void Respond(Response response) override {
    job_slot_.reset();
    net::post(stream_.get_executor(),
              [self = this->shared_from_this(), res = std::move(response)]() mutable {
                self->Write(std::move(res));
              });
  }

  bool BeginChunked(ResponseHeader header) override {
    auto done = std::make_shared<std::promise<bool>>();
    auto result = done->get_future();
    net::post(stream_.get_executor(),
              [self = this->shared_from_this(), done, header = std::move(header)]() mutable {
                if (self->broken_) return done->set_value(false);
                self->chunked_header_.emplace(std::move(header));
                self->chunked_header_->chunked(true);
                self->chunked_serializer_.emplace(*self->chunked_header_);
                self->Lowest().expires_after(kWriteTimeout);
                http::async_write_header(self->stream_, *self->chunked_serializer_,
                                         [self, done](beast::error_code ec, size_t) {
                                           if (ec) self->broken_ = true;
                                           done->set_value(!ec);
                                         });
              });
    return Await(result);
  }

  bool WriteChunk(std::string_view data) override {
    if (data.empty()) return !broken_;
    auto done = std::make_shared<std::promise<bool>>();
    auto result = done->get_future();
    net::post(stream_.get_executor(), [self = this->shared_from_this(), done, data] {
      if (self->broken_) return done->set_value(false);
      self->Lowest().expires_after(kWriteTimeout);
      net::async_write(self->stream_, http::make_chunk(net::buffer(data.data(), data.size())),
                       [self, done](beast::error_code ec, size_t) {
                         if (ec) self->broken_ = true;
                         done->set_value(!ec);
                       });
    });
    return Await(result);  // `data` stays alive until the write completed
  }

  void EndChunked(std::string data, http::fields trailers, bool keep_alive) override {
    job_slot_.reset();
    net::post(stream_.get_executor(), [self = this->shared_from_this(), data = std::move(data),
                                       trailers = std::move(trailers), keep_alive]() mutable {
      self->tail_ = std::move(data);
      self->trailers_ = std::move(trailers);
      self->WriteTail(keep_alive, /*terminate=*/true);
    });
  }

  void AbortChunked(std::string data) override {
    job_slot_.reset();
    net::post(stream_.get_executor(),
              [self = this->shared_from_this(), data = std::move(data)]() mutable {
                self->tail_ = std::move(data);
                self->WriteTail(/*keep_alive=*/false, /*terminate=*/false);
              });
  }

  bool broken() const override { return broken_; }

 private:
  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(stream_); }

  void DoHandshake() {
    if constexpr (kIsTls<Stream>) {
      stream_.async_handshake(ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (ec) return self->DoClose();
                                self->DoReadHeader();
                              });
    }
  }

  void DoReadHeader() {
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    parser_->body_limit(context_.config.max_body_bytes);
    // One deadline for the keep-alive wait and the whole request: short until
    // the connection has presented a valid credential (the first request's
    // was armed at accept).
    if (authenticated_) {
      Lowest().expires_after(context_.config.idle_timeout);
    } else if (!first_request_) {
      Lowest().expires_after(context_.config.preauth_timeout);
    }
    first_request_ = false;
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = this->shared_from_this()](beast::error_code ec, size_t) {
                              self->OnReadHeader(ec);
                            });
  }

  void OnReadHeader(beast::error_code ec) {
    if (ec) return OnReadError(ec);
    const auto& header = parser_->get();
    auto expect = header.find(http::field::expect);
    if (expect != header.end() && beast::iequals(expect->value(), "100-continue") &&
        !parser_->is_done()) {
      Lowest().expires_after(kWriteTimeout);
      net::async_write(stream_, net::buffer(kContinue, sizeof kContinue - 1),
                       [self = this->shared_from_this()](beast::error_code ec, size_t) {
                         if (ec) return self->DoClose();
                         self->DoReadBody();
                       });
      return;
    }
    DoReadBody();
  }

  void DoReadBody() {
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, size_t) {
                       if (ec) return self->OnReadError(ec);
                       self->Handle(self->parser_->release());
                     });
  }

  void OnReadError(beast::error_code ec) {
    const unsigned version = 11;
    if (ec == http::error::body_limit) {
      return Write(JsonError(http::status::payload_too_large, "payload_too_large",
                             "the request body exceeds " +
                                 std::to_string(context_.config.max_body_bytes) + " bytes",
                             version, false),
                   /*linger=*/true);
    }
    if (ec == http::error::header_limit) {
      return Write(JsonError(http::status::request_header_fields_too_large, "headers_too_large",
                             "the request headers exceed 8 KiB", version, false),
                   /*linger=*/true);
    }
    static const auto& kHttpErrors = http::make_error_code(http::error::bad_target).category();
    if (ec.category() == kHttpErrors && ec != http::error::end_of_stream &&
        ec != http::error::partial_message) {
      return Write(JsonError(http::status::bad_request, "bad_request", "malformed HTTP request",
                             version, false),
                   /*linger=*/true);
    }
    DoClose();  // end of stream, timeout, reset, TLS failure: nobody to answer
  }

  void Handle(Request request) {
    RouteResult routed = context_.router.Handle(request, this->shared_from_this(), remote_);
    if (routed.response.has_value()) return Write(std::move(*routed.response));

    // The query thread answers through Respond/EndChunked; no read is pending
    // meanwhile, so no deadline either.
    Lowest().expires_never();
    net::post(context_.query_pool,
              [self = this->shared_from_this(), dispatch = std::move(*routed.dispatch),
               version = request.version(), keep_alive = request.keep_alive()]() mutable {
                self->RunJob(dispatch, version, keep_alive);
              });
  }

  // On a query thread.
  void RunJob(Dispatch& dispatch, unsigned version, bool keep_alive) {
    // The credential's place is given back as the final part of the answer is
    // handed to the I/O thread (Respond, EndChunked, AbortChunked), not when
    // this job's closure is destroyed: a client that reads its answer and
    // asks again at once must not find its own finished query still counted.
    job_slot_.reset();
    if (dispatch.slot.has_value()) job_slot_.emplace(std::move(*dispatch.slot));
    dispatch.slot.reset();
    try {
      if (dispatch.action == Action::kQuery) {
        RunQuery(*dispatch.endpoint, dispatch.sql, dispatch.format, context_.limits, context_.host,
                 *this, version, keep_alive);
      } else {
        RunTables(*dispatch.endpoint, dispatch.table, *this, version, keep_alive);
      }
    } catch (const std::exception& e) {
      // Out of memory and the like: this request fails, the process lives on.
      context_.host.Error(std::string("tunnel request failed: ") + e.what());
      broken_ = true;
    }
    job_slot_.reset();
    if (broken_) {
      net::post(stream_.get_executor(), [self = this->shared_from_this()] { self->DoClose(); });
    }
  }

  // `linger`: the request was not read to its end; drain what the client is
  // still sending before closing, or closing with unread input would reset
  // the connection and could destroy the response in flight.
  void Write(Response response, bool linger = false) {
    response_.emplace(std::move(response));
    const bool keep_alive = response_->keep_alive();
    Lowest().expires_after(kWriteTimeout);
    http::async_write(
        stream_, *response_,
        [self = this->shared_from_this(), keep_alive, linger](beast::error_code ec, size_t) {
          self->response_.reset();
          if (!ec && linger) return self->DoLingeringClose();
          if (ec || !keep_alive) return self->DoClose();
          self->DoReadHeader();
        });
  }

  void DoLingeringClose() {
    beast::error_code ignored;
    Lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
    Lowest().expires_after(kLingerTimeout);
    DrainInput();
  }

  void DrainInput() {
    Lowest().async_read_some(net::buffer(drain_),
                             [self = this->shared_from_this()](beast::error_code ec, size_t n) {
                               self->drained_ += n;
                               if (ec || self->drained_ > kMaxLingerBytes) return self->DoClose();
                               self->DrainInput();
                             });
  }

  // `terminate`: end the body with the last chunk (and trailers); without it
  // the connection is closed after `tail_`, leaving the body truncated.
  void WriteTail(bool keep_alive, bool terminate) {
    if (broken_) return DoClose();
    auto finish = [self = this->shared_from_this(), keep_alive](beast::error_code ec, size_t) {
      self->chunked_serializer_.reset();
      self->chunked_header_.reset();
      self->tail_.clear();
      self->trailers_.clear();
      if (ec || !keep_alive) return self->DoClose();
      self->DoReadHeader();
    };
    auto last = [self = this->shared_from_this(), finish, terminate](beast::error_code ec, size_t) {
      if (ec || !terminate) return finish(ec ? ec : beast::error_code(net::error::eof), 0);
      self->Lowest().expires_after(kWriteTimeout);
      net::async_write(self->stream_, http::make_chunk_last(self->trailers_), finish);
    };
    Lowest().expires_after(kWriteTimeout);
    if (tail_.empty()) return last({}, 0);
    net::async_write(stream_, http::make_chunk(net::buffer(tail_)), last);
  }

  void DoClose() {
    std::lock_guard<std::mutex> lock(fd_mutex_);
    broken_ = true;
    if (fd_closed_) return;
    fd_closed_ = true;
    beast::error_code ignored;
    Lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    Lowest().socket().close(ignored);
  }

  SessionContext& context_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::string remote_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<Response> response_;
  std::optional<ResponseHeader> chunked_header_;
  std::optional<http::response_serializer<http::empty_body>> chunked_serializer_;
  std::string tail_;
  // The running job's place (query thread only; see RunJob).
  std::optional<EndpointState::JobSlot> job_slot_;
  http::fields trailers_;
  std::array<char, 4096> drain_;
  size_t drained_ = 0;

  std::optional<sdk::ConnectionBudget::Ticket> ticket_;  // set before Start's first completion
  bool authenticated_ = false;                           // on the strand
  bool first_request_ = true;                            // on the strand

  std::atomic<bool> broken_{false};
  std::mutex fd_mutex_;
  int native_fd_ = -1;      // GUARDED_BY(fd_mutex_) for use after close
  bool fd_closed_ = false;  // GUARDED_BY(fd_mutex_)
};

}  // namespace

namespace {

template <typename Stream>
void Admit(std::shared_ptr<Session<Stream>> session, const std::string& address_key,
           SessionContext& context) {
  auto ticket = context.budget.Admit(address_key, [weak = std::weak_ptr<Session<Stream>>(session)] {
    if (auto victim = weak.lock()) victim->ForceClose();
  });
  // Refused: the session's destruction closes the socket.
  if (ticket.has_value()) session->Start(std::move(*ticket));
}

}  // namespace

void StartSession(tcp::socket socket, ssl::context* tls, SessionContext& context) {
  boost::system::error_code ec;
  const auto remote = socket.remote_endpoint(ec);
  const std::string key =
      ec ? std::string("unknown") : sdk::ClientAddressKey(remote.address().to_string());
  if (tls != nullptr) {
    Admit(std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(context,
                                                                          std::move(socket), *tls),
          key, context);
  } else {
    Admit(std::make_shared<Session<beast::tcp_stream>>(context, std::move(socket)), key, context);
  }
}

}  // namespace airlock::tunnels::https
