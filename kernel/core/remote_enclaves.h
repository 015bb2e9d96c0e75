// Enclaves that run on another host, provisioned there by an agent
// (kernel/agent/). The supervisor drives such an enclave exactly like a local
// one: it gets a connected control descriptor whose far end the implementation
// bridges to the agent, so queries, tunnels and audit do not change.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "airlock/cpp/status.hpp"

namespace airlock {

// One enclave on an agent's host. Not thread-safe (owned by the supervisor).
class RemoteEnclave {
 public:
  virtual ~RemoteEnclave() = default;
  // The local end of the enclave's control channel; the caller owns it. -1
  // after the first call.
  virtual int ReleaseControlFd() = 0;
  // Asks the agent to destroy the enclave and drops the bridge. Idempotent.
  virtual Status Terminate() = 0;
  // True when the agent's isolator forwards egress (the spec then carries
  // routes and the agent dials approved endpoints from its own host).
  virtual bool egress_forwarded() const = 0;
};

// Thread-safety: every method may be called concurrently.
class RemoteEnclaveHost {
 public:
  virtual ~RemoteEnclaveHost() = default;
  // Provisions an enclave for request `request_id` on agent `agent` with
  // `isolator_spec` (what a local isolator would get). Unavailable, naming
  // the agent and why, when the agent is offline or does not answer.
  virtual Result<std::unique_ptr<RemoteEnclave>> Provision(const std::string& agent,
                                                           const std::string& request_id,
                                                           const nlohmann::json& isolator_spec) = 0;
  // {"name","status":"online|offline|never_connected","reason"?,"last_seen_us"?,...}
  virtual nlohmann::json AgentStatus(const std::string& agent) const = 0;
  // The agents linked with this kernel now (online), each with when its
  // current link came up (its own clock): a new link has a new time.
  virtual std::map<std::string, int64_t> LinkedAgents() const = 0;
};

}  // namespace airlock
