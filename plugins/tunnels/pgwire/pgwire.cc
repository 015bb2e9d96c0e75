#include "pgwire.h"

#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <exception>
#include <optional>
#include <string>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include "airlock/cpp/tunnel_tls.hpp"
#include "errors.h"
#include "scram.h"
#include "wire.h"

namespace airlock::tunnels::pgwire {
namespace {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;

Result<ssl::context> MakeTlsContext(const TlsFiles& files) {
  return sdk::tunnel::MakeServerTlsContext(files, "tunnel configuration");
}

std::string UrlHost(const std::string& host) {
  return host.find(':') != std::string::npos ? "[" + host + "]" : host;
}

// Request ids become PostgreSQL user and database names and URL parts.
bool IsValidRequestId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '~' || c == '-';
    if (!ok) return false;
  }
  return true;
}

int32_t RandomInt32() {
  int32_t value = 0;
  if (RAND_bytes(reinterpret_cast<unsigned char*>(&value), sizeof value) != 1) {
    throw std::runtime_error("the random generator failed");
  }
  return value;
}

// A client that connected and left without a word (a reconnect storm does
// this thousands of times a second) is closed here, on the I/O thread, for
// one system call: starting its session would cost a thread.
bool HungUp(tcp::socket& socket) {
  char byte = 0;
  const ssize_t got = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (got > 0) return false;
  return got == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

}  // namespace

// ---------------------------------------------------------------------------
// PgwireEndpoint

PgwireEndpoint::~PgwireEndpoint() {
  registry_->Close(state_);
  host_.Info("pgwire endpoint for request '" + state_->request_id() + "' closed (" +
             CloseReasonName(state_->close_reason()) + ")");
}

// ---------------------------------------------------------------------------
// SessionTable

SessionTable::~SessionTable() {
  KillAll();
}

std::shared_ptr<Session> SessionTable::Start(SessionContext& context, tcp::socket socket,
                                             sdk::ConnectionBudget::Ticket ticket,
                                             Connection::Clock::time_point accepted_at) {
  std::lock_guard<std::mutex> lock(mutex_);
  int32_t process_id = 0;
  do {
    process_id = RandomInt32() & 0x7fffffff;
  } while (process_id == 0 || live_.count(process_id) != 0);
  auto session = std::make_shared<Session>(context, std::move(socket), process_id, RandomInt32(),
                                           std::move(ticket), accepted_at);
  Entry& entry = live_[process_id];
  entry.session = session;
  // The thread cannot reach Finished() (which takes the lock) before the
  // entry is complete.
  entry.thread = std::thread([this, session, process_id]() mutable {
    session->Run();
    session.reset();
    Finished(process_id);
  });
  return entry.session;
}

void SessionTable::Finished(int32_t process_id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = live_.find(process_id);
  if (it == live_.end()) return;
  finished_.push_back(std::move(it->second.thread));
  live_.erase(it);
  ended_.notify_all();
}

size_t SessionTable::size() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return live_.size();
}

void SessionTable::EnforceDeadlines() {
  const auto now = Connection::Clock::now();
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [id, entry] : live_) entry.session->EnforceDeadline(now);
}

void SessionTable::Reap() {
  std::vector<std::thread> done;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    done.swap(finished_);
  }
  for (auto& thread : done) {
    if (thread.joinable()) thread.join();
  }
}

void SessionTable::KillAll() {
  {
    std::unique_lock<std::mutex> lock(mutex_);
    for (auto& [id, entry] : live_) entry.session->Kill();
    // Threads remove themselves from live_ as they end.
    ended_.wait(lock, [&] { return live_.empty(); });
  }
  Reap();
}

void SessionTable::Cancel(int32_t process_id, int32_t secret_key) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = live_.find(process_id);
  if (it != live_.end()) it->second.session->RequestCancel(secret_key);
}

// ---------------------------------------------------------------------------
// PgwireTunnel

PgwireTunnel::PgwireTunnel(PgwireConfig config, sdk::Host host)
    : config_(std::move(config)),
      host_(std::move(host)),
      work_(net::make_work_guard(io_)),
      acceptor_(io_),
      watchdog_(io_) {
  const auto shortest =
      std::min({config_.idle_timeout, config_.startup_timeout, config_.write_timeout});
  watchdog_period_ =
      std::clamp(shortest / 4, std::chrono::milliseconds(20), std::chrono::milliseconds(1000));
}

namespace {

// The parsed configuration with its TLS paths resolved against the kernel
// configuration's directory.
Result<PgwireConfig> ResolvedConfig(const Json& config, const sdk::Host& host) {
  AIRLOCK_ASSIGN_OR_RETURN(PgwireConfig parsed, ParseConfig(config));
  if (parsed.tls.has_value()) {
    parsed.tls->certificate_file = host.ResolvePath(parsed.tls->certificate_file);
    parsed.tls->private_key_file = host.ResolvePath(parsed.tls->private_key_file);
  }
  return parsed;
}

}  // namespace

Status PgwireTunnel::CheckConfig(const Json& config, const sdk::Host& host) {
  AIRLOCK_ASSIGN_OR_RETURN(PgwireConfig parsed, ResolvedConfig(config, host));
  boost::system::error_code ec;
  (void)net::ip::make_address(parsed.listen_address, ec);
  if (ec) {
    return Status::InvalidArgument("listen_address \"" + parsed.listen_address +
                                   "\" is not an IP address");
  }
  if (parsed.tls.has_value()) AIRLOCK_RETURN_IF_ERROR(MakeTlsContext(*parsed.tls).status());
  return Status::Ok();
}

Result<std::unique_ptr<PgwireTunnel>> PgwireTunnel::Create(const Json& config,
                                                           const sdk::Host& host) {
  AIRLOCK_ASSIGN_OR_RETURN(PgwireConfig parsed, ResolvedConfig(config, host));
  std::unique_ptr<PgwireTunnel> tunnel(new PgwireTunnel(std::move(parsed), host));
  AIRLOCK_RETURN_IF_ERROR(tunnel->Start());
  return tunnel;
}

Status PgwireTunnel::Start() {
  if (config_.tls.has_value()) {
    AIRLOCK_ASSIGN_OR_RETURN(auto tls, MakeTlsContext(*config_.tls));
    tls_.emplace(std::move(tls));
  }
  session_context_.emplace(
      SessionContext{config_, host_, *registry_, tls_.has_value() ? &*tls_ : nullptr, sessions_});
  const tcp::endpoint endpoint(net::ip::make_address(config_.listen_address), config_.port);
  boost::system::error_code ec;
  const std::string where = config_.listen_address + ":" + std::to_string(config_.port);
  const auto fail = [&](const char* step) {
    return Status::Unavailable("tunnel configuration.listen_address/port: cannot " +
                               std::string(step) + " " + where + ": " + ec.message());
  };
  acceptor_.open(endpoint.protocol(), ec);
  if (ec) return fail("open a socket for");
  acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (ec) return fail("set SO_REUSEADDR on");
  acceptor_.bind(endpoint, ec);
  if (ec) return fail("bind");
  acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec) return fail("listen on");
  port_ = acceptor_.local_endpoint(ec).port();
  if (ec) return fail("read the port of");

  DoAccept();
  ArmWatchdog();
  io_thread_ = std::thread([this] {
    for (;;) {
      try {
        io_.run();
        return;
      } catch (const std::exception& e) {
        host_.Error(std::string("pgwire listener handler failed: ") + e.what());
      }
    }
  });
  host_.Info("pgwire tunnel listening on " + UrlHost(config_.listen_address) + ":" +
             std::to_string(port_) + " (published as " + UrlHost(config_.public_host) + ")" +
             (config_.tls_enabled() ? "" : " WITHOUT TLS"));
  if (config_.allow_plaintext) {
    host_.Warn(
        "pgwire tunnel accepts PLAINTEXT startups from loopback peers (allow_plaintext): "
        "development only");
  }
  return Status::Ok();
}

void PgwireTunnel::DoAccept() {
  acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || stopping_ || !acceptor_.is_open()) return;
    if (!ec) Admit(std::move(socket));
    DoAccept();
  });
}

void PgwireTunnel::Admit(tcp::socket socket) {
  sessions_.Reap();
  boost::system::error_code peer_ec;
  const auto peer = socket.remote_endpoint(peer_ec);
  const std::string key =
      peer_ec ? std::string("unknown") : sdk::ClientAddressKey(peer.address().to_string());
  // Admit (and so every shed callback) runs on this I/O thread only, so
  // waiting_ and the `admitted` slot need no lock.
  const uint64_t id = ++next_waiting_id_;
  auto admitted = std::make_shared<std::weak_ptr<Session>>();
  auto ticket = budget_.Admit(key, [this, id, admitted] {
    if (waiting_.erase(id) != 0) return;  // closes the socket, cancels its waits
    if (auto victim = admitted->lock()) victim->Kill();
  });
  if (!ticket.has_value()) {
    // Nothing could be shed: refused before any negotiation; libpq reports
    // an error sent in answer to its SSLRequest, too.
    std::string out;
    MessageWriter(out).Error(MakeError(
        sqlstate::kTooManyConnections,
        "sorry, too many clients already (the tunnel's max_connections is reached)", "FATAL"));
    boost::system::error_code ignored;
    net::write(socket, net::buffer(out), ignored);
    socket.close(ignored);
    return;
  }
  auto owned = std::make_unique<Waiting>(std::move(socket), io_, std::move(*ticket), admitted);
  Waiting& waiting = *owned;
  waiting_.emplace(id, std::move(owned));
  // Both handlers find the connection by id: whichever runs first (or a
  // shed) removes it, and the other then finds nothing to do.
  waiting.deadline.expires_after(config_.startup_timeout);
  waiting.deadline.async_wait([this, id](boost::system::error_code wait_ec) {
    if (!wait_ec) waiting_.erase(id);  // said nothing in time: closed
  });
  waiting.socket.async_wait(tcp::socket::wait_read, [this, id](boost::system::error_code wait_ec) {
    auto it = waiting_.find(id);
    if (it == waiting_.end()) return;
    std::unique_ptr<Waiting> ready = std::move(it->second);
    waiting_.erase(it);
    if (wait_ec || HungUp(ready->socket)) return;
    *ready->admitted = sessions_.Start(*session_context_, std::move(ready->socket),
                                       std::move(ready->ticket), ready->accepted_at);
  });
}

void PgwireTunnel::ArmWatchdog() {
  watchdog_.expires_after(watchdog_period_);
  watchdog_.async_wait([this](boost::system::error_code ec) {
    // A tick already due when the destructor cancelled the timer completes
    // without an error: it must not arm the next one, or io_.run() never ends.
    if (ec || stopping_) return;
    sessions_.EnforceDeadlines();
    sessions_.Reap();
    ArmWatchdog();
  });
}

PgwireTunnel::~PgwireTunnel() {
  // Revoke everything first: clients hear 57P01, statements stop.
  registry_->CloseAll();
  net::post(io_, [this] {
    stopping_ = true;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    watchdog_.cancel();
    waiting_.clear();
  });
  work_.reset();
  if (io_thread_.joinable()) io_thread_.join();
  sessions_.KillAll();
}

Result<sdk::TunnelOpening> PgwireTunnel::Open(const Json& spec, sdk::QueryChannel channel) {
  if (!spec.is_object()) return Status::InvalidArgument("endpoint spec must be a JSON object");
  std::string request_id;
  AIRLOCK_RETURN_IF_ERROR(
      json_read::String(spec, "request_id", &request_id, true, "endpoint spec"));
  if (!IsValidRequestId(request_id)) {
    return Status::InvalidArgument(
        "endpoint spec.request_id must be 1-128 characters of A-Z a-z 0-9 . _ ~ -");
  }
  int64_t not_after = 0;
  AIRLOCK_RETURN_IF_ERROR(json_read::Int(spec, "not_after", &not_after, true, "endpoint spec"));
  if (not_after <= host_.NowMicros() / 1000000) {
    return Status::InvalidArgument("endpoint spec.not_after is not in the future");
  }
  std::string subject;
  if (auto it = spec.find("principal"); it != spec.end() && !it->is_null()) {
    if (!it->is_object()) {
      return Status::InvalidArgument("endpoint spec.principal must be an object");
    }
    AIRLOCK_RETURN_IF_ERROR(
        json_read::String(*it, "subject", &subject, false, "endpoint spec.principal"));
  }

  // Opened again for a password issued earlier (by any kernel replica):
  // that one stays valid and none is issued.
  std::string verifier_text;
  AIRLOCK_RETURN_IF_ERROR(
      json_read::String(spec, "verifier", &verifier_text, false, "endpoint spec"));
  std::optional<IssuedPassword> issued;
  ScramVerifier verifier;
  if (!verifier_text.empty()) {
    AIRLOCK_ASSIGN_OR_RETURN(verifier, ParseVerifierText(verifier_text, 4096));
  } else {
    AIRLOCK_ASSIGN_OR_RETURN(IssuedPassword password, IssuePassword(config_.scram_iterations));
    verifier = password.verifier();
    issued.emplace(std::move(password));
  }
  auto state = std::make_shared<EndpointState>(request_id, subject, verifier, not_after, channel,
                                               config_.max_connections_per_endpoint);
  AIRLOCK_RETURN_IF_ERROR(registry_->Add(state));

  const std::string sslmode = config_.tls_enabled() ? "require" : "disable";
  sdk::TunnelOpening opening;
  opening.grant =
      Json{{"url", "postgresql://" + request_id + "@" + UrlHost(config_.public_host) + ":" +
                       std::to_string(port_) + "/" + request_id + "?sslmode=" + sslmode},
           {"host", config_.public_host},
           {"port", port_},
           {"user", request_id},
           {"database", request_id},
           {"verifier", VerifierText(verifier)},
           {"sslmode", sslmode},
           {"expires_at", not_after},
           {"transport", "pgwire"}};
  if (issued) opening.grant["credential"] = issued->password();
  opening.endpoint = std::make_unique<PgwireEndpoint>(registry_, std::move(state), host_);
  host_.Info("pgwire endpoint for request '" + request_id + "' opened" +
             (subject.empty() ? std::string() : " for '" + subject + "'") + ", valid until " +
             std::to_string(not_after));
  return opening;
}

}  // namespace airlock::tunnels::pgwire
