// The kernel's half of enclave egress (kernel/enclave/egress_forwarder.h):
// which endpoints a request may reach, where each appears inside the
// enclave, and the outbound connection the kernel makes on the enclave's
// behalf.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "airlock/cpp/status.hpp"
#include "kernel/enclave/channel.h"
#include "kernel/enclave/egress_forwarder.h"

namespace airlock {

// Routes for `endpoints` ("host:port", validated by the configuration,
// duplicates allowed): a 127.x.y.z literal listens on itself; every distinct
// host name gets its own address from 127.0.0.2 on, which the isolator maps
// the name to inside the enclave. Deterministic for the same input.
std::vector<enclave::EgressRoute> PlanEgressRoutes(const std::vector<std::string>& endpoints);

// [{"endpoint","host","port","address"}] as the isolator spec carries them.
nlohmann::json EgressRoutesJson(const std::vector<enclave::EgressRoute>& routes);

// Resolves `endpoint` ("host:port") and connects to the first address that
// answers within `timeout` overall. The socket is blocking, close-on-exec and
// TCP_NODELAY (an egress relay forwards bytes as they come).
// Unavailable (naming the endpoint, never more) when nothing answers.
Result<enclave::UniqueFd> DialTcp(const std::string& endpoint, std::chrono::milliseconds timeout);

}  // namespace airlock
