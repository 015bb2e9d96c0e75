#include "claims.h"

#include "reasons.h"

namespace airlock::identity::oidc_jwt {
namespace {

constexpr size_t kMaxSubjectBytes = 1024;
constexpr size_t kMaxGroups = 256;
constexpr size_t kMaxGroupBytes = 256;
constexpr size_t kMaxTenantBytes = 256;

}  // namespace

const Json* FindClaim(const Json& payload, std::string_view path) {
  if (!payload.is_object() || path.empty()) return nullptr;
  if (auto it = payload.find(path); it != payload.end()) return &*it;
  const Json* node = &payload;
  while (!path.empty()) {
    const size_t dot = path.find('.');
    const std::string_view part = path.substr(0, dot);
    if (!node->is_object()) return nullptr;
    auto it = node->find(part);
    if (it == node->end()) return nullptr;
    node = &*it;
    if (dot == std::string_view::npos) break;
    path.remove_prefix(dot + 1);
  }
  return node;
}

Result<Principal> MapPrincipal(const Json& payload, const ClaimMapping& m) {
  Principal p;
  const Json* subject = FindClaim(payload, m.subject_claim);
  if (subject == nullptr || subject->is_null()) {
    return Refuse(kMissingClaim, "token has no " + m.subject_claim + " claim");
  }
  if (!subject->is_string() || subject->get_ref<const std::string&>().empty()) {
    return Refuse(kBadClaim, m.subject_claim + " must be a non-empty string");
  }
  p.subject = subject->get<std::string>();
  if (p.subject.size() > kMaxSubjectBytes) {
    return Refuse(kBadClaim,
                  m.subject_claim + " exceeds " + std::to_string(kMaxSubjectBytes) + " bytes");
  }

  if (!m.groups_claim.empty()) {
    const Json* groups = FindClaim(payload, m.groups_claim);
    if (groups != nullptr && !groups->is_null()) {
      if (groups->is_string()) {
        p.groups.push_back(groups->get<std::string>());
      } else if (groups->is_array()) {
        if (groups->size() > kMaxGroups) {
          return Refuse(kBadClaim, m.groups_claim + " holds more than " +
                                       std::to_string(kMaxGroups) + " entries");
        }
        for (const auto& g : *groups) {
          if (!g.is_string()) return Refuse(kBadClaim, m.groups_claim + " must hold strings");
          p.groups.push_back(g.get<std::string>());
        }
      } else {
        return Refuse(kBadClaim, m.groups_claim + " must be a string or an array of strings");
      }
      for (const auto& g : p.groups) {
        if (g.empty() || g.size() > kMaxGroupBytes) {
          return Refuse(kBadClaim, m.groups_claim + " entries must be 1.." +
                                       std::to_string(kMaxGroupBytes) + " bytes");
        }
      }
    }
  }

  p.kind = m.kind;
  if (!m.kind_claim.empty()) {
    const Json* kind = FindClaim(payload, m.kind_claim);
    if (kind != nullptr && !kind->is_null()) {
      if (!kind->is_string()) return Refuse(kBadClaim, m.kind_claim + " must be a string");
      const std::string& value = kind->get_ref<const std::string&>();
      if (!m.kind_map.empty()) {
        auto it = m.kind_map.find(value);
        if (it == m.kind_map.end()) {
          return Refuse(kBadClaim, m.kind_claim + " value is not in kind_map");
        }
        p.kind = it->second;
      } else {
        auto parsed = ParsePrincipalKind(value);
        if (!parsed) return Refuse(kBadClaim, m.kind_claim + " must be human, service or agent");
        p.kind = *parsed;
      }
    }
  }

  p.tenant = m.tenant;
  if (!m.tenant_claim.empty()) {
    const Json* tenant = FindClaim(payload, m.tenant_claim);
    if (tenant != nullptr && !tenant->is_null()) {
      if (!tenant->is_string()) return Refuse(kBadClaim, m.tenant_claim + " must be a string");
      p.tenant = tenant->get<std::string>();
      if (p.tenant.size() > kMaxTenantBytes) {
        return Refuse(kBadClaim,
                      m.tenant_claim + " exceeds " + std::to_string(kMaxTenantBytes) + " bytes");
      }
    }
  }
  return p;
}

}  // namespace airlock::identity::oidc_jwt
