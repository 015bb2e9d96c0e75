// Published endpoints: one EndpointState per open(), found by the user name
// a client presents (the request id). Closing an endpoint refuses later
// connections, tells connected clients 57P01 and drops them, cancels running
// statements and waits until none of them touches the host's channel.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "airlock/cpp/plugin.hpp"
#include "airlock/cpp/window_end.hpp"
#include "scram.h"

namespace airlock::tunnels::pgwire {

// What an endpoint needs from a connection bound to it. Both callable from
// any thread.
class SessionHandle {
 public:
  virtual ~SessionHandle() = default;
  // Wakes the connection's reader so it tells the client 57P01 and closes.
  virtual void Revoke() = 0;
  // Drops the connection now: pending and later reads and writes fail.
  virtual void Kill() = 0;
};

class EndpointState {
 public:
  EndpointState(std::string request_id, std::string subject, const ScramVerifier& verifier,
                int64_t not_after_unix_seconds, sdk::QueryChannel channel, uint32_t max_connections)
      : request_id_(std::move(request_id)),
        subject_(std::move(subject)),
        verifier_(verifier),
        not_after_(not_after_unix_seconds),
        channel_(channel),
        max_connections_(max_connections) {}

  // The user name and the database name clients present.
  const std::string& request_id() const { return request_id_; }
  const std::string& subject() const { return subject_; }
  const ScramVerifier& verifier() const { return verifier_; }
  int64_t not_after() const { return not_after_.get(); }
  // The requester's window was extended: accept the credential until the
  // later `not_after`. InvalidArgument when it is not later.
  Status ExtendTo(int64_t not_after) { return not_after_.ExtendTo(not_after); }
  bool closed() const;

  // Why the host closes the endpoint; set before Close() (default kRevoked).
  void set_close_reason(sdk::CloseReason reason) { close_reason_.store(reason); }
  sdk::CloseReason close_reason() const { return close_reason_.load(); }

  enum class AttachResult { kAttached, kClosed, kTooManyConnections };
  // Counts an authenticated connection against max_connections and remembers
  // it so Close() can reach it. Pair kAttached with Detach().
  AttachResult Attach(const std::shared_ptr<SessionHandle>& session);
  void Detach(const SessionHandle* session);

  // The right to use the host's channel. While a Lease lives, Close() waits.
  class Lease {
   public:
    explicit Lease(EndpointState* state) : state_(state) {}
    Lease(Lease&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    const sdk::QueryChannel& channel() const { return state_->channel_; }

   private:
    EndpointState* state_;
  };
  // Nullopt once closed: the channel may already be gone.
  std::optional<Lease> Acquire();

  // Idempotent. Marks the endpoint closed, revokes bound connections and
  // blocks until every Lease is released. Connections whose statement does
  // not stop within `grace` are dropped hard (a client that stopped reading
  // cannot hold close() up).
  void Close(std::chrono::milliseconds grace = std::chrono::milliseconds(500));

 private:
  const std::string request_id_;
  const std::string subject_;
  const ScramVerifier verifier_;
  sdk::WindowEnd not_after_;
  const sdk::QueryChannel channel_;
  const uint32_t max_connections_;
  std::atomic<sdk::CloseReason> close_reason_{sdk::CloseReason::kRevoked};

  mutable std::mutex mutex_;
  std::condition_variable leases_done_;
  bool closed_ = false;  // GUARDED_BY(mutex_)
  int leases_ = 0;       // GUARDED_BY(mutex_)
  std::vector<std::pair<const SessionHandle*, std::weak_ptr<SessionHandle>>>
      sessions_;  // GUARDED_BY(mutex_)
};

// request id → open endpoint, plus a bounded memory of closed ids and why
// they closed, so that a later connection is told "revoked" or "window
// ended" rather than "unknown". Thread-safe.
class EndpointRegistry {
 public:
  // AlreadyExists when an open endpoint has the same request id.
  Status Add(std::shared_ptr<EndpointState> endpoint);
  // The open endpoint, or null; then *closed is why the id was closed
  // (nullopt: unknown or long forgotten).
  std::shared_ptr<EndpointState> Find(std::string_view request_id,
                                      std::optional<sdk::CloseReason>* closed) const;
  // Removes and closes the endpoint (see EndpointState::Close). No-op if absent.
  void Close(const std::shared_ptr<EndpointState>& endpoint);
  // Closes every open endpoint (the tunnel is shutting down).
  void CloseAll();

 private:
  static constexpr size_t kMaxRememberedRevocations = 4096;

  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<EndpointState>> open_;  // GUARDED_BY(mutex_)
  std::unordered_map<std::string, sdk::CloseReason> closed_;              // GUARDED_BY(mutex_)
  std::deque<std::string> closed_order_;                                  // GUARDED_BY(mutex_)
};

}  // namespace airlock::tunnels::pgwire
