// Published endpoints: one EndpointState per open(), found by the user name
// a client presents (the request id), in the SDK's tunnel kit registry. Closing an endpoint refuses
// later connections, tells connected clients 57P01 and drops them, cancels running statements and
// waits until none of them touches the host's channel.
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
#include "airlock/cpp/tunnel_kit.hpp"
#include "scram.h"

namespace airlock::tunnels::pgwire {

// What an endpoint needs from a connection bound to it: Revoke() wakes the
// connection's reader so it tells the client 57P01 and closes; Kill() drops
// it now. Both callable from any thread.
using SessionHandle = sdk::tunnel::Session;

// An open endpoint (sdk::tunnel::Endpoint: window, bound connections
// counted against max_connections_per_endpoint, leases on the host's
// channel) with the SCRAM verifier of its credential.
class EndpointState : public sdk::tunnel::Endpoint {
 public:
  EndpointState(std::string request_id, std::string subject, const ScramVerifier& verifier,
                int64_t not_after_unix_seconds, sdk::QueryChannel channel, uint32_t max_connections)
      : Endpoint(std::move(request_id), std::move(subject), not_after_unix_seconds, channel,
                 max_connections),
        verifier_(verifier) {}

  const ScramVerifier& verifier() const { return verifier_; }

 private:
  const ScramVerifier verifier_;
};

// How long a closing endpoint's connections get to stop their statement and
// say 57P01 before they are dropped (a client that stopped reading cannot
// hold close() up).
inline constexpr std::chrono::milliseconds kCloseGrace{500};

// request id → open endpoint, and why closed ones closed, so that a later
// connection is told "revoked" or "window ended" rather than "unknown".
using EndpointRegistry = sdk::tunnel::EndpointRegistry<EndpointState>;

}  // namespace airlock::tunnels::pgwire
