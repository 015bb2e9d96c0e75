#include "pull_query.h"

#include <charconv>

#include "airlock/cpp/scope.hpp"

namespace airlock::connectors::postgres {
namespace {

// Parameter type oids.
constexpr uint32_t kBoolOid = 16;
constexpr uint32_t kByteaOid = 17;
constexpr uint32_t kInt8Oid = 20;
constexpr uint32_t kTextOid = 25;
constexpr uint32_t kFloat8Oid = 701;
constexpr uint32_t kDateOid = 1082;
constexpr uint32_t kTimeOid = 1083;
constexpr uint32_t kTimestampOid = 1114;
constexpr uint32_t kTimestampTzOid = 1184;

bool DeliveredAsText(Kind kind) {
  return kind == Kind::kText || kind == Kind::kUuid || kind == Kind::kServerText ||
         kind == Kind::kArrayJson;
}

// The column as selected when delivered unmasked (uuid travels as its 16
// bytes and is formatted by the decoder).
std::string SelectExpression(const std::string& q, Kind kind) {
  switch (kind) {
    case Kind::kServerText:
      return "(" + q + ")::text";
    case Kind::kArrayJson:
      return "array_to_json(" + q + ")::text";
    default:
      return q;
  }
}

// The delivered text of a column that is delivered as utf8, in SQL.
std::string TextForm(const std::string& q, Kind kind) {
  if (kind == Kind::kText) return q;
  if (kind == Kind::kArrayJson) return "array_to_json(" + q + ")::text";
  return "(" + q + ")::text";
}

// std::to_chars(double) in SQL: PostgreSQL prints the same shortest
// round-trip digits, but picks fixed or scientific notation by exponent
// range, while to_chars picks the shorter of the two (fixed on a tie). This
// re-spells PostgreSQL's text: digits D and decimal exponent E, then both
// notations, then the shorter. `f` is a finite float8 expression.
std::string ShortestFloatText(const std::string& f) {
  return "(SELECT CASE WHEN v.d = '' THEN v.t WHEN length(v.sci) < length(v.fix) "
         "THEN v.s || v.sci ELSE v.s || v.fix END FROM ("
         "SELECT u.t, u.s, u.d, left(u.d, 1) || CASE WHEN length(u.d) > 1 THEN '.' || "
         "substr(u.d, 2) ELSE '' END || 'e' || CASE WHEN u.e < 0 THEN '-' ELSE '+' END || "
         "lpad(abs(u.e)::text, 2, '0') AS sci, CASE WHEN u.e < 0 THEN '0.' || "
         "repeat('0', -u.e - 1) || u.d WHEN length(u.d) <= u.e + 1 THEN u.d || "
         "repeat('0', u.e + 1 - length(u.d)) ELSE left(u.d, u.e + 1) || '.' || "
         "substr(u.d, u.e + 2) END AS fix FROM ("
         "SELECT w.t, w.s, rtrim(ltrim(w.a, '0'), '0') AS d, length(w.i) + w.x - "
         "(length(w.a) - length(ltrim(w.a, '0'))) - 1 AS e FROM ("
         "SELECT z.t, CASE WHEN left(z.t, 1) = '-' THEN '-' ELSE '' END AS s, "
         "split_part(ltrim(split_part(z.t, 'e', 1), '-'), '.', 1) AS i, "
         "split_part(ltrim(split_part(z.t, 'e', 1), '-'), '.', 1) || "
         "split_part(ltrim(split_part(z.t, 'e', 1), '-'), '.', 2) AS a, "
         "CASE WHEN z.t LIKE '%e%' THEN split_part(z.t, 'e', 2)::int ELSE 0 END AS x "
         "FROM (SELECT (" +
         f + ")::text AS t) AS z) AS w) AS u) AS v)";
}

// The canonical text of a value, computed in SQL, equal to what
// scope::AppendText gives for the value the connector would deliver (see
// README.md "Masking" for the cases where it differs). NULL stays NULL.
std::string CanonicalText(const std::string& q, Kind kind) {
  const std::string fraction_ts = "CASE WHEN date_trunc('second', " + q + ") = " + q +
                                  " THEN '' ELSE to_char(" + q + ", '.US') END";
  switch (kind) {
    case Kind::kText:
      // format() keeps char(n) padding, as the delivered value does.
      return "CASE WHEN " + q + " IS NULL THEN NULL ELSE format('%s', " + q + ") END";
    case Kind::kFloat32:
    case Kind::kFloat64: {
      const std::string f = "(" + q + ")::float8";
      return "CASE WHEN " + f + " = 'NaN'::float8 THEN 'nan' WHEN " + f +
             " = 'Infinity'::float8 THEN 'inf' WHEN " + f +
             " = '-Infinity'::float8 THEN '-inf' ELSE " + ShortestFloatText(f) + " END";
    }
    case Kind::kTime: {
      const std::string i = "(" + q + ")::interval";
      return "to_char(" + i + ", 'HH24:MI:SS') || CASE WHEN date_trunc('second', " + i +
             ") = " + i + " THEN '' ELSE to_char(" + i + ", '.US') END";
    }
    case Kind::kTimestamp:
    case Kind::kTimestampTz:
      // The session's TimeZone is UTC (pg_connection.cc), so to_char shows
      // UTC. The SDK's canonical text marks every timestamp "+00", naive or
      // not (scope::AppendText has no time zone to go by).
      return "to_char(" + q + ", 'YYYY-MM-DD HH24:MI:SS') || " + fraction_ts + " || '+00'";
    case Kind::kArrayJson:
      return "array_to_json(" + q + ")::text";
    default:
      return "(" + q + ")::text";
  }
}

Result<std::string> MaskExpression(const SourceColumn& column, const std::string& q,
                                   scope::MaskFunction fn) {
  switch (fn) {
    case scope::MaskFunction::kRedact:
      return "CASE WHEN " + q + " IS NULL THEN NULL ELSE '***' END";
    case scope::MaskFunction::kLast4: {
      if (column.kind == Kind::kBytea) {
        return Status::InvalidArgument("mask last4 is not defined for binary column '" +
                                       column.name + "' (use redact or hash)");
      }
      const std::string t = CanonicalText(q, column.kind);
      return "CASE WHEN char_length(" + t + ") <= 4 THEN '****' ELSE '****' || right(" + t +
             ", 4) END";
    }
    case scope::MaskFunction::kHash:
      if (column.kind == Kind::kBytea) return "encode(sha256(" + q + "), 'hex')";
      return "encode(sha256(convert_to(" + CanonicalText(q, column.kind) + ", 'UTF8')), 'hex')";
  }
  return Status::Internal("unknown mask");
}

std::string FloatText(double d) {
  char buf[32];
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, d);
  return std::string(buf, ptr);
}

// A literal (already converted to the column's domain by the SDK) as a
// bound parameter.
Result<Param> LiteralParam(const scope::detail::Literal& lit, const SourceColumn& column) {
  using scope::detail::Domain;
  switch (lit.domain) {
    case Domain::kBool:
      return Param{lit.b ? "true" : "false", kBoolOid, false};
    case Domain::kFloat:
      return Param{FloatText(lit.d), kFloat8Oid, false};
    case Domain::kString:
      if (column.kind == Kind::kBytea) return Param{lit.s, kByteaOid, true};
      // Binary text parameters carry their length, so a NUL byte cannot cut
      // the value short; the server refuses it instead.
      return Param{lit.s, kTextOid, true};
    case Domain::kInt:
      switch (column.field.type) {
        case arrow::Type::kDate32:
          return Param{arrow::FormatDate32(static_cast<int32_t>(lit.i)), kDateOid, false};
        case arrow::Type::kTimestampMicros:
          return column.field.timezone.empty()
                     ? Param{arrow::FormatTimestamp(lit.i, false), kTimestampOid, false}
                     : Param{arrow::FormatTimestamp(lit.i, true), kTimestampTzOid, false};
        case arrow::Type::kTime64Micros:
          return Param{arrow::FormatTime(lit.i), kTimeOid, false};
        default:
          return Param{std::to_string(lit.i), kInt8Oid, false};
      }
    case Domain::kNone:
      break;
  }
  return Status::TypeNotRepresentable("column '" + column.name + "' cannot be filtered");
}

class FilterBuilder {
 public:
  explicit FilterBuilder(std::vector<Param>* params) : params_(params) {}

  Result<std::string> Condition(const RowCondition& rc, size_t index, const SourceColumn& column) {
    const std::string q = QuoteIdentifier(column.name);
    const std::string where = "row_filter[" + std::to_string(index) + "] (" + rc.column + ")";
    if (rc.op == "is_null") return q + " IS NULL";
    if (rc.op == "not_null") return q + " IS NOT NULL";
    const bool text = DeliveredAsText(column.kind);
    // Text columns are compared as delivered (their text form).
    const std::string lhs = text ? TextForm(q, column.kind) : q;
    if (rc.op == "like") {
      if (!rc.value.is_string()) {
        return Status::InvalidArgument(where + ": like needs a string pattern");
      }
      scope::detail::Literal lit;
      lit.domain = scope::detail::Domain::kString;
      lit.s = rc.value.get<std::string>();
      AIRLOCK_ASSIGN_OR_RETURN(std::string p, Bind(lit, column));
      if (column.kind == Kind::kBytea) return lhs + " LIKE " + p;
      return "(" + lhs + ") COLLATE \"C\" LIKE " + p;
    }
    if (rc.op == "in" || rc.op == "not_in") {
      const bool negate = rc.op == "not_in";
      if (rc.value.empty()) return negate ? q + " IS NOT NULL" : std::string("FALSE");
      std::vector<scope::detail::Literal> literals;
      bool any_float = false;
      for (size_t k = 0; k < rc.value.size(); ++k) {
        scope::detail::Literal lit;
        AIRLOCK_RETURN_IF_ERROR(scope::detail::ConvertLiteral(
            rc.value[k], column.field.type, where + "[" + std::to_string(k) + "]", &lit));
        any_float = any_float || lit.domain == scope::detail::Domain::kFloat;
        literals.push_back(std::move(lit));
      }
      std::string list;
      for (auto& lit : literals) {
        if (any_float && lit.domain == scope::detail::Domain::kInt) {
          lit.domain = scope::detail::Domain::kFloat;
          lit.d = static_cast<double>(lit.i);
        }
        AIRLOCK_ASSIGN_OR_RETURN(std::string p, Bind(lit, column));
        if (!list.empty()) list += ", ";
        list += p;
      }
      return lhs + (negate ? " NOT IN (" : " IN (") + list + ")";
    }
    const char* op = nullptr;
    if (rc.op == "eq") op = " = ";
    if (rc.op == "ne") op = " <> ";
    if (rc.op == "lt") op = " < ";
    if (rc.op == "le") op = " <= ";
    if (rc.op == "gt") op = " > ";
    if (rc.op == "ge") op = " >= ";
    if (op == nullptr) return Status::InvalidArgument(where + ": unknown op '" + rc.op + "'");
    scope::detail::Literal lit;
    AIRLOCK_RETURN_IF_ERROR(
        scope::detail::ConvertLiteral(rc.value, column.field.type, where, &lit));
    AIRLOCK_ASSIGN_OR_RETURN(std::string p, Bind(lit, column));
    const bool ordering = rc.op != "eq" && rc.op != "ne";
    if (ordering && text) return "(" + lhs + ") COLLATE \"C\"" + op + p;
    if (ordering && (column.kind == Kind::kFloat32 || column.kind == Kind::kFloat64)) {
      // PostgreSQL orders NaN above every number; the scope semantics say a
      // NaN satisfies no ordering.
      return "(" + q + " <> 'NaN'::float8 AND " + q + op + p + ")";
    }
    return lhs + op + p;
  }

 private:
  Result<std::string> Bind(const scope::detail::Literal& lit, const SourceColumn& column) {
    if (params_->size() >= kMaxFilterParams) {
      return Status::InvalidArgument("row_filter has more than " +
                                     std::to_string(kMaxFilterParams) + " values");
    }
    AIRLOCK_ASSIGN_OR_RETURN(Param p, LiteralParam(lit, column));
    params_->push_back(std::move(p));
    return "$" + std::to_string(params_->size());
  }

  std::vector<Param>* params_;
};

}  // namespace

std::string SourceRelation(const DatasetConfig& dataset) {
  if (dataset.is_query()) {
    std::string query = dataset.query;
    while (!query.empty() &&
           (query.back() == ';' || std::isspace(static_cast<unsigned char>(query.back())))) {
      query.pop_back();
    }
    return "(" + query + "\n) AS \"airlock_source\"";
  }
  std::string out;
  if (!dataset.schema.empty()) out = QuoteIdentifier(dataset.schema) + ".";
  return out + QuoteIdentifier(dataset.table);
}

Result<PullQuery> BuildPullQuery(const DatasetConfig& dataset,
                                 const std::vector<SourceColumn>& columns,
                                 const DatasetScope& scope) {
  std::vector<arrow::Field> source;
  source.reserve(columns.size());
  for (const auto& c : columns) source.push_back(c.field);
  AIRLOCK_ASSIGN_OR_RETURN(scope::ScopePlan plan, scope::ScopePlan::Make(source, scope));

  PullQuery query;
  std::string select;
  for (const scope::OutputColumn& out : plan.outputs()) {
    const SourceColumn& column = columns[out.source];
    const std::string q = QuoteIdentifier(column.name);
    if (!select.empty()) select += ", ";
    if (out.mask) {
      AIRLOCK_ASSIGN_OR_RETURN(std::string masked, MaskExpression(column, q, *out.mask));
      select += masked;
      query.decode.push_back(Kind::kText);
    } else {
      if (column.kind == Kind::kUnsupported) {
        return Status::TypeNotRepresentable(
            "column '" + column.name + "' has type " + column.type_name +
            ", which has no Arrow mapping (mask it or leave it out of the scope)");
      }
      select += SelectExpression(q, column.kind);
      query.decode.push_back(column.kind);
    }
    query.fields.push_back(out.field);
  }
  if (select.empty()) return Status::InvalidArgument("the scope selects no column");

  std::string where;
  FilterBuilder filter(&query.params);
  for (size_t i = 0; i < scope.row_filter.size(); ++i) {
    const RowCondition& rc = scope.row_filter[i];
    size_t index = columns.size();
    for (size_t c = 0; c < columns.size(); ++c) {
      if (columns[c].name == rc.column) index = c;
    }
    if (index == columns.size()) {  // ScopePlan already refused this; stay closed anyway
      return Status::InvalidArgument("row_filter names unknown column '" + rc.column + "'");
    }
    if (columns[index].kind == Kind::kUnsupported) {
      return Status::TypeNotRepresentable("row_filter column '" + rc.column + "' has type " +
                                          columns[index].type_name +
                                          ", which has no Arrow mapping");
    }
    AIRLOCK_ASSIGN_OR_RETURN(std::string condition, filter.Condition(rc, i, columns[index]));
    where += where.empty() ? " WHERE " : " AND ";
    where += "(" + condition + ")";
  }
  query.select = "SELECT " + select + " FROM " + SourceRelation(dataset) + where;
  return query;
}

}  // namespace airlock::connectors::postgres
