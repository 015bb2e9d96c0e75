#include "kernel/core/tenancy.h"

#include <algorithm>
#include <vector>

#include "kernel/state/state_store.h"

namespace airlock {

using nlohmann::json;

namespace {

bool InAny(const Principal& p, const std::vector<std::string>& groups) {
  return std::any_of(groups.begin(), groups.end(),
                     [&](const std::string& g) { return p.InGroup(g); });
}

bool Lists(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

Status Tenancy::Assign(Principal* principal) const {
  if (!enabled()) return Status::Ok();
  if (!principal->tenant.empty()) {
    // The identity provider said: it must be a tenant this kernel serves.
    if (config_->tenants.count(principal->tenant)) return Status::Ok();
    return Status::PermissionDenied("your identity names a tenant this kernel does not serve");
  }
  const TenantConfig* found = nullptr;
  for (const auto& [name, tenant] : config_->tenants) {
    if (!Lists(tenant.subjects, principal->subject) && !InAny(*principal, tenant.groups)) continue;
    if (found != nullptr) {
      // Fail closed: an ambiguous principal is nobody's.
      return Status::PermissionDenied(
          "you belong to more than one tenant; an administrator must settle which");
    }
    found = &tenant;
  }
  if (found != nullptr) {
    principal->tenant = found->name;
    return Status::Ok();
  }
  if (IsPlatformAdmin(*principal)) return Status::Ok();
  return Status::PermissionDenied("you belong to no tenant of this kernel");
}

bool Tenancy::IsPlatformAdmin(const Principal& principal) const {
  return InAny(principal, config_->admin_groups);
}

bool Tenancy::IsAdminOf(const Principal& principal, std::string_view tenant) const {
  if (IsPlatformAdmin(principal)) return true;
  if (!enabled() || tenant.empty() || principal.tenant != tenant) return false;
  const auto it = config_->tenants.find(std::string(tenant));
  return it != config_->tenants.end() && InAny(principal, it->second.admin_groups);
}

bool Tenancy::Reaches(const Principal& principal, std::string_view tenant) const {
  if (!enabled() || IsPlatformAdmin(principal)) return true;
  // A principal always has a tenant here (Assign); an object without one
  // (made before tenants were configured) is the platform admins' alone.
  return !principal.tenant.empty() && principal.tenant == tenant;
}

std::string Tenancy::DatasetTenant(std::string_view dataset) const {
  const auto it = config_->dataset_tenants.find(std::string(dataset));
  return it == config_->dataset_tenants.end() ? std::string() : it->second;
}

std::string Tenancy::AgentTenant(std::string_view agent) const {
  return ConfiguredAgentTenant(agent).value_or(std::string());
}

std::optional<std::string> Tenancy::ConfiguredAgentTenant(std::string_view agent) const {
  const auto it = config_->agents.agents.find(std::string(agent));
  if (it == config_->agents.agents.end()) return std::nullopt;
  return it->second.tenant;
}

std::string Tenancy::RequestTenant(const RequestRecord& record) {
  return ::airlock::RequesterTenant(record.requester);
}

std::string Tenancy::RequesterTenant(std::string_view requester_json) {
  if (requester_json.find("\"tenant\"") == std::string_view::npos) return {};
  return ::airlock::RequesterTenant(
      json::parse(requester_json, nullptr, /*allow_exceptions=*/false));
}

json Tenancy::VisibleCatalog(const Principal& principal, json catalog) const {
  if (!enabled()) return catalog;
  const auto list = catalog.find("datasets");
  if (list == catalog.end() || !list->is_array()) return catalog;
  json kept = json::array();
  for (json& entry : *list) {
    // A site's dataset is its site's tenant's; the others are as configured.
    const auto site = entry.find("site");
    const std::string tenant = site != entry.end() && site->is_object()
                                   ? AgentTenant(site->value("agent", ""))
                                   : DatasetTenant(entry.value("name", ""));
    if (!Reaches(principal, tenant)) continue;
    entry["tenant"] = tenant;
    kept.push_back(std::move(entry));
  }
  *list = std::move(kept);
  return catalog;
}

json Tenancy::VisibleAgents(const Principal& principal, json agents) const {
  if (!enabled()) return agents;
  const auto list = agents.find("agents");
  if (list == agents.end() || !list->is_array()) return agents;
  json kept = json::array();
  for (json& entry : *list) {
    const std::string tenant = AgentTenant(entry.value("name", ""));
    if (!Reaches(principal, tenant)) continue;
    entry["tenant"] = tenant;
    kept.push_back(std::move(entry));
  }
  *list = std::move(kept);
  return agents;
}

}  // namespace airlock
