// Published endpoints: one EndpointState per open() and the registry that
// maps request ids to them (the SDK's tunnel kit). Closing an endpoint
// refuses every later request, drops the connections that used it, cancels
// its running queries and waits until none of them touches the host's query
// channel any more.
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
#include "airlock/cpp/tunnel_kit.hpp"
#include "credential.h"
#include "rate_limiter.h"

namespace airlock::tunnels::https {

// What the endpoint needs from a connection that used it. Revoking or
// killing an HTTP connection is dropping it.
class SessionHandle : public sdk::tunnel::Session {
 public:
  // Drops the connection now, from any thread; pending and later I/O fail.
  virtual void ForceClose() = 0;
  // The connection presented a valid credential for the endpoint of request
  // `request_id`: it leaves the listener's pre-authentication pool and takes
  // a place in that endpoint's share of connections (the first endpoint it
  // authenticates for keeps it). False when that share is full. On the
  // connection's strand.
  virtual bool ClaimEndpointShare(const std::string& request_id) = 0;

  void Revoke() final { ForceClose(); }
  void Kill() final { ForceClose(); }
};

// An open endpoint (sdk::tunnel::Endpoint: window, bound connections,
// leases on the host's channel) with what HTTPS adds: the credential's
// hash, its rate limit and its share of concurrent queries.
class EndpointState : public sdk::tunnel::Endpoint {
 public:
  EndpointState(std::string request_id, std::string subject, CredentialHash credential_hash,
                int64_t not_after_unix_seconds, sdk::QueryChannel channel,
                uint32_t rate_limit_per_minute, uint32_t max_concurrent_jobs)
      : Endpoint(std::move(request_id), std::move(subject), not_after_unix_seconds, channel),
        credential_hash_(credential_hash),
        rate_limiter_(rate_limit_per_minute),
        max_concurrent_jobs_(max_concurrent_jobs) {}

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

 private:
  const CredentialHash credential_hash_;
  RateLimiter rate_limiter_;
  const uint32_t max_concurrent_jobs_;
  std::atomic<uint32_t> running_jobs_{0};
};

// request id → open endpoint, and why closed ones closed (so that later
// requests get 410 with the reason rather than 404). Closing drops the
// endpoint's connections at once and waits for its running queries.
using EndpointRegistry = sdk::tunnel::EndpointRegistry<EndpointState>;

}  // namespace airlock::tunnels::https
