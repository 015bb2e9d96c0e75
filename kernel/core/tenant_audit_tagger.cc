#include "kernel/core/tenant_audit_tagger.h"

namespace airlock {

using nlohmann::json;

namespace {

std::optional<std::string> StringAt(const json& event, const char* key) {
  const auto it = event.find(key);
  if (it == event.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

// The tenant of the principal a record names ("principal" or "actor").
std::optional<std::string> ActorTenant(const json& event) {
  for (const char* key : {"principal", "actor"}) {
    const auto it = event.find(key);
    if (it == event.end() || !it->is_object()) continue;
    if (auto tenant = StringAt(*it, "tenant")) return tenant;
  }
  return std::nullopt;
}

}  // namespace

TenantAuditTagger::TenantAuditTagger(const Tenancy* tenancy, RequestTenantLookup lookup,
                                     AuditLog* log)
    : tenancy_(tenancy), lookup_(std::move(lookup)), log_(log) {
  log_->set_record_tagger(this);
}

TenantAuditTagger::~TenantAuditTagger() {
  log_->set_record_tagger(nullptr);
}

void TenantAuditTagger::Tag(json& event) const {
  if (!tenancy_->enabled() || event.contains("tenant")) return;
  std::optional<std::string> tenant;
  if (auto id = StringAt(event, "request_id"); id && lookup_) tenant = lookup_(*id);
  if (!tenant) {
    // An agent the configuration does not name (one refused at enrolment)
    // has no site to speak for: the principal or actor does.
    if (auto agent = StringAt(event, "agent")) tenant = tenancy_->ConfiguredAgentTenant(*agent);
  }
  if (!tenant) tenant = ActorTenant(event);
  event["tenant"] = Tenancy::AuditValue(tenant.value_or(""));
}

}  // namespace airlock
