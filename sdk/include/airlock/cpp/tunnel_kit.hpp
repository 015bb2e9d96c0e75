// What every tunnel needs besides its protocol, written once: the
// listener's settings (address, port, TLS files, plaintext for development,
// the host written into grants) and the request-scoped endpoints: the
// registry that finds an endpoint by its request id and remembers why a
// closed one closed ("revoked" vs "never existed"), and the endpoint whose
// close() drops its connections and waits until no query still uses the
// host's channel. The TLS server context is in tunnel_tls.hpp (Boost.Asio).
// Header-only.
//
// A tunnel derives its endpoint from Endpoint (adding its credential check,
// limits, ...), its connections from Session, and keeps one
// EndpointRegistry<ItsEndpoint>. open() builds the endpoint and Add()s it;
// the TunnelEndpoint handle's destructor calls registry.Close(endpoint).
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "airlock/cpp/config_read.hpp"
#include "airlock/cpp/plugin.hpp"
#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"
#include "airlock/cpp/window_end.hpp"

namespace airlock::sdk::tunnel {

// ---------------------------------------------------------------------------
// The listener's settings: the keys every tunnel configuration has.

struct TlsFiles {
  std::string certificate_file;  // PEM chain, leaf first
  std::string private_key_file;  // PEM
};

struct ListenerSettings {
  std::string listen_address = "127.0.0.1";
  uint16_t port = 0;                      // 0: an ephemeral port, reported in grants
  std::optional<TlsFiles> tls;            // absent only with allow_plaintext
  bool allow_plaintext = false;           // development only
  std::string public_host = "127.0.0.1";  // host written into grants
};

// A host name or IP literal fit for the authority part of a URL.
inline bool IsValidPublicHost(std::string_view host) {
  if (host.empty() || host.size() > 253) return false;
  return std::all_of(host.begin(), host.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == ':' || c == '_';
  });
}

// Reads the listener's keys of `j` into *out. `is_ip_address` checks
// listen_address (the tunnel's networking library parses it);
// `plaintext_note` ends the message when tls is missing without
// allow_plaintext ("plain HTTP needs ...").
template <typename IsIpAddress>
Status ReadListenerSettings(const Json& j, std::string_view where, IsIpAddress is_ip_address,
                            std::string_view plaintext_note, ListenerSettings* out) {
  AIRLOCK_RETURN_IF_ERROR(
      json_read::String(j, "listen_address", &out->listen_address, false, where));
  if (!is_ip_address(out->listen_address)) {
    return json_read::Bad(where, "listen_address", "must be an IPv4 or IPv6 address");
  }
  AIRLOCK_RETURN_IF_ERROR(config_read::Bounded(j, "port", 0, 65535, &out->port, where));
  AIRLOCK_RETURN_IF_ERROR(config_read::Bool(j, "allow_plaintext", &out->allow_plaintext, where));
  if (auto it = j.find("tls"); it != j.end() && !it->is_null()) {
    if (!it->is_object()) return json_read::Bad(where, "tls", "must be an object");
    const std::string tls_where = std::string(where) + ".tls";
    AIRLOCK_RETURN_IF_ERROR(
        config_read::KnownKeys(*it, {"certificate_file", "private_key_file"}, tls_where));
    TlsFiles files;
    AIRLOCK_RETURN_IF_ERROR(
        json_read::String(*it, "certificate_file", &files.certificate_file, true, tls_where));
    AIRLOCK_RETURN_IF_ERROR(
        json_read::String(*it, "private_key_file", &files.private_key_file, true, tls_where));
    if (files.certificate_file.empty()) {
      return json_read::Bad(where, "tls.certificate_file", "must not be empty");
    }
    if (files.private_key_file.empty()) {
      return json_read::Bad(where, "tls.private_key_file", "must not be empty");
    }
    out->tls = std::move(files);
  } else if (!out->allow_plaintext) {
    return json_read::Bad(
        where, "tls",
        "is required (certificate_file, private_key_file); " + std::string(plaintext_note));
  }
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "public_host", &out->public_host, false, where));
  if (!IsValidPublicHost(out->public_host)) {
    return json_read::Bad(where, "public_host",
                          "must be a host name or IP address (letters, digits, . - : _)");
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// Endpoints.

// A connection bound to an endpoint. Both callable from any thread, more
// than once.
class Session {
 public:
  virtual ~Session() = default;
  // Asks the connection to end, telling its client why where the protocol
  // can (PostgreSQL's 57P01); an HTTP connection is simply dropped.
  virtual void Revoke() = 0;
  // Drops the connection now: pending and later reads and writes fail.
  virtual void Kill() = 0;
};

// One published endpoint: the request it serves, until when, through which
// channel. Connections bind to it (Close reaches them); work that uses the
// host's channel holds a Lease (Close waits for it: the channel is valid
// only until the host's close() returns).
class Endpoint {
 public:
  Endpoint(std::string request_id, std::string subject, int64_t not_after_unix_seconds,
           QueryChannel channel, size_t max_sessions = std::numeric_limits<size_t>::max())
      : request_id_(std::move(request_id)),
        subject_(std::move(subject)),
        not_after_(not_after_unix_seconds),
        channel_(channel),
        max_sessions_(max_sessions) {}
  virtual ~Endpoint() = default;
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;

  const std::string& request_id() const { return request_id_; }
  const std::string& subject() const { return subject_; }
  // Unix seconds after which the credential is refused (the tunnel's own
  // clock decides, not the kernel's).
  int64_t not_after() const { return not_after_.get(); }
  bool expired(int64_t now_unix_seconds) const { return now_unix_seconds >= not_after(); }
  // The requester's window was extended. InvalidArgument when not later.
  Status ExtendTo(int64_t not_after) { return not_after_.ExtendTo(not_after); }

  bool closed() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return closed_;
  }
  // Why the host closes the endpoint; set before Close() (default kRevoked).
  void set_close_reason(CloseReason reason) { close_reason_.store(reason); }
  CloseReason close_reason() const { return close_reason_.load(); }

  enum class BindResult { kBound, kClosed, kFull };
  // Remembers `session` so that Close() reaches it, counted against
  // max_sessions (binding the same session again changes nothing).
  BindResult Bind(const std::shared_ptr<Session>& session) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return BindResult::kClosed;
    bool seen = false;
    std::erase_if(sessions_, [&](const auto& entry) {
      auto live = entry.second.lock();
      if (live == session) seen = true;
      return live == nullptr;  // forget connections that are gone
    });
    if (seen) return BindResult::kBound;
    if (sessions_.size() >= max_sessions_) return BindResult::kFull;
    sessions_.emplace_back(session.get(), session);
    return BindResult::kBound;
  }
  // Forgets a session (from its destructor too: matched by address).
  void Unbind(const Session* session) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::erase_if(sessions_, [&](const auto& entry) { return entry.first == session; });
  }

  // The right to use the host's channel. While a Lease lives, Close() waits.
  class Lease {
   public:
    explicit Lease(Endpoint* endpoint) : endpoint_(endpoint) {}
    Lease(Lease&& other) noexcept : endpoint_(std::exchange(other.endpoint_, nullptr)) {}
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (endpoint_ == nullptr) return;
      {
        std::lock_guard<std::mutex> lock(endpoint_->mutex_);
        --endpoint_->leases_;
      }
      endpoint_->leases_done_.notify_all();
    }
    const QueryChannel& channel() const { return endpoint_->channel_; }

   private:
    Endpoint* endpoint_;
  };
  // Nullopt once closed: the channel may already be gone.
  std::optional<Lease> Acquire() {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return std::nullopt;
    ++leases_;
    return Lease(this);
  }

  // Idempotent. Marks the endpoint closed, revokes every bound session and
  // waits until every Lease is released; sessions whose work has not ended
  // within `grace` are killed (a client that stopped reading cannot hold
  // the close up), then the rest is waited for.
  void Close(std::chrono::milliseconds grace) {
    std::vector<std::shared_ptr<Session>> sessions;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      closed_ = true;
      for (auto& [raw, weak] : sessions_) {
        if (auto live = weak.lock()) sessions.push_back(std::move(live));
      }
      sessions_.clear();
    }
    for (auto& session : sessions) session->Revoke();
    std::unique_lock<std::mutex> lock(mutex_);
    if (!leases_done_.wait_for(lock, grace, [&] { return leases_ == 0; })) {
      lock.unlock();
      for (auto& session : sessions) session->Kill();
      lock.lock();
      leases_done_.wait(lock, [&] { return leases_ == 0; });
    }
  }

 private:
  const std::string request_id_;
  const std::string subject_;
  WindowEnd not_after_;
  const QueryChannel channel_;
  const size_t max_sessions_;
  std::atomic<CloseReason> close_reason_{CloseReason::kRevoked};

  mutable std::mutex mutex_;
  std::condition_variable leases_done_;
  bool closed_ = false;                                                      // guarded by mutex_
  int leases_ = 0;                                                           // guarded by mutex_
  std::vector<std::pair<const Session*, std::weak_ptr<Session>>> sessions_;  // guarded by mutex_
};

// request id → open endpoint, plus a bounded memory of closed ids and why
// they closed, so that a later client is told "revoked" or "window ended"
// rather than "unknown". Thread-safe. E derives from Endpoint.
template <typename E>
class EndpointRegistry {
 public:
  // How long Close gives an endpoint's connections to end on their own.
  explicit EndpointRegistry(std::chrono::milliseconds close_grace = std::chrono::milliseconds(0))
      : close_grace_(close_grace) {}

  // AlreadyExists when an open endpoint has the same request id.
  Status Add(std::shared_ptr<E> endpoint) {
    std::lock_guard<std::mutex> lock(mutex_);
    const std::string& id = endpoint->request_id();
    if (open_.count(id) != 0) {
      return Status::AlreadyExists("an endpoint for request '" + id + "' is already open");
    }
    closed_.erase(id);  // reopened: no longer closed (its order entry ages out harmlessly)
    open_.emplace(id, std::move(endpoint));
    return Status::Ok();
  }

  // The open endpoint, or null; then *closed is why the id was closed
  // (nullopt: unknown or long forgotten).
  std::shared_ptr<E> Find(std::string_view request_id, std::optional<CloseReason>* closed) const {
    std::lock_guard<std::mutex> lock(mutex_);
    const std::string id(request_id);
    closed->reset();
    if (auto it = open_.find(id); it != open_.end()) return it->second;
    if (auto it = closed_.find(id); it != closed_.end()) *closed = it->second;
    return nullptr;
  }

  // Removes and closes the endpoint (Endpoint::Close, outside the
  // registry's lock: it may wait for queries). No-op if absent.
  void Close(const std::shared_ptr<E>& endpoint) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      const std::string& id = endpoint->request_id();
      auto it = open_.find(id);
      if (it != open_.end() && it->second == endpoint) {
        open_.erase(it);
        if (closed_.insert_or_assign(id, endpoint->close_reason()).second) {
          closed_order_.push_back(id);
          while (closed_order_.size() > kMaxRememberedClosures) {
            closed_.erase(closed_order_.front());
            closed_order_.pop_front();
          }
        }
      }
    }
    endpoint->Close(close_grace_);
  }

  // Closes every open endpoint (the tunnel is shutting down).
  void CloseAll() {
    std::vector<std::shared_ptr<E>> all;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto& [id, endpoint] : open_) all.push_back(endpoint);
    }
    for (auto& endpoint : all) Close(endpoint);
  }

  static constexpr size_t kMaxRememberedClosures = 4096;

 private:
  const std::chrono::milliseconds close_grace_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<E>> open_;  // guarded by mutex_
  std::unordered_map<std::string, CloseReason> closed_;       // guarded by mutex_
  std::deque<std::string> closed_order_;                      // guarded by mutex_
};

}  // namespace airlock::sdk::tunnel
