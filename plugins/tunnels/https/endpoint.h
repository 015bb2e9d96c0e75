// Published endpoints: one EndpointState per open() and the registry that
// maps request ids to them. Closing an endpoint refuses every later request,
// drops the connections that used it, cancels its running queries and waits
// until none of them touches the host's query channel any more.
#pragma once

#include <atomic>
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
#include "credential.h"
#include "rate_limiter.h"

namespace airlock::tunnels::https {

// What the endpoint needs from a connection that used it.
class SessionHandle {
 public:
  virtual ~SessionHandle() = default;
  // Drops the connection now, from any thread; pending and later I/O fail.
  virtual void ForceClose() = 0;
  // The connection presented a valid credential for the endpoint of request
  // `request_id`: it leaves the listener's pre-authentication pool and takes
  // a place in that endpoint's share of connections (the first endpoint it
  // authenticates for keeps it). False when that share is full. On the
  // connection's strand.
  virtual bool ClaimEndpointShare(const std::string& request_id) = 0;
};

class EndpointState {
 public:
  EndpointState(std::string request_id, std::string subject, CredentialHash credential_hash,
                int64_t not_after_unix_seconds, sdk::QueryChannel channel,
                uint32_t rate_limit_per_minute, uint32_t max_concurrent_jobs)
      : request_id_(std::move(request_id)),
        subject_(std::move(subject)),
        credential_hash_(credential_hash),
        not_after_(not_after_unix_seconds),
        channel_(channel),
        rate_limiter_(rate_limit_per_minute),
        max_concurrent_jobs_(max_concurrent_jobs) {}

  const std::string& request_id() const { return request_id_; }
  const std::string& subject() const { return subject_; }
  int64_t not_after() const { return not_after_.get(); }
  // The requester's window was extended: accept the credential until the
  // later `not_after`. InvalidArgument when it is not later.
  Status ExtendTo(int64_t not_after) { return not_after_.ExtendTo(not_after); }
  bool closed() const;

  // Why the host closes the endpoint; set before Close() (default kRevoked).
  void set_close_reason(sdk::CloseReason reason) { close_reason_.store(reason); }
  sdk::CloseReason close_reason() const { return close_reason_.load(); }

  // Constant-time check of a presented bearer credential.
  bool Authenticate(std::string_view presented) const {
    return CredentialMatches(presented, credential_hash_);
  }

  RateLimiter& rate_limiter() { return rate_limiter_; }

  // One of the credential's max_concurrent_jobs places for a query or schema
  // lookup, from the moment it is accepted until its response is complete.
  // Move-only; releasing is destroying.
  class JobSlot {
   public:
    explicit JobSlot(EndpointState* state) : state_(state) {}
    JobSlot(JobSlot&& other) noexcept : state_(std::exchange(other.state_, nullptr)) {}
    JobSlot& operator=(JobSlot&&) = delete;
    ~JobSlot();

   private:
    EndpointState* state_;
  };
  // Nullopt when max_concurrent_jobs are already running for this credential.
  std::optional<JobSlot> TryStartJob();
  uint32_t max_concurrent_jobs() const { return max_concurrent_jobs_; }

  // Remembers a connection so Close() can drop it. False once closed (the
  // caller must then refuse the request).
  bool Bind(const std::shared_ptr<SessionHandle>& session);

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

  // Idempotent. Marks the endpoint closed, drops bound connections and blocks
  // until every Lease is released (running queries see closed() and stop).
  void Close();

 private:
  const std::string request_id_;
  const std::string subject_;
  const CredentialHash credential_hash_;
  sdk::WindowEnd not_after_;
  const sdk::QueryChannel channel_;
  RateLimiter rate_limiter_;
  const uint32_t max_concurrent_jobs_;
  std::atomic<uint32_t> running_jobs_{0};
  std::atomic<sdk::CloseReason> close_reason_{sdk::CloseReason::kRevoked};

  mutable std::mutex mutex_;
  std::condition_variable leases_done_;
  bool closed_ = false;                                 // GUARDED_BY(mutex_)
  int leases_ = 0;                                      // GUARDED_BY(mutex_)
  std::vector<std::weak_ptr<SessionHandle>> sessions_;  // GUARDED_BY(mutex_)
};

// request id → open endpoint, plus a bounded memory of closed ids and why
// they closed, so that later requests get 410 with the reason rather than
// 404. Thread-safe.
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

}  // namespace airlock::tunnels::https
