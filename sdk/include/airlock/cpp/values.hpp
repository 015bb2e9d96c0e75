// The value types plugins and the kernel exchange. At the C boundary they
// travel as JSON documents (see docs/sdk.md); these structs are their typed
// C++ form, with strict parsing that names the offending member.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "airlock/cpp/status.hpp"

namespace airlock {

using Json = nlohmann::json;

// ---------------------------------------------------------------------------
// Strict JSON field readers (throw nothing; return Status naming the key).

namespace json_read {

// "<where>.<key> <problem>" as an InvalidArgument.
inline Status Bad(std::string_view where, std::string_view key, std::string_view problem) {
  return Status::InvalidArgument(std::string(where) + "." + std::string(key) + " " +
                                 std::string(problem));
}

// Reads member `key` of `j` when present and not null: `accept` checks its
// type and stores it, or answers false (reported as "must be <type_name>").
// An absent member is an error only when `required`.
template <typename Accept>
Status Member(const Json& j, std::string_view key, bool required, std::string_view where,
              std::string_view type_name, Accept accept) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    return required ? Bad(where, key, "is required") : Status::Ok();
  }
  if (!accept(*it)) return Bad(where, key, std::string("must be ") + std::string(type_name));
  return Status::Ok();
}

inline Status String(const Json& j, std::string_view key, std::string* out, bool required,
                     std::string_view where) {
  return Member(j, key, required, where, "a string", [&](const Json& v) {
    if (!v.is_string()) return false;
    *out = v.get<std::string>();
    return true;
  });
}

inline Status Int(const Json& j, std::string_view key, int64_t* out, bool required,
                  std::string_view where) {
  return Member(j, key, required, where, "an integer", [&](const Json& v) {
    if (!v.is_number_integer()) return false;
    *out = v.get<int64_t>();
    return true;
  });
}

inline Status StringList(const Json& j, std::string_view key, std::vector<std::string>* out,
                         bool required, std::string_view where) {
  return Member(j, key, required, where, "an array of strings", [&](const Json& v) {
    if (!v.is_array()) return false;
    std::vector<std::string> items;
    for (const auto& item : v) {
      if (!item.is_string()) return false;
      items.push_back(item.get<std::string>());
    }
    *out = std::move(items);
    return true;
  });
}

// Parses text as JSON without throwing.
inline Result<Json> Parse(std::string_view text, std::string_view what) {
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::InvalidArgument(std::string(what) + " is not valid JSON");
  return j;
}

}  // namespace json_read

// ---------------------------------------------------------------------------
// Principal: who is asking (identity provider output).

enum class PrincipalKind { kHuman, kService, kAgent };

inline const char* PrincipalKindName(PrincipalKind kind) {
  switch (kind) {
    case PrincipalKind::kHuman:
      return "human";
    case PrincipalKind::kService:
      return "service";
    case PrincipalKind::kAgent:
      return "agent";
  }
  return "human";
}

inline std::optional<PrincipalKind> ParsePrincipalKind(std::string_view name) {
  if (name == "human") return PrincipalKind::kHuman;
  if (name == "service") return PrincipalKind::kService;
  if (name == "agent") return PrincipalKind::kAgent;
  return std::nullopt;
}

struct Principal {
  std::string subject;
  PrincipalKind kind = PrincipalKind::kHuman;
  // The identity source did not say what kind of caller this is ("kind"
  // absent): the kernel decides by the door it came in (`agent` on the MCP
  // endpoint, `human` elsewhere) before anything is recorded.
  bool kind_unsaid = false;
  std::vector<std::string> groups;
  std::string tenant;
  std::string provider;  // filled by the kernel: which identity plugin vouched
  Json attributes = Json::object();

  bool InGroup(std::string_view group) const {
    for (const auto& g : groups) {
      if (g == group) return true;
    }
    return false;
  }

  Json ToJson() const {
    Json j = {{"subject", subject}, {"groups", groups}};
    if (!kind_unsaid) j["kind"] = PrincipalKindName(kind);
    if (!tenant.empty()) j["tenant"] = tenant;
    if (!provider.empty()) j["provider"] = provider;
    if (!attributes.empty()) j["attributes"] = attributes;
    return j;
  }

  static Result<Principal> FromJson(const Json& j) {
    if (!j.is_object()) return Status::InvalidArgument("principal must be a JSON object");
    Principal p;
    AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "subject", &p.subject, true, "principal"));
    if (p.subject.empty()) return Status::InvalidArgument("principal.subject is empty");
    std::string kind = "human";
    AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "kind", &kind, false, "principal"));
    auto parsed = ParsePrincipalKind(kind);
    if (!parsed) {
      return Status::InvalidArgument("principal.kind must be human, service or agent");
    }
    p.kind = *parsed;
    p.kind_unsaid = !j.contains("kind");
    AIRLOCK_RETURN_IF_ERROR(json_read::StringList(j, "groups", &p.groups, false, "principal"));
    AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "tenant", &p.tenant, false, "principal"));
    AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "provider", &p.provider, false, "principal"));
    if (auto it = j.find("attributes"); it != j.end() && it->is_object()) p.attributes = *it;
    return p;
  }
};

// ---------------------------------------------------------------------------
// Scope: what of a dataset may enter the enclave (policy obligations).

// One structured row condition: `column op value`. Connectors compile these to
// parameterised queries; values are never pasted into query text.
struct RowCondition {
  std::string column;
  std::string op;  // eq ne lt le gt ge in not_in is_null not_null like
  Json value;      // scalar, or array for in / not_in, absent for is_null / not_null

  static bool ValidOp(std::string_view op) {
    for (const char* known :
         {"eq", "ne", "lt", "le", "gt", "ge", "in", "not_in", "is_null", "not_null", "like"}) {
      if (op == known) return true;
    }
    return false;
  }

  Json ToJson() const {
    Json j = {{"column", column}, {"op", op}};
    if (!value.is_null()) j["value"] = value;
    return j;
  }

  static Result<RowCondition> FromJson(const Json& j) {
    if (!j.is_object()) return Status::InvalidArgument("row_filter entries must be objects");
    RowCondition c;
    AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "column", &c.column, true, "row_filter"));
    AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "op", &c.op, true, "row_filter"));
    if (!ValidOp(c.op)) return Status::InvalidArgument("row_filter.op '" + c.op + "' is unknown");
    if (auto it = j.find("value"); it != j.end()) c.value = *it;
    const bool needs_value = c.op != "is_null" && c.op != "not_null";
    if (needs_value && c.value.is_null()) {
      return Status::InvalidArgument("row_filter." + c.op + " on '" + c.column + "' needs a value");
    }
    if ((c.op == "in" || c.op == "not_in") && !c.value.is_array()) {
      return Status::InvalidArgument("row_filter." + c.op + " needs an array value");
    }
    if (needs_value && c.op != "in" && c.op != "not_in" && !c.value.is_primitive()) {
      return Status::InvalidArgument("row_filter." + c.op + " needs a scalar value");
    }
    return c;
  }
};

// The clean-room obligation: the grant answers only aggregates the enclave
// builds itself (GROUP BY allowed dimensions, allowed functions over allowed
// metrics, filters on dimensions), and drops every group of fewer than
// `min_group_size` source rows. Free SQL is refused on every transport.
struct AggregateOnly {
  int64_t min_group_size = 1;
  std::vector<std::string> allowed_functions;  // of kFunctions
  std::vector<std::string> dimensions;         // columns to group and filter by
  std::vector<std::string> metrics;            // columns the functions may read

  // The functions an aggregate may use (count counts rows: no column).
  static constexpr std::string_view kFunctions[] = {"count", "count_distinct", "sum", "avg", "min",
                                                    "max"};
  static bool KnownFunction(std::string_view name) {
    for (std::string_view f : kFunctions) {
      if (f == name) return true;
    }
    return false;
  }

  Json ToJson() const {
    return {{"min_group_size", min_group_size},
            {"allowed_functions", allowed_functions},
            {"dimensions", dimensions},
            {"metrics", metrics}};
  }

  static Result<AggregateOnly> FromJson(const Json& j) {
    constexpr std::string_view kWhere = "aggregate_only";
    if (!j.is_object()) return Status::InvalidArgument("aggregate_only must be a JSON object");
    AggregateOnly a;
    AIRLOCK_RETURN_IF_ERROR(json_read::Int(j, "min_group_size", &a.min_group_size, true, kWhere));
    if (a.min_group_size < 1) {
      return Status::InvalidArgument("aggregate_only.min_group_size must be at least 1");
    }
    AIRLOCK_RETURN_IF_ERROR(
        json_read::StringList(j, "allowed_functions", &a.allowed_functions, true, kWhere));
    for (const auto& f : a.allowed_functions) {
      if (!KnownFunction(f)) {
        return Status::InvalidArgument("aggregate_only.allowed_functions: '" + f +
                                       "' is not count, count_distinct, sum, avg, min or max");
      }
    }
    AIRLOCK_RETURN_IF_ERROR(json_read::StringList(j, "dimensions", &a.dimensions, true, kWhere));
    AIRLOCK_RETURN_IF_ERROR(json_read::StringList(j, "metrics", &a.metrics, false, kWhere));
    return a;
  }
};

struct DatasetScope {
  std::vector<std::string> columns;             // empty: all columns
  std::map<std::string, std::string> masks;     // column -> masking function (redact, hash, last4)
  std::vector<RowCondition> row_filter;         // all must hold (AND)
  std::optional<AggregateOnly> aggregate_only;  // set: a clean room
  // The text of every query is kept in the audit (investigators see what
  // was read); off by default, and the grant says so when on.
  bool audit_query_text = false;

  bool AllowsColumn(std::string_view column) const {
    if (columns.empty()) return true;
    for (const auto& c : columns) {
      if (c == column) return true;
    }
    return false;
  }

  Json ToJson() const {
    Json filter = Json::array();
    for (const auto& c : row_filter) filter.push_back(c.ToJson());
    Json j = {{"columns", columns}, {"masks", masks}, {"row_filter", filter}};
    if (aggregate_only) j["aggregate_only"] = aggregate_only->ToJson();
    if (audit_query_text) j["audit_query_text"] = true;
    return j;
  }

  static Result<DatasetScope> FromJson(const Json& j) {
    DatasetScope s;
    if (j.is_null()) return s;
    if (!j.is_object()) return Status::InvalidArgument("scope must be a JSON object");
    AIRLOCK_RETURN_IF_ERROR(json_read::StringList(j, "columns", &s.columns, false, "scope"));
    if (auto it = j.find("masks"); it != j.end() && !it->is_null()) {
      if (!it->is_object()) return Status::InvalidArgument("scope.masks must be an object");
      for (const auto& [column, fn] : it->items()) {
        if (!fn.is_string()) return Status::InvalidArgument("scope.masks values must be strings");
        s.masks[column] = fn.get<std::string>();
      }
    }
    if (auto it = j.find("row_filter"); it != j.end() && !it->is_null()) {
      if (!it->is_array()) return Status::InvalidArgument("scope.row_filter must be an array");
      for (const auto& c : *it) {
        AIRLOCK_ASSIGN_OR_RETURN(auto cond, RowCondition::FromJson(c));
        s.row_filter.push_back(std::move(cond));
      }
    }
    if (auto it = j.find("aggregate_only"); it != j.end() && !it->is_null()) {
      AIRLOCK_ASSIGN_OR_RETURN(auto aggregate, AggregateOnly::FromJson(*it));
      s.aggregate_only = std::move(aggregate);
    }
    if (auto it = j.find("audit_query_text"); it != j.end() && !it->is_null()) {
      if (!it->is_boolean())
        return Status::InvalidArgument("scope.audit_query_text must be a boolean");
      s.audit_query_text = it->get<bool>();
    }
    return s;
  }
};

// ---------------------------------------------------------------------------
// Catalog metadata and the request.

struct ColumnInfo {
  std::string name;
  std::string type;  // Arrow-ish logical type name: int64, float64, utf8, bool, date32, ...
};

struct DatasetInfo {
  std::string name;
  std::string connector;  // connector instance name in the configuration
  std::string object;     // source object (file, table, collection)
  std::string description;
  std::vector<std::string> tags;
  std::vector<ColumnInfo> columns;
  // How many rows the source holds, where the connector can tell cheaply
  // (Describe); -1 when it cannot. Written to JSON only when known.
  int64_t rows = -1;

  Json ToJson() const {
    Json cols = Json::array();
    for (const auto& c : columns) cols.push_back({{"name", c.name}, {"type", c.type}});
    Json out = {{"name", name},     {"connector", connector},
                {"object", object}, {"description", description},
                {"tags", tags},     {"columns", cols}};
    if (rows >= 0) out["rows"] = rows;
    return out;
  }

  static Result<DatasetInfo> FromJson(const Json& j) {
    if (!j.is_object()) return Status::InvalidArgument("dataset must be a JSON object");
    DatasetInfo d;
    AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "name", &d.name, true, "dataset"));
    AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "connector", &d.connector, false, "dataset"));
    AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "object", &d.object, false, "dataset"));
    AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "description", &d.description, false, "dataset"));
    AIRLOCK_RETURN_IF_ERROR(json_read::StringList(j, "tags", &d.tags, false, "dataset"));
    if (auto it = j.find("columns"); it != j.end() && it->is_array()) {
      for (const auto& c : *it) {
        ColumnInfo col;
        AIRLOCK_RETURN_IF_ERROR(json_read::String(c, "name", &col.name, true, "dataset.columns"));
        AIRLOCK_RETURN_IF_ERROR(json_read::String(c, "type", &col.type, false, "dataset.columns"));
        d.columns.push_back(std::move(col));
      }
    }
    if (auto it = j.find("rows"); it != j.end()) {
      if (!it->is_number_integer() || it->get<int64_t>() < 0) {
        return Status::InvalidArgument("dataset.rows must be a non-negative integer");
      }
      d.rows = it->get<int64_t>();
    }
    return d;
  }
};

// What the requester asked for (the kernel validates it before policy sees it).
struct AccessRequest {
  std::string id;
  std::vector<std::string> datasets;
  int64_t window_seconds = 3600;
  std::string purpose;
  std::string mode = "interactive";  // interactive (tunnel) | job (queries run, results kept)
  std::vector<std::string> queries;  // job mode only
  // When the window may start at the earliest (Unix seconds): a scheduled
  // start; 0 when the window starts once approved.
  int64_t not_before = 0;
  // Per dataset, the only columns asked for; a dataset not named here is
  // asked for whole (as far as the policy's obligations allow).
  std::map<std::string, std::vector<std::string>> columns;

  Json ToJson() const {
    Json j = {{"id", id},
              {"datasets", datasets},
              {"window_seconds", window_seconds},
              {"purpose", purpose},
              {"mode", mode}};
    if (!queries.empty()) j["queries"] = queries;
    if (not_before != 0) j["not_before"] = not_before;
    if (!columns.empty()) j["columns"] = columns;
    return j;
  }

  static Result<AccessRequest> FromJson(const Json& j) {
    if (!j.is_object()) return Status::InvalidArgument("request must be a JSON object");
    AccessRequest r;
    AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "id", &r.id, false, "request"));
    AIRLOCK_RETURN_IF_ERROR(json_read::StringList(j, "datasets", &r.datasets, true, "request"));
    AIRLOCK_RETURN_IF_ERROR(
        json_read::Int(j, "window_seconds", &r.window_seconds, false, "request"));
    AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "purpose", &r.purpose, false, "request"));
    AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "mode", &r.mode, false, "request"));
    AIRLOCK_RETURN_IF_ERROR(json_read::StringList(j, "queries", &r.queries, false, "request"));
    AIRLOCK_RETURN_IF_ERROR(json_read::Int(j, "not_before", &r.not_before, false, "request"));
    if (auto it = j.find("columns"); it != j.end() && !it->is_null()) {
      if (!it->is_object()) {
        return json_read::Bad("request", "columns",
                              "must be an object of dataset names to arrays of column names");
      }
      for (const auto& [dataset, names] : it->items()) {
        AIRLOCK_RETURN_IF_ERROR(
            json_read::StringList(*it, dataset, &r.columns[dataset], true, "request.columns"));
      }
    }
    return r;
  }
};

// ---------------------------------------------------------------------------
// Decision: what a policy backend answers.

enum class Effect { kAllow, kDeny, kNeedsApproval };

inline const char* EffectName(Effect e) {
  switch (e) {
    case Effect::kAllow:
      return "allow";
    case Effect::kDeny:
      return "deny";
    case Effect::kNeedsApproval:
      return "needs_approval";
  }
  return "deny";
}

struct ApprovalRequirement {
  std::vector<std::string> groups;  // an approver must be in one of these
  int64_t count = 1;                // distinct approvers needed
  int64_t timeout_seconds = 0;      // how long the request may wait (0: kernel default)
};

struct Decision {
  Effect effect = Effect::kDeny;
  std::string reason;
  std::string rule;                // which rule decided
  int64_t max_window_seconds = 0;  // 0: no limit beyond the kernel's
  ApprovalRequirement approval;
  std::map<std::string, DatasetScope> obligations;  // per dataset
  // The ask must state why (its purpose) in at least this many characters
  // (Unicode code points, surrounding blanks not counted); 0: no minimum.
  // The kernel refuses a shorter ask as bad input, recording nothing.
  int64_t purpose_min_length = 0;

  Json ToJson() const {
    Json obligations_json = Json::object();
    for (const auto& [name, scope] : obligations) obligations_json[name] = scope.ToJson();
    Json j = {{"effect", EffectName(effect)},
              {"reason", reason},
              {"rule", rule},
              {"max_window_seconds", max_window_seconds},
              {"obligations", obligations_json}};
    if (purpose_min_length > 0) j["purpose_min_length"] = purpose_min_length;
    if (effect == Effect::kNeedsApproval) {
      j["approval"] = {{"groups", approval.groups},
                       {"count", approval.count},
                       {"timeout_seconds", approval.timeout_seconds}};
    }
    return j;
  }

  static Result<Decision> FromJson(const Json& j) {
    if (!j.is_object()) return Status::InvalidArgument("decision must be a JSON object");
    Decision d;
    std::string effect;
    AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "effect", &effect, true, "decision"));
    if (effect == "allow") {
      d.effect = Effect::kAllow;
    } else if (effect == "deny") {
      d.effect = Effect::kDeny;
    } else if (effect == "needs_approval") {
      d.effect = Effect::kNeedsApproval;
    } else {
      return Status::InvalidArgument("decision.effect must be allow, deny or needs_approval");
    }
    AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "reason", &d.reason, false, "decision"));
    AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "rule", &d.rule, false, "decision"));
    AIRLOCK_RETURN_IF_ERROR(
        json_read::Int(j, "max_window_seconds", &d.max_window_seconds, false, "decision"));
    if (d.max_window_seconds < 0) {
      return Status::InvalidArgument("decision.max_window_seconds must not be negative");
    }
    AIRLOCK_RETURN_IF_ERROR(
        json_read::Int(j, "purpose_min_length", &d.purpose_min_length, false, "decision"));
    if (d.purpose_min_length < 0 || d.purpose_min_length > 4096) {
      return Status::InvalidArgument("decision.purpose_min_length must be within [0, 4096]");
    }
    if (auto it = j.find("approval"); it != j.end() && !it->is_null()) {
      if (!it->is_object()) return Status::InvalidArgument("decision.approval must be an object");
      AIRLOCK_RETURN_IF_ERROR(
          json_read::StringList(*it, "groups", &d.approval.groups, false, "decision.approval"));
      AIRLOCK_RETURN_IF_ERROR(
          json_read::Int(*it, "count", &d.approval.count, false, "decision.approval"));
      AIRLOCK_RETURN_IF_ERROR(json_read::Int(*it, "timeout_seconds", &d.approval.timeout_seconds,
                                             false, "decision.approval"));
      if (d.approval.count < 1) {
        return Status::InvalidArgument("decision.approval.count must be at least 1");
      }
    }
    if (d.effect == Effect::kNeedsApproval && d.approval.groups.empty()) {
      return Status::InvalidArgument("decision needs_approval without approver groups");
    }
    if (auto it = j.find("obligations"); it != j.end() && !it->is_null()) {
      if (!it->is_object())
        return Status::InvalidArgument("decision.obligations must be an object");
      for (const auto& [name, scope] : it->items()) {
        AIRLOCK_ASSIGN_OR_RETURN(auto parsed, DatasetScope::FromJson(scope));
        d.obligations[name] = std::move(parsed);
      }
    }
    return d;
  }
};

// The document a policy backend evaluates.
struct PolicyInput {
  Principal principal;
  AccessRequest request;
  std::vector<DatasetInfo> datasets;
  int64_t now_unix_seconds = 0;

  Json ToJson() const {
    Json ds = Json::array();
    for (const auto& d : datasets) ds.push_back(d.ToJson());
    return {{"principal", principal.ToJson()},
            {"request", request.ToJson()},
            {"datasets", ds},
            {"now", now_unix_seconds}};
  }

  static Result<PolicyInput> FromJson(const Json& j) {
    if (!j.is_object()) return Status::InvalidArgument("policy input must be a JSON object");
    PolicyInput in;
    AIRLOCK_ASSIGN_OR_RETURN(in.principal, Principal::FromJson(j.value("principal", Json())));
    AIRLOCK_ASSIGN_OR_RETURN(in.request, AccessRequest::FromJson(j.value("request", Json())));
    if (auto it = j.find("datasets"); it != j.end() && it->is_array()) {
      for (const auto& d : *it) {
        AIRLOCK_ASSIGN_OR_RETURN(auto info, DatasetInfo::FromJson(d));
        in.datasets.push_back(std::move(info));
      }
    }
    AIRLOCK_RETURN_IF_ERROR(json_read::Int(j, "now", &in.now_unix_seconds, false, "input"));
    return in;
  }
};

// What a connector is asked to pull.
struct PullSpec {
  std::string dataset;  // the catalog name (also the table name in the enclave)
  std::string object;   // the source object (file, table, collection)
  DatasetScope scope;

  Json ToJson() const {
    return {{"dataset", dataset}, {"object", object}, {"scope", scope.ToJson()}};
  }

  static Result<PullSpec> FromJson(const Json& j) {
    if (!j.is_object()) return Status::InvalidArgument("pull spec must be a JSON object");
    PullSpec p;
    AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "dataset", &p.dataset, true, "pull"));
    AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "object", &p.object, false, "pull"));
    if (p.object.empty()) p.object = p.dataset;
    AIRLOCK_ASSIGN_OR_RETURN(p.scope, DatasetScope::FromJson(j.value("scope", Json())));
    return p;
  }
};

// A connector's description of what it can serve.
struct Catalog {
  std::vector<DatasetInfo> datasets;

  Json ToJson() const {
    Json ds = Json::array();
    for (const auto& d : datasets) ds.push_back(d.ToJson());
    return {{"datasets", ds}};
  }

  static Result<Catalog> FromJson(const Json& j) {
    if (!j.is_object()) return Status::InvalidArgument("catalog must be a JSON object");
    Catalog c;
    if (auto it = j.find("datasets"); it != j.end() && it->is_array()) {
      for (const auto& d : *it) {
        AIRLOCK_ASSIGN_OR_RETURN(auto info, DatasetInfo::FromJson(d));
        c.datasets.push_back(std::move(info));
      }
    }
    return c;
  }
};

}  // namespace airlock
