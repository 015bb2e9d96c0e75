#include "config.h"

#include <set>

#include "airlock/cpp/config_read.hpp"

namespace airlock::identity::mtls {
namespace {

constexpr std::string_view kWhere = "config";

Status ParseKind(const Json& j, const std::string& where, std::optional<PrincipalKind>* out) {
  std::string name;
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "kind", &name, false, where));
  if (!j.contains("kind")) return Status::Ok();
  auto kind = ParsePrincipalKind(name);
  if (!kind) return Status::InvalidArgument(where + ".kind must be human, service or agent");
  *out = *kind;
  return Status::Ok();
}

Status CheckGroups(const std::vector<std::string>& groups, const std::string& where) {
  for (const auto& g : groups) {
    if (g.empty()) return Status::InvalidArgument(where + ".groups must not hold empty names");
  }
  return Status::Ok();
}

}  // namespace

bool GlobMatch(std::string_view pattern, std::string_view text) {
  // Greedy with one backtrack point: O(|pattern| * |text|) worst case, no recursion.
  size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

Result<MtlsConfig> ParseConfig(const Json& j, const sdk::Host& host) {
  if (!j.is_object()) return Status::InvalidArgument("configuration must be a JSON object");
  static const std::set<std::string, std::less<>> kKnown = {"ca_file",
                                                            "subject_from",
                                                            "subject_prefix",
                                                            "kind",
                                                            "groups",
                                                            "tenant",
                                                            "mappings",
                                                            "require_client_auth_eku",
                                                            "max_chain_certificates"};
  AIRLOCK_RETURN_IF_ERROR(sdk::config_read::KnownKeys(j, kKnown, "configuration"));
  MtlsConfig c;
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "ca_file", &c.ca_file, true, kWhere));
  if (c.ca_file.empty()) return Status::InvalidArgument("ca_file must not be empty");
  c.ca_file = host.ResolvePath(c.ca_file);

  std::string from = "cn";
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "subject_from", &from, false, kWhere));
  if (from == "cn") {
    c.subject_from = SubjectSource::kCommonName;
  } else if (from == "san_uri") {
    c.subject_from = SubjectSource::kSanUri;
  } else if (from == "san_dns") {
    c.subject_from = SubjectSource::kSanDns;
  } else if (from == "san_email") {
    c.subject_from = SubjectSource::kSanEmail;
  } else {
    return Status::InvalidArgument("subject_from must be cn, san_uri, san_dns or san_email");
  }
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "subject_prefix", &c.subject_prefix, false, kWhere));

  std::optional<PrincipalKind> kind;
  AIRLOCK_RETURN_IF_ERROR(ParseKind(j, "config", &kind));
  if (kind) c.kind = *kind;
  AIRLOCK_RETURN_IF_ERROR(json_read::StringList(j, "groups", &c.groups, false, kWhere));
  AIRLOCK_RETURN_IF_ERROR(CheckGroups(c.groups, "config"));
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "tenant", &c.tenant, false, kWhere));

  if (auto it = j.find("require_client_auth_eku"); it != j.end()) {
    if (!it->is_boolean()) {
      return Status::InvalidArgument("require_client_auth_eku must be a boolean");
    }
    c.require_client_auth_eku = it->get<bool>();
  }
  int64_t max_chain = static_cast<int64_t>(c.max_chain_certificates);
  AIRLOCK_RETURN_IF_ERROR(json_read::Int(j, "max_chain_certificates", &max_chain, false, kWhere));
  if (max_chain < 1 || max_chain > 32) {
    return Status::InvalidArgument("max_chain_certificates must be between 1 and 32");
  }
  c.max_chain_certificates = static_cast<size_t>(max_chain);

  if (auto it = j.find("mappings"); it != j.end()) {
    if (!it->is_array()) return Status::InvalidArgument("mappings must be an array");
    for (size_t i = 0; i < it->size(); ++i) {
      const Json& m = (*it)[i];
      const std::string where = "mappings[" + std::to_string(i) + "]";
      if (!m.is_object()) return Status::InvalidArgument(where + " must be an object");
      AIRLOCK_RETURN_IF_ERROR(
          sdk::config_read::KnownKeys(m, {"subject", "kind", "groups", "tenant"}, where));
      SubjectMapping mapping;
      AIRLOCK_RETURN_IF_ERROR(json_read::String(m, "subject", &mapping.pattern, true, where));
      if (mapping.pattern.empty()) {
        return Status::InvalidArgument(where + ".subject must not be empty");
      }
      AIRLOCK_RETURN_IF_ERROR(ParseKind(m, where, &mapping.kind));
      if (m.contains("groups")) {
        std::vector<std::string> groups;
        AIRLOCK_RETURN_IF_ERROR(json_read::StringList(m, "groups", &groups, true, where));
        AIRLOCK_RETURN_IF_ERROR(CheckGroups(groups, where));
        mapping.groups = std::move(groups);
      }
      if (m.contains("tenant")) {
        std::string tenant;
        AIRLOCK_RETURN_IF_ERROR(json_read::String(m, "tenant", &tenant, true, where));
        mapping.tenant = std::move(tenant);
      }
      c.mappings.push_back(std::move(mapping));
    }
  }
  return c;
}

}  // namespace airlock::identity::mtls
