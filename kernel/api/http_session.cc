// One HTTP/1.1 connection: read a bounded request on the session's strand,
// offer it to the handler on the strand (a non-blocking answer is written at
// once), else run the handler on the handler pool, write the response back on
// the strand, repeat while keep-alive holds. Exactly one socket operation is
// pending at a time, so the session needs no locking; the strand serialises
// completions. Each session holds a connection-budget ticket: it is
// pre-authentication (short deadlines, may be shed while idle) until a
// request's handler marks it authenticated.
#include "kernel/api/http_session.h"

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include <spdlog/spdlog.h>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "kernel/api/http_message.h"

namespace airlock::http_internal {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

using PlainStream = beast::tcp_stream;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// How much the idle wait reads at once; most small requests arrive whole.
constexpr size_t kFirstReadChunk = 8192;
constexpr size_t kDrainChunk = 16384;
// After an error response the unread rest of a request is drained for this
// long before closing, so the kernel does not answer it with a RST that could
// destroy the response before the client reads it.
constexpr std::chrono::seconds kLingerTimeout{2};
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

std::string FormatEndpoint(const tcp::endpoint& endpoint) {
  const auto address = endpoint.address();
  std::string text = address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
  text += ':';
  text += std::to_string(endpoint.port());
  return text;
}

const boost::system::error_category& HttpCategory() {
  return http::make_error_code(http::error::bad_target).category();
}

template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

  Session(tcp::socket&& socket, std::shared_ptr<ServerContext> context)
      : context_(std::move(context)),
        options_(context_->options),
        stream_(MakeStream(std::move(socket), *context_)),
        executor_(stream_.get_executor()) {}

  ~Session() {
    if (producer_) producer_->Cancel();
  }

  // Before the first completion, from the acceptor's strand.
  void Run(sdk::ConnectionBudget::Ticket ticket) {
    ticket_.emplace(std::move(ticket));
    net::dispatch(executor_, beast::bind_front_handler(&Session::OnRun, this->shared_from_this()));
  }

  // The budget gave this idle pre-authentication connection's place to a
  // newer one: close it. From any thread.
  void Shed() {
    net::post(executor_, [self = this->shared_from_this()] { self->Tcp().close(); });
  }

 private:
  static Stream MakeStream(tcp::socket&& socket, ServerContext& context) {
    if constexpr (kTls) {
      return Stream(std::move(socket), *context.ssl);
    } else {
      return Stream(std::move(socket));
    }
  }

  beast::tcp_stream& Tcp() { return beast::get_lowest_layer(stream_); }

  void OnRun() {
    beast::error_code ec;
    const auto endpoint = Tcp().socket().remote_endpoint(ec);
    if (!ec) remote_address_ = FormatEndpoint(endpoint);
    Tcp().socket().set_option(tcp::no_delay(true), ec);  // best effort
    // The TLS handshake and the first request header are pre-authentication
    // time, under one deadline.
    Tcp().expires_after(options_.preauth_timeout);
    if constexpr (kTls) {
      stream_.async_handshake(
          ssl::stream_base::server,
          beast::bind_front_handler(&Session::OnHandshake, this->shared_from_this()));
    } else {
      DoRead();
    }
  }

  void OnHandshake(beast::error_code ec) {
    if (ec) return;  // not TLS, wrong version, timeout: drop silently
    CapturePeerCertificates();
    DoRead();
  }

  // Leaf first, then whatever else the peer sent (on the server side OpenSSL
  // keeps the leaf apart from the rest of the chain).
  void CapturePeerCertificates() {
    if constexpr (kTls) {
      SSL* ssl = stream_.native_handle();
      X509* leaf = SSL_get0_peer_certificate(ssl);
      if (leaf == nullptr) return;
      std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
      if (!bio || PEM_write_bio_X509(bio.get(), leaf) != 1) return;
      STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl);
      for (int i = 0; chain != nullptr && i < sk_X509_num(chain); ++i) {
        X509* cert = sk_X509_value(chain, i);
        if (X509_cmp(cert, leaf) == 0) continue;
        if (PEM_write_bio_X509(bio.get(), cert) != 1) return;
      }
      char* data = nullptr;
      const long length = BIO_get_mem_data(bio.get(), &data);
      if (length > 0) peer_certificate_pem_.assign(data, static_cast<size_t>(length));
    }
  }

  // A fresh, bounded parser per request. Before authentication the wait and
  // the request header share one preauth_timeout (armed at accept for the
  // first request). After it, the idle wait (keep-alive, nothing buffered)
  // gets idle_timeout; once a request has begun it must arrive within
  // read_timeout.
  void DoRead() {
    parser_.emplace();
    parser_->body_limit(options_.body_limit);
    parser_->header_limit(static_cast<std::uint32_t>(options_.header_limit));
    if (!authenticated_) {
      if (!first_request_) Tcp().expires_after(options_.preauth_timeout);
      first_request_ = false;
      DoReadHeader();
      return;
    }
    if (buffer_.size() > 0) {
      Tcp().expires_after(options_.read_timeout);
      DoReadHeader();
      return;
    }
    Tcp().expires_after(options_.idle_timeout);
    stream_.async_read_some(
        buffer_.prepare(kFirstReadChunk),
        beast::bind_front_handler(&Session::OnFirstBytes, this->shared_from_this()));
  }

  void OnFirstBytes(beast::error_code ec, size_t bytes) {
    if (ec) return;  // idle timeout or the peer left between requests
    buffer_.commit(bytes);
    Tcp().expires_after(options_.read_timeout);
    DoReadHeader();
  }

  void DoReadHeader() {
    http::async_read_header(
        stream_, buffer_, *parser_,
        beast::bind_front_handler(&Session::OnHeader, this->shared_from_this()));
  }

  void OnHeader(beast::error_code ec, size_t) {
    if (ec) return OnReadError(ec);
    const auto& header = parser_->get();
    const auto field_count = static_cast<size_t>(std::distance(header.begin(), header.end()));
    if (field_count > options_.max_header_count) {
      return RespondAndClose(431, "too_many_headers", "too many request header fields");
    }
    if (parser_->is_done()) return OnRequest();
    // The header met the pre-authentication deadline; the body gets the
    // ordinary one (the connection stays sheddable until it is handled).
    if (!authenticated_) Tcp().expires_after(options_.read_timeout);
    if (header.version() >= 11 && beast::iequals(header[http::field::expect], "100-continue")) {
      net::async_write(
          stream_, net::buffer(kContinue.data(), kContinue.size()),
          beast::bind_front_handler(&Session::OnContinueSent, this->shared_from_this()));
      return;
    }
    DoReadBody();
  }

  void OnContinueSent(beast::error_code ec, size_t) {
    if (ec) return;
    DoReadBody();
  }

  void DoReadBody() {
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Session::OnBody, this->shared_from_this()));
  }

  void OnBody(beast::error_code ec, size_t) {
    if (ec) return OnReadError(ec);
    OnRequest();
  }

  void OnReadError(beast::error_code ec) {
    if (ec == http::error::body_limit) {
      return RespondAndClose(413, "payload_too_large", "request body exceeds the limit");
    }
    if (ec == http::error::header_limit) {
      return RespondAndClose(431, "headers_too_large", "request header block exceeds the limit");
    }
    if (ec == http::error::end_of_stream || ec == http::error::partial_message) return;
    if (ec.category() == HttpCategory()) {
      return RespondAndClose(400, "bad_request", "malformed HTTP request");
    }
    // Timeout, reset, TLS failure: there is no one sensible to answer.
  }

  void OnRequest() {
    auto& message = parser_->get();
    if (message.version() != 10 && message.version() != 11) {
      return RespondAndClose(400, "bad_request", "unsupported HTTP version");
    }
    keep_alive_ = message.keep_alive();
    version_ = message.version();
    head_ = message.method() == http::verb::head;

    auto built = BuildHttpRequest(message);
    if (!built) {
      parser_.reset();
      return WriteResponse(HttpResponse::Error(400, "bad_request", "malformed request target"));
    }
    HttpRequest request = std::move(*built);
    request.remote_address = remote_address_;
    request.peer_certificate_pem = peer_certificate_pem_;
    request.tls = kTls;
    parser_.reset();
    if (!authenticated_) {
      if (!authenticated_mark_) authenticated_mark_ = std::make_shared<std::atomic<bool>>(false);
      request.authenticated_mark = authenticated_mark_;
      // Being handled: not idle, so not shed (WriteResponse ends it).
      ticket_->SetBusy(true);
    }

    // A request the handler can answer without blocking is answered here, on
    // the strand: no hand-off to the pool and back.
    if (options_.call_handlers_on_io_threads) {
      request.on_io_thread = true;
      HttpResponse response = InvokeHandler(request);
      if (!response.run_on_handler_pool) return WriteResponse(std::move(response));
      request.on_io_thread = false;
    }
    // The handler may block; it runs on the handler pool and the response
    // comes back to this session's strand.
    net::post(context_->handler_executor,
              [self = this->shared_from_this(), request = std::move(request)]() mutable {
                HttpResponse response = self->InvokeHandler(request);
                if (response.run_on_handler_pool) {
                  spdlog::error("http: a handler deferred from the handler pool; answered 500");
                  response = HttpResponse::Error(500, "internal", "internal error");
                }
                net::post(self->executor_, [self, response = std::move(response)]() mutable {
                  self->WriteResponse(std::move(response));
                });
              });
  }

  HttpResponse InvokeHandler(const HttpRequest& request) const {
    try {
      return context_->handler(request);
    } catch (...) {
      // The exception text may carry request data: it goes nowhere.
      spdlog::error("http: a handler threw; answered 500");
      return HttpResponse::Error(500, "internal", "internal error");
    }
  }

  void RespondAndClose(unsigned status, std::string_view error, std::string_view message) {
    keep_alive_ = false;
    version_ = 11;
    head_ = false;
    drain_on_close_ = true;
    parser_.reset();
    WriteResponse(HttpResponse::Error(status, error, message));
  }

  void WriteResponse(HttpResponse response) {
    if (!authenticated_) {
      if (authenticated_mark_ && authenticated_mark_->load(std::memory_order_acquire)) {
        authenticated_ = ticket_->Authenticate();
      }
      ticket_->SetBusy(false);
    }
    if (response.status < 200 || response.status > 599) {
      spdlog::error("http: a handler returned status {}; answered 500", response.status);
      response = HttpResponse::Error(500, "internal", "internal error");
    }
    if (response.stream) return StartStream(std::move(response));
    if (!response.body_file.empty()) {
      file_response_.emplace();
      beast::error_code ec;
      file_response_->body().open(response.body_file.c_str(), beast::file_mode::scan, ec);
      // An open file outlives its name: the copy goes at once, sent or not.
      if (response.body_file_is_temporary) ::unlink(response.body_file.c_str());
      if (ec) {
        spdlog::error("http: cannot open a response body file; answered 500");
        file_response_.reset();
        response = HttpResponse::Error(500, "internal", "internal error");
      } else {
        PrepareHeaders(*file_response_, response);
        file_response_->content_length(file_response_->body().size());
        if (head_) file_response_->body().close();
        Tcp().expires_after(options_.read_timeout);
        http::async_write(stream_, *file_response_,
                          beast::bind_front_handler(&Session::OnWrite, this->shared_from_this()));
        return;
      }
    }
    response_ = {};
    PrepareHeaders(response_, response);
    // 204 and 304 carry no body and (RFC 9110) no Content-Length; a HEAD
    // answer announces the length a GET would have had.
    if (response.status != 204 && response.status != 304) {
      response_.content_length(response.body.size());
      if (!head_) response_.body() = std::move(response.body);
    }
    Tcp().expires_after(options_.read_timeout);  // a slow reader is bounded too
    http::async_write(stream_, response_,
                      beast::bind_front_handler(&Session::OnWrite, this->shared_from_this()));
  }

  // --- streamed bodies (HttpResponse::stream) --------------------------------

  void StartStream(HttpResponse response) {
    if (version_ != 11 || head_) {
      return WriteResponse(
          HttpResponse::Error(400, "bad_request", "a streamed answer needs an HTTP/1.1 GET"));
    }
    producer_ = std::move(response.stream);
    keep_alive_ = false;  // the body ends with the connection
    stream_head_.emplace();
    PrepareHeaders(*stream_head_, response);
    stream_head_->chunked(true);
    stream_serializer_.emplace(*stream_head_);
    Tcp().expires_after(options_.read_timeout);
    http::async_write_header(
        stream_, *stream_serializer_,
        beast::bind_front_handler(&Session::OnStreamHead, this->shared_from_this()));
  }

  void OnStreamHead(beast::error_code ec, size_t) {
    Tcp().expires_never();
    if (ec) return EndStream();
    heartbeat_.emplace(executor_);
    ArmHeartbeat();
    AskForPiece();
  }

  void AskForPiece() {
    std::weak_ptr<Session> weak = this->shared_from_this();
    producer_->Next([weak](std::optional<std::string> piece) {
      auto self = weak.lock();
      if (!self) return;
      net::post(self->executor_,
                [self, piece = std::move(piece)]() mutable { self->OnPiece(std::move(piece)); });
    });
  }

  void OnPiece(std::optional<std::string> piece) {
    if (!producer_) return;  // ended meanwhile
    if (!piece) {
      last_chunk_due_ = true;
    } else {
      outgoing_.push_back({std::move(*piece), /*from_producer=*/true});
    }
    WriteOutgoing();
  }

  // The pending heartbeat is what keeps a streaming session alive between
  // pieces (the producer holds it only weakly); it stops with the stream.
  void ArmHeartbeat() {
    heartbeat_->expires_after(options_.stream_keepalive);
    heartbeat_->async_wait([self = this->shared_from_this()](beast::error_code ec) {
      if (ec || !self->producer_) return;
      if (!self->writing_ && self->outgoing_.empty()) {
        self->outgoing_.push_back({":\n\n", /*from_producer=*/false});
        self->WriteOutgoing();
      }
      self->ArmHeartbeat();
    });
  }

  void WriteOutgoing() {
    if (writing_ || !producer_) return;
    auto self = this->shared_from_this();
    if (outgoing_.empty()) {
      if (!last_chunk_due_) return;
      writing_ = true;
      Tcp().expires_after(options_.read_timeout);
      net::async_write(stream_, http::make_chunk_last(), [self](beast::error_code, size_t) {
        self->writing_ = false;
        self->EndStream();
        self->DoClose();
      });
      return;
    }
    writing_ = true;
    in_flight_ = std::move(outgoing_.front());
    outgoing_.pop_front();
    Tcp().expires_after(options_.read_timeout);  // a client that stops reading is dropped
    net::async_write(stream_, http::make_chunk(net::buffer(in_flight_.text)),
                     [self](beast::error_code ec, size_t) {
                       self->writing_ = false;
                       self->Tcp().expires_never();
                       if (ec) return self->EndStream();
                       if (self->in_flight_.from_producer) self->AskForPiece();
                       self->WriteOutgoing();
                     });
  }

  // The stream is over (ended, or the client left): the producer stops and
  // the connection closes once nothing is pending on it.
  void EndStream() {
    if (heartbeat_) heartbeat_->cancel();
    if (auto producer = std::move(producer_)) producer->Cancel();
    outgoing_.clear();
  }

  template <class Body>
  void PrepareHeaders(http::response<Body>& out, const HttpResponse& response) {
    PrepareResponseHeader(out.base(), version_, response);
    out.keep_alive(keep_alive_);
  }

  void OnWrite(beast::error_code ec, size_t) {
    file_response_.reset();
    if (ec) return;
    response_ = {};
    if (!keep_alive_) return DoClose();
    DoRead();
  }

  // Plain: half-close, then drain until the peer closes. TLS: a clean
  // close_notify exchange, or draining when a request was left unread (a
  // close_notify would then meet application data and fail).
  void DoClose() {
    Tcp().expires_after(kLingerTimeout);
    if constexpr (kTls) {
      if (!drain_on_close_) {
        stream_.async_shutdown(
            beast::bind_front_handler(&Session::OnShutdown, this->shared_from_this()));
        return;
      }
    } else {
      beast::error_code ec;
      Tcp().socket().shutdown(tcp::socket::shutdown_send, ec);
    }
    DoDrain();
  }

  void DoDrain() {
    buffer_.clear();
    stream_.async_read_some(buffer_.prepare(kDrainChunk),
                            beast::bind_front_handler(&Session::OnDrain, this->shared_from_this()));
  }

  void OnDrain(beast::error_code ec, size_t) {
    if (ec) return Tcp().close();
    DoDrain();
  }

  void OnShutdown(beast::error_code) { Tcp().close(); }

  const std::shared_ptr<ServerContext> context_;
  const HttpServerOptions& options_;  // owned by context_
  Stream stream_;
  const net::any_io_executor executor_;  // the connection's strand
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> response_;
  std::optional<http::response<http::file_body>> file_response_;
  // A streamed body (HttpResponse::stream): its producer, null once ended.
  struct Piece {
    std::string text;
    bool from_producer = false;  // else a keep-alive comment
  };
  std::shared_ptr<ResponseStream> producer_;
  std::optional<http::response<http::empty_body>> stream_head_;
  std::optional<http::response_serializer<http::empty_body>> stream_serializer_;
  std::optional<net::steady_timer> heartbeat_;
  std::deque<Piece> outgoing_;
  Piece in_flight_;
  bool writing_ = false;
  bool last_chunk_due_ = false;
  std::string remote_address_;
  std::string peer_certificate_pem_;
  std::optional<sdk::ConnectionBudget::Ticket> ticket_;  // set before Run's first completion
  // Shared with the requests of a pre-authentication connection.
  std::shared_ptr<std::atomic<bool>> authenticated_mark_;
  bool authenticated_ = false;
  unsigned version_ = 11;
  bool keep_alive_ = false;
  bool head_ = false;
  bool first_request_ = true;
  bool drain_on_close_ = false;
};

template <class Stream>
void AdmitSession(tcp::socket socket, std::shared_ptr<ServerContext> context,
                  const std::string& address_key) {
  auto session = std::make_shared<Session<Stream>>(std::move(socket), context);
  // The budget outlives the callback (it runs inside Admit, which the
  // acceptor calls with the context alive), so a plain pointer does.
  ServerContext* server = context.get();
  auto ticket =
      context->budget.Admit(address_key, [server, weak = std::weak_ptr<Session<Stream>>(session)] {
        if (auto victim = weak.lock()) victim->Shed();
        server->Report(ConnectionLimitEvent::kShed);
      });
  if (!ticket) {
    context->Report(ConnectionLimitEvent::kRefused);
    return;  // the session's destruction closes the socket
  }
  session->Run(std::move(*ticket));
}

}  // namespace

void StartSession(tcp::socket socket, std::shared_ptr<ServerContext> context) {
  boost::system::error_code ec;
  const auto remote = socket.remote_endpoint(ec);
  const std::string key =
      ec ? std::string("unknown") : sdk::ClientAddressKey(remote.address().to_string());
  if (context->ssl) {
    AdmitSession<TlsStream>(std::move(socket), std::move(context), key);
  } else {
    AdmitSession<PlainStream>(std::move(socket), std::move(context), key);
  }
}

}  // namespace airlock::http_internal
