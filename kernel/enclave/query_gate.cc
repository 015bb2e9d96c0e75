#include "kernel/enclave/query_gate.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <set>

#include "kernel/common/strict_json.h"

namespace airlock::enclave {
namespace {

using nlohmann::json;

constexpr size_t kMaxDimensions = 16;
constexpr size_t kMaxMetrics = 16;
constexpr size_t kMaxFilters = 16;
constexpr size_t kMaxInValues = 1000;
constexpr size_t kMaxNameBytes = 128;

const std::set<std::string, std::less<>> kFilterOps = {"eq", "ne", "lt", "le", "gt", "ge", "in"};

Status Malformed(const std::string& what) {
  return Status::InvalidArgument("aggregate call: " + what);
}

bool Contains(const std::vector<std::string>& list, std::string_view value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

std::string Joined(const std::vector<std::string>& list) {
  if (list.empty()) return "none";
  std::string out;
  for (const auto& item : list) out += (out.empty() ? "" : ", ") + item;
  return out;
}

// "name", with inner quotes doubled: an identifier SQLite reads as written.
std::string QuoteIdentifier(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    out += c;
    if (c == '"') out += '"';
  }
  return out + "\"";
}

Result<std::string> ColumnName(const json& value, const std::string& where) {
  if (!value.is_string() || value.get_ref<const std::string&>().empty() ||
      value.get_ref<const std::string&>().size() > kMaxNameBytes ||
      value.get_ref<const std::string&>().find('\0') != std::string::npos) {
    return Malformed(where + " must be a column name");
  }
  return value.get<std::string>();
}

// A filter value as an SQL literal the enclave writes itself.
Result<std::string> Literal(const json& value, const std::string& where) {
  if (value.is_boolean()) return std::string(value.get<bool>() ? "1" : "0");
  if (value.is_number_integer()) {
    return value.is_number_unsigned() ? std::to_string(value.get<uint64_t>())
                                      : std::to_string(value.get<int64_t>());
  }
  if (value.is_number_float()) {
    const double v = value.get<double>();
    if (!std::isfinite(v)) return Malformed(where + " must be a finite number");
    char buf[32];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    if (ec != std::errc()) return Malformed(where + " is not a number SQL can hold");
    return std::string(buf, end);
  }
  if (value.is_string()) {
    const std::string& text = value.get_ref<const std::string&>();
    if (text.find('\0') != std::string::npos) return Malformed(where + " holds a NUL byte");
    std::string out = "'";
    for (char c : text) {
      out += c;
      if (c == '\'') out += '\'';
    }
    return out + "'";
  }
  return Malformed(where + " must be a string, a number or a boolean");
}

Status OnlyKeys(const json& object, const std::string& where,
                std::initializer_list<std::string_view> keys) {
  for (const auto& [key, value] : object.items()) {
    if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
      return Malformed(where + " has unknown member '" + key + "'");
    }
  }
  return Status::Ok();
}

const json* ArrayMember(const json& call, const char* key, size_t max_items, Status* error) {
  auto it = call.find(key);
  if (it == call.end()) return nullptr;
  if (!it->is_array() || it->size() > max_items) {
    *error =
        Malformed(std::string(key) + " must be an array of at most " + std::to_string(max_items));
    return nullptr;
  }
  return &*it;
}

}  // namespace

bool IsAggregateCall(std::string_view text) {
  const size_t start = text.find_first_not_of(" \t\r\n");
  if (start == std::string_view::npos) return false;
  text.remove_prefix(start);
  if (text.size() <= kAggregateKeyword.size()) return false;
  for (size_t i = 0; i < kAggregateKeyword.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>(text[i])) != kAggregateKeyword[i]) return false;
  }
  const char next = text[kAggregateKeyword.size()];
  return next == ' ' || next == '\t' || next == '\r' || next == '\n' || next == '{';
}

QueryGate::QueryGate(const std::vector<DatasetSpec>& datasets) {
  for (const DatasetSpec& ds : datasets) {
    tables_.push_back(ds.name);
    if (ds.pull.scope.aggregate_only) clean_rooms_[ds.name] = *ds.pull.scope.aggregate_only;
  }
}

Result<std::string> QueryGate::Admit(std::string_view text) const {
  if (IsAggregateCall(text)) {
    text.remove_prefix(text.find_first_not_of(" \t\r\n") + kAggregateKeyword.size());
    return BuildAggregate(text);
  }
  if (clean_rooms_.empty()) return std::string(text);
  std::string rooms;
  for (const auto& [table, rules] : clean_rooms_) {
    rooms += (rooms.empty() ? "" : ", ") + table + " (groups of at least " +
             std::to_string(rules.min_group_size) + " rows)";
  }
  return Status::PermissionDenied(
      "free SQL is refused: this grant is aggregate-only (the policy's aggregate_only obligation "
      "on " +
      rooms +
      "); ask with an aggregate call: the MCP tool aggregate, or the statement AGGREGATE "
      "{\"dataset\": ..., \"dimensions\": [...], \"metrics\": [{\"function\": ..., \"column\": "
      "...}], \"filters\": [...]}");
}

void QueryGate::Describe(json& tables) const {
  for (json& table : tables) {
    auto room = clean_rooms_.find(table.value("name", ""));
    if (room != clean_rooms_.end()) table["aggregate_only"] = room->second.ToJson();
  }
}

Result<std::string> QueryGate::BuildAggregate(std::string_view text) const {
  const json call = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (call.is_discarded() || !call.is_object()) {
    return Malformed("AGGREGATE must be followed by one JSON object");
  }
  AIRLOCK_RETURN_IF_ERROR(
      OnlyKeys(call, "the call", {"dataset", "dimensions", "metrics", "filters"}));
  AIRLOCK_ASSIGN_OR_RETURN(const std::string dataset,
                           ColumnName(call.value("dataset", json()), "dataset"));
  if (!Contains(tables_, dataset)) {
    return Status::NotFound("aggregate call: no table '" + dataset + "' in this enclave (" +
                            Joined(tables_) + ")");
  }
  const auto room_it = clean_rooms_.find(dataset);
  const AggregateOnly* room = room_it == clean_rooms_.end() ? nullptr : &room_it->second;
  const auto refuse = [&](const std::string& what) {
    return Status::PermissionDenied("aggregate call: " + what +
                                    " (the policy's aggregate_only "
                                    "obligation on " +
                                    dataset + ")");
  };

  Status error;
  std::vector<std::string> select, group;
  std::set<std::string> names;
  if (const json* dims = ArrayMember(call, "dimensions", kMaxDimensions, &error)) {
    for (size_t i = 0; i < dims->size(); ++i) {
      AIRLOCK_ASSIGN_OR_RETURN(std::string column,
                               ColumnName((*dims)[i], "dimensions[" + std::to_string(i) + "]"));
      if (room != nullptr && !Contains(room->dimensions, column)) {
        return refuse("'" + column + "' is not a dimension; the dimensions are " +
                      Joined(room->dimensions));
      }
      if (!names.insert(column).second) return Malformed("dimension '" + column + "' repeats");
      select.push_back(QuoteIdentifier(column));
      group.push_back(QuoteIdentifier(column));
    }
  }
  AIRLOCK_RETURN_IF_ERROR(error);

  const json* metrics = ArrayMember(call, "metrics", kMaxMetrics, &error);
  AIRLOCK_RETURN_IF_ERROR(error);
  if (metrics == nullptr || metrics->empty()) return Malformed("metrics must name at least one");
  for (size_t i = 0; i < metrics->size(); ++i) {
    const std::string where = "metrics[" + std::to_string(i) + "]";
    const json& metric = (*metrics)[i];
    if (!metric.is_object()) return Malformed(where + " must be an object");
    AIRLOCK_RETURN_IF_ERROR(OnlyKeys(metric, where, {"function", "column"}));
    const std::string function = StringMember(metric, "function");
    if (!AggregateOnly::KnownFunction(function)) {
      return Malformed(where + ".function must be count, count_distinct, sum, avg, min or max");
    }
    if (room != nullptr && !Contains(room->allowed_functions, function)) {
      return refuse("function " + function + " is not allowed; the allowed functions are " +
                    Joined(room->allowed_functions));
    }
    std::string expression, name;
    if (function == "count" && !metric.contains("column")) {
      expression = "COUNT(*)";
      name = "count";
    } else {
      AIRLOCK_ASSIGN_OR_RETURN(std::string column,
                               ColumnName(metric.value("column", json()), where + ".column"));
      if (room != nullptr && !Contains(room->metrics, column)) {
        return refuse("'" + column + "' is not a metric; the metrics are " + Joined(room->metrics));
      }
      std::string sql_function = function == "count_distinct" ? "COUNT" : function;
      for (char& c : sql_function)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      expression = sql_function + (function == "count_distinct" ? "(DISTINCT " : "(") +
                   QuoteIdentifier(column) + ")";
      name = function + "_" + column;
    }
    if (!names.insert(name).second) return Malformed("answer column '" + name + "' repeats");
    select.push_back(expression + " AS " + QuoteIdentifier(name));
  }

  std::vector<std::string> conditions;
  if (const json* filters = ArrayMember(call, "filters", kMaxFilters, &error)) {
    for (size_t i = 0; i < filters->size(); ++i) {
      const std::string where = "filters[" + std::to_string(i) + "]";
      const json& filter = (*filters)[i];
      if (!filter.is_object()) return Malformed(where + " must be an object");
      AIRLOCK_RETURN_IF_ERROR(OnlyKeys(filter, where, {"column", "op", "value"}));
      AIRLOCK_ASSIGN_OR_RETURN(std::string column,
                               ColumnName(filter.value("column", json()), where + ".column"));
      if (room != nullptr && !Contains(room->dimensions, column)) {
        return refuse("filters may name dimensions only, not '" + column +
                      "'; the dimensions are " + Joined(room->dimensions));
      }
      const std::string op = StringMember(filter, "op");
      if (!kFilterOps.count(op))
        return Malformed(where + ".op must be eq, ne, lt, le, gt, ge or in");
      const json value = filter.value("value", json());
      std::string rendered;
      if (op == "in") {
        if (!value.is_array() || value.empty() || value.size() > kMaxInValues) {
          return Malformed(where + ".value must be an array of 1.." + std::to_string(kMaxInValues) +
                           " values");
        }
        for (size_t v = 0; v < value.size(); ++v) {
          AIRLOCK_ASSIGN_OR_RETURN(std::string literal,
                                   Literal(value[v], where + ".value[" + std::to_string(v) + "]"));
          rendered += (rendered.empty() ? "(" : ", ") + literal;
        }
        rendered += ")";
      } else {
        AIRLOCK_ASSIGN_OR_RETURN(rendered, Literal(value, where + ".value"));
      }
      static const std::map<std::string, std::string, std::less<>> kSqlOps = {
          {"eq", "="}, {"ne", "<>"}, {"lt", "<"}, {"le", "<="},
          {"gt", ">"}, {"ge", ">="}, {"in", "IN"}};
      conditions.push_back(QuoteIdentifier(column) + " " + kSqlOps.at(op) + " " + rendered);
    }
  }
  AIRLOCK_RETURN_IF_ERROR(error);

  const auto join = [](const std::vector<std::string>& parts, const char* separator) {
    std::string out;
    for (const auto& part : parts) out += (out.empty() ? "" : separator) + part;
    return out;
  };
  std::string sql = "SELECT " + join(select, ", ") + " FROM " + QuoteIdentifier(dataset);
  if (!conditions.empty()) sql += " WHERE " + join(conditions, " AND ");
  if (!group.empty()) sql += " GROUP BY " + join(group, ", ");
  // Counted here, over the source rows: no group smaller than the clean
  // room allows leaves the enclave, whatever the call asked for.
  sql += " HAVING COUNT(*) >= " + std::to_string(room != nullptr ? room->min_group_size : 1);
  if (!group.empty()) sql += " ORDER BY " + join(group, ", ");
  return sql;
}

}  // namespace airlock::enclave
