#include "config.h"

#include <algorithm>
#include <initializer_list>
#include <limits>
#include <string_view>
#include <unordered_map>

#include "airlock/cpp/config_read.hpp"
#include "airlock/cpp/scope.hpp"

namespace airlock::policy::rules {
namespace {

std::string Path(const std::string& where, std::string_view key) {
  if (where.empty()) return std::string(key);
  return where + "." + std::string(key);
}

Status CheckObject(const Json& j, const std::string& where) {
  if (j.is_object()) return Status::Ok();
  return Status::InvalidArgument((where.empty() ? std::string("the policy document") : where) +
                                 " must be an object");
}

Status CheckKeys(const Json& j, const std::string& where,
                 std::initializer_list<std::string_view> allowed) {
  return sdk::config_read::KnownKeys(j, allowed, where.empty() ? "the policy document" : where);
}

// Optional list of non-empty strings.
Status ReadNames(const Json& j, std::string_view key, const std::string& where,
                 std::vector<std::string>* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Status::Ok();
  const std::string path = Path(where, key);
  if (!it->is_array()) return Status::InvalidArgument(path + " must be an array of strings");
  for (size_t i = 0; i < it->size(); ++i) {
    const Json& item = (*it)[i];
    if (!item.is_string() || item.get_ref<const std::string&>().empty()) {
      return Status::InvalidArgument(path + "[" + std::to_string(i) +
                                     "] must be a non-empty string");
    }
    out->push_back(item.get<std::string>());
  }
  return Status::Ok();
}

Status ReadInt(const Json& j, std::string_view key, const std::string& where, int64_t minimum,
               std::optional<int64_t>* out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return Status::Ok();
  const std::string path = Path(where, key);
  if (!it->is_number_integer()) return Status::InvalidArgument(path + " must be an integer");
  if (it->is_number_unsigned() &&
      it->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return Status::InvalidArgument(path + " is too large");
  }
  const int64_t value = it->get<int64_t>();
  if (value < minimum) {
    return Status::InvalidArgument(path + " must be >= " + std::to_string(minimum));
  }
  *out = value;
  return Status::Ok();
}

Status ParseSubjects(const Json& j, const std::string& where, SubjectMatcher* out) {
  AIRLOCK_RETURN_IF_ERROR(CheckObject(j, where));
  AIRLOCK_RETURN_IF_ERROR(CheckKeys(j, where, {"users", "groups", "kinds", "tenants"}));
  AIRLOCK_RETURN_IF_ERROR(ReadNames(j, "users", where, &out->users));
  AIRLOCK_RETURN_IF_ERROR(ReadNames(j, "groups", where, &out->groups));
  AIRLOCK_RETURN_IF_ERROR(ReadNames(j, "tenants", where, &out->tenants));
  std::vector<std::string> kinds;
  AIRLOCK_RETURN_IF_ERROR(ReadNames(j, "kinds", where, &kinds));
  for (size_t i = 0; i < kinds.size(); ++i) {
    auto kind = ParsePrincipalKind(kinds[i]);
    if (!kind) {
      return Status::InvalidArgument(Path(where, "kinds") + "[" + std::to_string(i) +
                                     "] must be human, service or agent");
    }
    out->kinds |= 1u << static_cast<unsigned>(*kind);
  }
  return Status::Ok();
}

Status ParseApproval(const Json& j, const std::string& where, ApprovalRequirement* out) {
  AIRLOCK_RETURN_IF_ERROR(CheckObject(j, where));
  AIRLOCK_RETURN_IF_ERROR(CheckKeys(j, where, {"groups", "count", "timeout_seconds"}));
  AIRLOCK_RETURN_IF_ERROR(ReadNames(j, "groups", where, &out->groups));
  if (out->groups.empty()) {
    return Status::InvalidArgument(Path(where, "groups") + " must name at least one group");
  }
  std::optional<int64_t> count, timeout;
  AIRLOCK_RETURN_IF_ERROR(ReadInt(j, "count", where, 1, &count));
  AIRLOCK_RETURN_IF_ERROR(ReadInt(j, "timeout_seconds", where, 0, &timeout));
  out->count = count.value_or(1);
  out->timeout_seconds = timeout.value_or(0);
  return Status::Ok();
}

Status ParseCondition(const Json& j, const std::string& where, RowCondition* out) {
  AIRLOCK_RETURN_IF_ERROR(CheckObject(j, where));
  AIRLOCK_RETURN_IF_ERROR(CheckKeys(j, where, {"column", "op", "value"}));
  auto column = j.find("column");
  if (column == j.end() || !column->is_string() || column->get_ref<const std::string&>().empty()) {
    return Status::InvalidArgument(Path(where, "column") + " must be a non-empty string");
  }
  auto op = j.find("op");
  if (op == j.end() || !op->is_string()) {
    return Status::InvalidArgument(Path(where, "op") + " must be a string");
  }
  if (!RowCondition::ValidOp(op->get_ref<const std::string&>())) {
    return Status::InvalidArgument(Path(where, "op") + " '" + op->get<std::string>() +
                                   "' is unknown (eq ne lt le gt ge in not_in is_null "
                                   "not_null like)");
  }
  // RowCondition::FromJson checks value shapes per op; prefix its message with the path.
  auto parsed = RowCondition::FromJson(j);
  if (!parsed.ok()) return parsed.status().WithContext(where);
  *out = std::move(parsed).value();
  if ((out->op == "in" || out->op == "not_in") &&
      std::any_of(out->value.begin(), out->value.end(),
                  [](const Json& v) { return !v.is_primitive() || v.is_null(); })) {
    return Status::InvalidArgument(Path(where, "value") + " entries must be non-null scalars");
  }
  if (out->op == "like" && !out->value.is_string()) {
    return Status::InvalidArgument(Path(where, "value") + " must be a string pattern");
  }
  return Status::Ok();
}

Status ParseObligation(const Json& j, const std::string& where, DatasetScope* out) {
  AIRLOCK_RETURN_IF_ERROR(CheckObject(j, where));
  AIRLOCK_RETURN_IF_ERROR(CheckKeys(
      j, where, {"columns", "masks", "row_filter", "aggregate_only", "audit_query_text"}));
  if (auto text = j.find("audit_query_text"); text != j.end()) {
    if (!text->is_boolean()) {
      return Status::InvalidArgument(Path(where, "audit_query_text") + " must be true or false");
    }
    out->audit_query_text = text->get<bool>();
  }
  AIRLOCK_RETURN_IF_ERROR(ReadNames(j, "columns", where, &out->columns));
  if (j.contains("columns") && out->columns.empty()) {
    // An empty list would mean "every column" to connectors: refuse the ambiguity.
    return Status::InvalidArgument(Path(where, "columns") +
                                   " must name at least one column (omit it for all columns)");
  }
  if (auto masks = j.find("masks"); masks != j.end() && !masks->is_null()) {
    const std::string path = Path(where, "masks");
    AIRLOCK_RETURN_IF_ERROR(CheckObject(*masks, path));
    for (const auto& [column, function] : masks->items()) {
      const std::string entry = path + "." + column;
      if (!function.is_string()) return Status::InvalidArgument(entry + " must be a string");
      auto parsed = scope::ParseMaskFunction(function.get_ref<const std::string&>());
      if (!parsed.ok()) return parsed.status().WithContext(entry);
      out->masks[column] = function.get<std::string>();
    }
  }
  if (auto filter = j.find("row_filter"); filter != j.end() && !filter->is_null()) {
    const std::string path = Path(where, "row_filter");
    if (!filter->is_array()) return Status::InvalidArgument(path + " must be an array");
    for (size_t i = 0; i < filter->size(); ++i) {
      RowCondition condition;
      AIRLOCK_RETURN_IF_ERROR(
          ParseCondition((*filter)[i], path + "[" + std::to_string(i) + "]", &condition));
      out->row_filter.push_back(std::move(condition));
    }
  }
  if (auto clean_room = j.find("aggregate_only"); clean_room != j.end()) {
    const std::string path = Path(where, "aggregate_only");
    AIRLOCK_RETURN_IF_ERROR(CheckObject(*clean_room, path));
    AIRLOCK_RETURN_IF_ERROR(CheckKeys(
        *clean_room, path, {"min_group_size", "allowed_functions", "dimensions", "metrics"}));
    auto parsed = AggregateOnly::FromJson(*clean_room);
    if (!parsed.ok()) return Status::InvalidArgument(where + "." + parsed.status().message());
    if (parsed->dimensions.empty() && parsed->metrics.empty()) {
      return Status::InvalidArgument(path + " must name dimensions or metrics");
    }
    // What the grant keeps of the dataset bounds what a clean room reads.
    for (const auto* list : {&parsed->dimensions, &parsed->metrics}) {
      for (const std::string& column : *list) {
        if (!out->AllowsColumn(column)) {
          return Status::InvalidArgument(path + " names column '" + column +
                                         "', which the obligation's columns leave out");
        }
      }
    }
    out->aggregate_only = std::move(parsed).value();
  }
  return Status::Ok();
}

Status ParseRule(const Json& j, const std::string& where, ZoneCache* zones, Rule* rule) {
  AIRLOCK_RETURN_IF_ERROR(CheckObject(j, where));
  AIRLOCK_RETURN_IF_ERROR(
      CheckKeys(j, where,
                {"name", "effect", "subjects", "datasets", "tags", "purposes", "max_window_seconds",
                 "purpose_min_length", "approval", "obligations", "description", "when"}));
  auto name = j.find("name");
  if (name == j.end() || !name->is_string() || name->get_ref<const std::string&>().empty()) {
    return Status::InvalidArgument(Path(where, "name") + " must be a non-empty string");
  }
  rule->name = name->get<std::string>();
  if (auto d = j.find("description"); d != j.end() && !d->is_string()) {
    return Status::InvalidArgument(Path(where, "description") + " must be a string");
  }

  auto effect = j.find("effect");
  if (effect == j.end() || !effect->is_string()) {
    return Status::InvalidArgument(Path(where, "effect") + " must be \"allow\" or \"deny\"");
  }
  const std::string& effect_name = effect->get_ref<const std::string&>();
  if (effect_name != "allow" && effect_name != "deny") {
    return Status::InvalidArgument(Path(where, "effect") + " '" + effect_name +
                                   "' is unknown (allow or deny)");
  }
  rule->deny = effect_name == "deny";

  if (auto subjects = j.find("subjects"); subjects != j.end() && !subjects->is_null()) {
    AIRLOCK_RETURN_IF_ERROR(ParseSubjects(*subjects, Path(where, "subjects"), &rule->subjects));
  }
  AIRLOCK_RETURN_IF_ERROR(ReadNames(j, "datasets", where, &rule->datasets));
  AIRLOCK_RETURN_IF_ERROR(ReadNames(j, "tags", where, &rule->tags));
  if (rule->datasets.empty() && rule->tags.empty()) {
    return Status::InvalidArgument(where +
                                   " must name datasets or tags (\"datasets\": [\"*\"] for all)");
  }
  AIRLOCK_RETURN_IF_ERROR(ReadNames(j, "purposes", where, &rule->purposes));
  AIRLOCK_RETURN_IF_ERROR(ReadInt(j, "max_window_seconds", where, 1, &rule->max_window_seconds));
  AIRLOCK_RETURN_IF_ERROR(ReadInt(j, "purpose_min_length", where, 1, &rule->purpose_min_length));
  if (rule->purpose_min_length && *rule->purpose_min_length > kMaxPurposeMinLength) {
    return Status::InvalidArgument(Path(where, "purpose_min_length") +
                                   " must be <= " + std::to_string(kMaxPurposeMinLength));
  }

  if (auto approval = j.find("approval"); approval != j.end() && !approval->is_null()) {
    ApprovalRequirement parsed;
    AIRLOCK_RETURN_IF_ERROR(ParseApproval(*approval, Path(where, "approval"), &parsed));
    rule->approval = std::move(parsed);
  }
  if (auto obligations = j.find("obligations"); obligations != j.end() && !obligations->is_null()) {
    const std::string path = Path(where, "obligations");
    AIRLOCK_RETURN_IF_ERROR(CheckObject(*obligations, path));
    for (const auto& [dataset, scope] : obligations->items()) {
      DatasetScope parsed;
      AIRLOCK_RETURN_IF_ERROR(ParseObligation(scope, path + "." + dataset, &parsed));
      rule->obligations[dataset] = std::move(parsed);
    }
  }
  if (auto when = j.find("when"); when != j.end() && !when->is_null()) {
    TimeWindow window;
    AIRLOCK_RETURN_IF_ERROR(ParseTimeWindow(*when, Path(where, "when"), zones, &window));
    rule->when = std::move(window);
  }
  if (rule->deny) {
    for (const char* key :
         {"approval", "obligations", "max_window_seconds", "purpose_min_length"}) {
      if (j.contains(key)) {
        return Status::InvalidArgument(Path(where, key) + " is not allowed on a deny rule");
      }
    }
  }
  return Status::Ok();
}

}  // namespace

bool SubjectMatcher::Matches(const Principal& principal) const {
  if (kinds != 0 && (kinds & (1u << static_cast<unsigned>(principal.kind))) == 0) return false;
  if (!tenants.empty() &&
      std::find(tenants.begin(), tenants.end(), principal.tenant) == tenants.end()) {
    return false;
  }
  if (users.empty() && groups.empty()) return true;
  if (std::find(users.begin(), users.end(), principal.subject) != users.end()) return true;
  for (const auto& group : groups) {
    if (principal.InGroup(group)) return true;
  }
  return false;
}

bool Rule::PurposeFits(const std::string& purpose) const {
  return purposes.empty() || std::find(purposes.begin(), purposes.end(), purpose) != purposes.end();
}

const DatasetScope* Rule::ObligationsFor(const std::string& dataset) const {
  if (auto it = obligations.find(dataset); it != obligations.end()) return &it->second;
  if (auto it = obligations.find("*"); it != obligations.end()) return &it->second;
  return nullptr;
}

Result<PolicyDocument> ParsePolicy(const Json& document, const std::string& zoneinfo_dir) {
  AIRLOCK_RETURN_IF_ERROR(CheckObject(document, ""));
  AIRLOCK_RETURN_IF_ERROR(
      CheckKeys(document, "", {"version", "default_max_window_seconds", "rules", "description"}));
  PolicyDocument policy;
  std::optional<int64_t> version;
  AIRLOCK_RETURN_IF_ERROR(ReadInt(document, "version", "", 0, &version));
  if (!version) return Status::InvalidArgument("version is required (1)");
  if (*version != 1) return Status::InvalidArgument("version must be 1");
  policy.version = *version;
  std::optional<int64_t> default_window;
  AIRLOCK_RETURN_IF_ERROR(ReadInt(document, "default_max_window_seconds", "", 1, &default_window));
  policy.default_max_window_seconds = default_window.value_or(kDefaultMaxWindowSeconds);

  auto rules = document.find("rules");
  if (rules == document.end()) return Status::InvalidArgument("rules is required");
  if (!rules->is_array()) return Status::InvalidArgument("rules must be an array");
  policy.rules.reserve(rules->size());
  ZoneCache zones(zoneinfo_dir);
  std::unordered_map<std::string, size_t> names;
  for (size_t i = 0; i < rules->size(); ++i) {
    const std::string where = "rules[" + std::to_string(i) + "]";
    Rule rule;
    AIRLOCK_RETURN_IF_ERROR(ParseRule((*rules)[i], where, &zones, &rule));
    // A map, not a scan: 10,000-rule documents must load in linear time.
    if (auto [it, inserted] = names.emplace(rule.name, i); !inserted) {
      return Status::InvalidArgument(where + ".name '" + rule.name + "' duplicates rules[" +
                                     std::to_string(it->second) + "].name");
    }
    policy.rules.push_back(std::move(rule));
  }
  return policy;
}

}  // namespace airlock::policy::rules
