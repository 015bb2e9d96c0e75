// Tenants (KernelConfig::tenants): which tenant a principal, a dataset, a
// site and a request belong to, and what a principal may reach.
//
// Without tenants configured there is one organisation: every principal
// reaches everything, and the admins are access.admin_groups, as before.
// With tenants:
//  - every principal belongs to exactly one tenant (the identity provider's
//    "tenant", else the tenants' subjects and groups), or is refused; only a
//    platform admin (access.admin_groups) may belong to none;
//  - a principal reaches the objects of its own tenant only, a platform
//    admin those of every tenant; what it cannot reach does not exist for it
//    (the API answers 404, as for an unknown id);
//  - a tenant's admins (tenants.<t>.admin_groups) are admins of that tenant
//    only.
//
// Thread-safety: immutable after construction; every method is const.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"
#include "kernel/core/config.h"
#include "kernel/lifecycle/request_record.h"

namespace airlock {

class Tenancy {
 public:
  // `config` outlives the Tenancy.
  explicit Tenancy(const KernelConfig& config) : config_(&config) {}

  bool enabled() const { return !config_->tenants.empty(); }

  // Settles `principal->tenant`. PermissionDenied (the reason says why, never
  // which tenants exist) when it names an unknown tenant, matches several,
  // or matches none and is not a platform admin. Without tenants: Ok, as is.
  Status Assign(Principal* principal) const;

  // In access.admin_groups: every tenant's admin (without tenants: the admin).
  bool IsPlatformAdmin(const Principal& principal) const;
  // An admin of the objects of `tenant`: a platform admin, or (with tenants)
  // one of that tenant's admin_groups when it is the principal's own.
  bool IsAdminOf(const Principal& principal, std::string_view tenant) const;
  // An admin of anything: a platform admin or an admin of its own tenant.
  bool IsAnyAdmin(const Principal& principal) const {
    return IsAdminOf(principal, principal.tenant);
  }
  // Whether `principal` may see objects of `tenant` at all.
  bool Reaches(const Principal& principal, std::string_view tenant) const;

  // The tenant a configured dataset, an agent's site or a request belongs
  // to ("" for none: no tenants, or unknown).
  std::string DatasetTenant(std::string_view dataset) const;
  std::string AgentTenant(std::string_view agent) const;
  // The tenant of an agent the configuration names ("" included); nullopt
  // for an agent it does not name.
  std::optional<std::string> ConfiguredAgentTenant(std::string_view agent) const;
  static std::string RequestTenant(const RequestRecord& record);
  // The same from a stored requester document's text (parsed only when it
  // names a tenant).
  static std::string RequesterTenant(std::string_view requester_json);

  // A tenant as an audit record's "tenant": null for none (what belongs to
  // no tenant, or predates tenants), as TenantAuditTagger writes it.
  static nlohmann::json AuditValue(const std::string& tenant) {
    return tenant.empty() ? nlohmann::json(nullptr) : nlohmann::json(tenant);
  }

  // `catalog` ({"datasets":[...]}, each entry with "tenant") with only the
  // datasets `principal` reaches.
  nlohmann::json VisibleCatalog(const Principal& principal, nlohmann::json catalog) const;
  // `agents` ({"agents":[{"name",...}]}) with only the sites `principal`
  // reaches, each marked with its tenant.
  nlohmann::json VisibleAgents(const Principal& principal, nlohmann::json agents) const;

 private:
  const KernelConfig* config_;
};

}  // namespace airlock
