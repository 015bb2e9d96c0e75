#include "kernel/core/site_status.h"

namespace airlock {

using nlohmann::json;

const SiteSuspension* FindSuspension(const std::vector<SiteSuspension>& suspensions,
                                     const std::string& agent) {
  for (const SiteSuspension& s : suspensions) {
    if (s.agent == agent) return &s;
  }
  return nullptr;
}

std::string SuspendedMessage(const SiteSuspension& suspension) {
  return "site '" + suspension.agent + "' is suspended by " + suspension.by + ": " +
         suspension.reason;
}

json SuspensionJson(const SiteSuspension& suspension) {
  return {{"reason", suspension.reason}, {"by", suspension.by}, {"since_us", suspension.since_us}};
}

json MarkCatalogSites(const KernelConfig& config, json catalog, const RemoteEnclaveHost* remote,
                      const std::vector<SiteSuspension>& suspensions) {
  if (remote == nullptr || !config.agents.enabled) return catalog;
  auto datasets = catalog.find("datasets");
  if (datasets == catalog.end() || !datasets->is_array()) return catalog;
  for (json& entry : *datasets) {
    // A site's own datasets name their agent already; configured ones are
    // bound through their connector.
    json site = entry.value("site", json::object());
    if (!site.contains("agent")) {
      auto agent = AgentForDatasets(config, {entry.value("name", "")});
      if (!agent.ok() || agent->empty()) continue;
      site["agent"] = *agent;
    }
    const std::string agent = site.value("agent", "");
    if (const SiteSuspension* s = FindSuspension(suspensions, agent)) {
      site["status"] = "suspended";
      site["suspension"] = SuspensionJson(*s);
    } else {
      site["status"] = remote->AgentStatus(agent).value("status", "offline");
    }
    entry["site"] = std::move(site);
  }
  return catalog;
}

json MarkSuspendedAgents(json agents, const std::vector<SiteSuspension>& suspensions) {
  auto list = agents.find("agents");
  if (list == agents.end() || !list->is_array()) return agents;
  for (json& agent : *list) {
    if (const SiteSuspension* s = FindSuspension(suspensions, agent.value("name", ""))) {
      agent["suspension"] = SuspensionJson(*s);
    }
  }
  return agents;
}

}  // namespace airlock
