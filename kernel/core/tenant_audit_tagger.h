// Puts "tenant" on every audit record when tenants are configured: the
// tenant of the request the record is about, else of the site (its
// "agent", when configured), else of the principal who acted; null for what belongs to the
// whole kernel (its start, a refused credential, a policy reload). Records
// that already say their tenant keep it. Without tenants records are left
// as they are.
//
// Thread-safety: Tag may run on any thread concurrently.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "kernel/audit/audit_log.h"
#include "kernel/core/tenancy.h"

namespace airlock {

class TenantAuditTagger : public AuditRecordTagger {
 public:
  // The tenant of request `id` ("" for none); nullopt when it is unknown.
  using RequestTenantLookup = std::function<std::optional<std::string>(const std::string& id)>;

  // Tags every record appended to `log` until destroyed. `tenancy` and
  // `log` outlive the tagger; `lookup` reads the state store.
  TenantAuditTagger(const Tenancy* tenancy, RequestTenantLookup lookup, AuditLog* log);
  ~TenantAuditTagger() override;
  TenantAuditTagger(const TenantAuditTagger&) = delete;
  TenantAuditTagger& operator=(const TenantAuditTagger&) = delete;

  void Tag(nlohmann::json& event) const override;

 private:
  const Tenancy* tenancy_;
  RequestTenantLookup lookup_;
  AuditLog* log_;
};

}  // namespace airlock
