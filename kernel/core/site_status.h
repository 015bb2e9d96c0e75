// What the API shows of sites: the hosts of outbound-only agents, each
// running the enclaves of the datasets bound to it. A site is online,
// offline or never connected (its link, kernel/agent/), and suspended while
// an admin says so (SiteSuspension, kept in the state store): a suspended
// site's datasets are refused with the admin's reason until it is resumed.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernel/core/config.h"
#include "kernel/core/remote_enclaves.h"
#include "kernel/state/state_store.h"

namespace airlock {

// The suspension of `agent` among `suspensions`, or null.
const SiteSuspension* FindSuspension(const std::vector<SiteSuspension>& suspensions,
                                     const std::string& agent);

// What a refused ask or a failed provisioning says: "site 'west' is
// suspended by root: <reason>".
std::string SuspendedMessage(const SiteSuspension& suspension);

// {"reason","by","since_us"}: how a suspension is shown.
nlohmann::json SuspensionJson(const SiteSuspension& suspension);

// `catalog` ({"datasets":[...]}) with each agent-bound dataset's "site":
// {"agent","status"} where status is the link's (online, offline,
// never_connected) or "suspended" (then with "suspension"); a site's own
// datasets keep what their "site" says already. `remote` may be null (no
// agents): the catalog is returned as it is.
nlohmann::json MarkCatalogSites(const KernelConfig& config, nlohmann::json catalog,
                                const RemoteEnclaveHost* remote,
                                const std::vector<SiteSuspension>& suspensions);

// GET /v1/agents' document with "suspension" on each suspended agent.
nlohmann::json MarkSuspendedAgents(nlohmann::json agents,
                                   const std::vector<SiteSuspension>& suspensions);

}  // namespace airlock
