// `line`: an Airlock tunnel built outside the Airlock tree, on the SDK's
// tunnel kit. It serves a line protocol over TLS:
//
//   client: <request id> <credential>\n       server: OK\n  or  ERROR <why>\n (and closes)
//   client: <one SQL statement>\n             server: the column names, tab-separated, \n
//                                                     each row, tab-separated, \n
//                                                     .\n
//                                              or     ERROR <why>\n
//
// The kit provides what every tunnel needs: the listener's settings and TLS
// context, the endpoint of each request (its window, the connections bound
// to it, the leases that keep the host's channel alive) and the registry
// that tells "revoked" from "never existed". What is left here is the
// protocol: about 250 lines.
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include "airlock/cpp/arrow.hpp"
#include "airlock/cpp/base64url.hpp"
#include "airlock/cpp/config_read.hpp"
#include "airlock/cpp/plugin.hpp"
#include "airlock/cpp/tunnel_kit.hpp"
#include "airlock/cpp/tunnel_tls.hpp"

namespace {

using airlock::Json;
using airlock::Result;
using airlock::Status;
namespace sdk = airlock::sdk;
namespace tunnel = airlock::sdk::tunnel;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

constexpr std::string_view kWhere = "tunnel configuration";
constexpr size_t kMaxLineBytes = 64 * 1024;
constexpr uint64_t kMaxRows = 100000;

std::string Sha256(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<char*>(digest), length);
}

bool SameBytes(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char differ = 0;
  for (size_t i = 0; i < a.size(); ++i) differ |= static_cast<unsigned char>(a[i] ^ b[i]);
  return differ == 0;
}

int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// One request's endpoint: the kit's, plus the hash of its credential (the
// credential itself is shown to the requester once and not kept).
class LineEndpoint final : public tunnel::Endpoint {
 public:
  LineEndpoint(std::string request_id, std::string subject, std::string credential_sha256,
               int64_t not_after, sdk::QueryChannel channel)
      : Endpoint(std::move(request_id), std::move(subject), not_after, channel, 16),
        credential_sha256_(std::move(credential_sha256)) {}
  bool Authenticate(std::string_view credential) const {
    return SameBytes(Sha256(credential), credential_sha256_);
  }

 private:
  const std::string credential_sha256_;
};

using Registry = tunnel::EndpointRegistry<LineEndpoint>;

// Writes a statement's rows as tab-separated text.
class TextRows final : public sdk::BatchConsumer {
 public:
  explicit TextRows(std::string* out) : out_(out) {}

  Status OnSchema(airlock::arrow::OwnedSchema schema) override {
    schema_ = std::move(schema);
    const ArrowSchema& s = *schema_.get();
    for (int64_t i = 0; i < s.n_children; ++i) {
      *out_ += (i == 0 ? "" : "\t") + std::string(s.children[i]->name ? s.children[i]->name : "");
    }
    *out_ += "\n";
    return Status::Ok();
  }

  Status OnBatch(airlock::arrow::OwnedArray batch) override {
    AIRLOCK_ASSIGN_OR_RETURN(auto view,
                             airlock::arrow::BatchView::Make(*schema_.get(), *batch.get()));
    for (size_t row = 0; row < view.num_rows(); ++row) {
      if (++rows_ > kMaxRows) return Status::ResourceExhausted("more than 100000 rows");
      for (size_t col = 0; col < view.num_columns(); ++col) {
        if (col > 0) *out_ += "\t";
        *out_ += Cell(view, col, row);
      }
      *out_ += "\n";
    }
    return Status::Ok();
  }

 private:
  static std::string Cell(const airlock::arrow::BatchView& view, size_t col, size_t row) {
    using airlock::arrow::Type;
    if (view.IsNull(col, row)) return "NULL";
    switch (view.field(col).type) {
      case Type::kBool:
        return view.GetBool(col, row) ? "true" : "false";
      case Type::kInt32:
        return std::to_string(view.GetInt32(col, row));
      case Type::kInt64:
        return std::to_string(view.GetInt64(col, row));
      case Type::kFloat64: {
        std::string text = std::to_string(view.GetDouble(col, row));
        while (text.size() > 1 && text.back() == '0') text.pop_back();
        if (text.back() == '.') text.pop_back();
        return text;
      }
      case Type::kUtf8:
        return std::string(view.GetString(col, row));
      case Type::kDate32:
        return airlock::arrow::FormatDate32(view.GetDate32(col, row));
      default:
        return "?";
    }
  }

  std::string* out_;
  airlock::arrow::OwnedSchema schema_;
  uint64_t rows_ = 0;
};

// One client connection on a thread of its own.
class Connection final : public tunnel::Session {
 public:
  Connection(tcp::socket socket, asio::ssl::context& tls) : stream_(std::move(socket), tls) {}

  // From any thread: a blocked read or write returns at once.
  void Revoke() override { Kill(); }
  void Kill() override { ::shutdown(stream_.lowest_layer().native_handle(), SHUT_RDWR); }

  void Serve(Registry& registry, const std::shared_ptr<Connection>& self) {
    boost::system::error_code ec;
    stream_.handshake(asio::ssl::stream_base::server, ec);
    if (ec) return;
    std::string line;
    if (!ReadLine(&line)) return;
    const size_t space = line.find(' ');
    std::optional<sdk::CloseReason> closed;
    auto endpoint =
        space == std::string::npos ? nullptr : registry.Find(line.substr(0, space), &closed);
    if (endpoint == nullptr || !endpoint->Authenticate(line.substr(space + 1))) {
      Write(closed ? "ERROR access ended\n" : "ERROR unknown request or wrong credential\n");
      return;
    }
    if (endpoint->expired(NowSeconds())) {
      Write("ERROR the access window ended\n");
      return;
    }
    if (endpoint->Bind(self) != tunnel::Endpoint::BindResult::kBound) {
      Write("ERROR too many connections, or access ended\n");
      return;
    }
    Write("OK\n");
    Statements(*endpoint);
    endpoint->Unbind(this);
  }

  // True once Serve returned: the thread may be joined.
  bool done() const { return done_.load(); }
  void set_done() { done_ = true; }

 private:
  void Statements(LineEndpoint& endpoint) {
    std::string line;
    while (ReadLine(&line)) {
      if (endpoint.expired(NowSeconds())) {
        Write("ERROR the access window ended\n");
        return;
      }
      auto lease = endpoint.Acquire();
      if (!lease) {
        Write("ERROR access ended\n");
        return;
      }
      std::string out;
      TextRows rows(&out);
      const Status ran = lease->channel().Query(line, rows);
      if (!Write(ran.ok() ? out + ".\n" : "ERROR " + ran.message() + "\n")) return;
    }
  }

  bool ReadLine(std::string* line) {
    boost::system::error_code ec;
    const size_t n = asio::read_until(stream_, buffer_, '\n', ec);
    if (ec || n > kMaxLineBytes) return false;
    line->assign(asio::buffers_begin(buffer_.data()), asio::buffers_begin(buffer_.data()) + n - 1);
    buffer_.consume(n);
    if (!line->empty() && line->back() == '\r') line->pop_back();
    return true;
  }
  bool Write(const std::string& text) {
    boost::system::error_code ec;
    asio::write(stream_, asio::buffer(text), ec);
    return !ec;
  }

  asio::ssl::stream<tcp::socket> stream_;
  asio::streambuf buffer_{kMaxLineBytes + 1};
  std::atomic<bool> done_{false};
};

// Closes its endpoint when the kernel closes it.
class LineEndpointHandle final : public sdk::TunnelEndpoint {
 public:
  LineEndpointHandle(std::shared_ptr<Registry> registry, std::shared_ptr<LineEndpoint> endpoint)
      : registry_(std::move(registry)), endpoint_(std::move(endpoint)) {}
  ~LineEndpointHandle() override { registry_->Close(endpoint_); }
  void SetCloseReason(sdk::CloseReason reason) override { endpoint_->set_close_reason(reason); }
  Status ExtendWindow(int64_t not_after) override { return endpoint_->ExtendTo(not_after); }

 private:
  std::shared_ptr<Registry> registry_;
  std::shared_ptr<LineEndpoint> endpoint_;
};

class LineTunnel final : public sdk::TunnelTransport {
 public:
  static Status CheckConfig(const Json& config, const sdk::Host& host) {
    return Settings(config, host).status();
  }

  static Result<std::unique_ptr<LineTunnel>> Create(const Json& config, const sdk::Host& host) {
    AIRLOCK_ASSIGN_OR_RETURN(tunnel::ListenerSettings settings, Settings(config, host));
    if (!settings.tls) return Status::InvalidArgument("the line tunnel speaks TLS only");
    AIRLOCK_ASSIGN_OR_RETURN(auto tls, tunnel::MakeServerTlsContext(*settings.tls, kWhere));
    std::unique_ptr<LineTunnel> made(new LineTunnel(std::move(settings), std::move(tls), host));
    boost::system::error_code ec;
    const tcp::endpoint at(asio::ip::make_address(made->settings_.listen_address),
                           made->settings_.port);
    made->acceptor_.open(at.protocol(), ec);
    if (!ec) made->acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) made->acceptor_.bind(at, ec);
    if (!ec) made->acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec)
      return Status::Unavailable("cannot listen on " + made->settings_.listen_address + ": " +
                                 ec.message());
    made->port_ = made->acceptor_.local_endpoint().port();
    made->accepting_ = std::thread([tunnel = made.get()] { tunnel->Accept(); });
    host.Info("line tunnel listening on port " + std::to_string(made->port_));
    return made;
  }

  ~LineTunnel() override {
    stopping_ = true;
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
    accepting_.join();
    registry_->CloseAll();
    std::lock_guard lock(mu_);
    for (auto& [connection, thread] : connections_) {
      connection->Kill();
      thread.join();
    }
  }

  Result<sdk::TunnelOpening> Open(const Json& spec, sdk::QueryChannel channel) override {
    std::string request_id, subject;
    AIRLOCK_RETURN_IF_ERROR(
        airlock::json_read::String(spec, "request_id", &request_id, true, "spec"));
    if (auto principal = spec.find("principal"); principal != spec.end()) {
      AIRLOCK_RETURN_IF_ERROR(
          airlock::json_read::String(*principal, "subject", &subject, false, "spec.principal"));
    }
    int64_t not_after = 0;
    AIRLOCK_RETURN_IF_ERROR(airlock::json_read::Int(spec, "not_after", &not_after, true, "spec"));
    std::string random(32, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char*>(random.data()), 32) != 1) {
      return Status::Internal("no randomness for a credential");
    }
    const std::string credential = sdk::Base64UrlEncode(random);
    auto endpoint =
        std::make_shared<LineEndpoint>(request_id, subject, Sha256(credential), not_after, channel);
    AIRLOCK_RETURN_IF_ERROR(registry_->Add(endpoint));
    sdk::TunnelOpening opening;
    opening.grant = {
        {"url", "line://" + settings_.public_host + ":" + std::to_string(port_) + "/" + request_id},
        {"credential", credential}};
    opening.endpoint = std::make_unique<LineEndpointHandle>(registry_, std::move(endpoint));
    return opening;
  }

 private:
  LineTunnel(tunnel::ListenerSettings settings, asio::ssl::context tls, const sdk::Host& host)
      : settings_(std::move(settings)), tls_(std::move(tls)), host_(host) {}

  static Result<tunnel::ListenerSettings> Settings(const Json& config, const sdk::Host& host) {
    if (!config.is_object())
      return Status::InvalidArgument("tunnel configuration must be an object");
    AIRLOCK_RETURN_IF_ERROR(sdk::config_read::KnownKeys(
        config, {"listen_address", "port", "tls", "allow_plaintext", "public_host"}, kWhere));
    tunnel::ListenerSettings settings;
    AIRLOCK_RETURN_IF_ERROR(tunnel::ReadListenerSettings(config, kWhere, tunnel::IsIpAddress,
                                                         "this tunnel speaks TLS only", &settings));
    if (settings.tls) {
      settings.tls->certificate_file = host.ResolvePath(settings.tls->certificate_file);
      settings.tls->private_key_file = host.ResolvePath(settings.tls->private_key_file);
    }
    return settings;
  }

  void Accept() {
    while (!stopping_) {
      boost::system::error_code ec;
      tcp::socket socket = acceptor_.accept(ec);
      if (ec) {
        if (stopping_) return;
        continue;
      }
      auto connection = std::make_shared<Connection>(std::move(socket), tls_);
      std::lock_guard lock(mu_);
      // Connections that ended are joined here (and their sockets closed).
      for (auto it = connections_.begin(); it != connections_.end();) {
        if (!it->first->done()) {
          ++it;
          continue;
        }
        it->second.join();
        it = connections_.erase(it);
      }
      connections_.emplace_back(connection, std::thread([connection, registry = registry_] {
                                  connection->Serve(*registry, connection);
                                  connection->set_done();
                                }));
    }
  }

  const tunnel::ListenerSettings settings_;
  asio::ssl::context tls_;
  const sdk::Host host_;
  asio::io_context io_;
  tcp::acceptor acceptor_{io_};
  uint16_t port_ = 0;
  std::shared_ptr<Registry> registry_ = std::make_shared<Registry>();
  std::atomic<bool> stopping_{false};
  std::thread accepting_;
  std::mutex mu_;
  std::list<std::pair<std::shared_ptr<Connection>, std::thread>> connections_;  // guarded by mu_
};

}  // namespace

AIRLOCK_TUNNEL_PLUGIN(
    LineTunnel, "line", "1.0.0", "A line protocol over TLS: one SQL statement a line, rows as text",
    R"({"type":"object","additionalProperties":false,"required":["tls"],)"
    R"("properties":{"listen_address":{"type":"string"},)"
    R"("port":{"type":"integer","minimum":0,"maximum":65535},)"
    R"("tls":{"type":"object","additionalProperties":false,)"
    R"("required":["certificate_file","private_key_file"],)"
    R"("properties":{"certificate_file":{"type":"string"},"private_key_file":{"type":"string"}}},)"
    R"("allow_plaintext":{"type":"boolean"},"public_host":{"type":"string"}}})")
