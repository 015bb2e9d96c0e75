// Functions, casts and date arithmetic: PostgreSQL's names and semantics on
// the enclave's engine, where dates and times are ISO text in UTC.
#include <strings.h>

#include <cctype>
#include <charconv>
#include <cmath>

#include "errors.h"
#include "pg_datetime.h"
#include "sql_text.h"
#include "translator_internal.h"

namespace airlock::tunnels::pgwire::translate {
namespace {

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Join(const std::vector<Expr>& args, size_t from = 0) {
  std::string out;
  for (size_t i = from; i < args.size(); ++i) out += (i > from ? ", " : "") + args[i].sql;
  return out;
}

// A date/time value as the engine's date functions read it: timestamptz
// values carry a "+00" suffix those functions do not accept.
std::string DateTimeArg(const Expr& e) {
  if (e.type == oid::kTimestamptz) return "substr(" + e.sql + ", 1, length(" + e.sql + ") - 3)";
  return e.sql;
}

struct TypeEntry {
  std::string_view name;
  uint32_t type;
};
constexpr TypeEntry kTypes[] = {
    {"int2", oid::kInt2},
    {"smallint", oid::kInt2},
    {"int4", oid::kInt4},
    {"int", oid::kInt4},
    {"integer", oid::kInt4},
    {"int8", oid::kInt8},
    {"bigint", oid::kInt8},
    {"float4", oid::kFloat4},
    {"real", oid::kFloat4},
    {"float8", oid::kFloat8},
    {"float", oid::kFloat8},
    {"numeric", oid::kNumeric},
    {"decimal", oid::kNumeric},
    {"text", oid::kText},
    {"varchar", oid::kVarchar},
    {"bpchar", oid::kBpchar},
    {"char", oid::kBpchar},
    {"name", oid::kName},
    {"bool", oid::kBool},
    {"boolean", oid::kBool},
    {"date", oid::kDate},
    {"timestamp", oid::kTimestamp},
    {"timestamptz", oid::kTimestamptz},
    {"time", oid::kTime},
    {"bytea", oid::kBytea},
    {"json", oid::kText},
    {"jsonb", oid::kText},
    {"interval", kIntervalOid},
    {"unknown", oid::kUnknown},
};

// "1 day", "2 hours 30 minutes", "-1 month", "1 year 2 mons": SQLite
// modifiers ("+1 days"), or nullopt for what they cannot express.
std::optional<std::vector<std::string>> IntervalModifiers(std::string_view text) {
  std::vector<std::string> out;
  size_t i = 0;
  const auto skip = [&] {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  };
  skip();
  while (i < text.size()) {
    const size_t start = i;
    if (text[i] == '+' || text[i] == '-') ++i;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.'))
      ++i;
    const std::string number(text.substr(start, i - start));
    if (number.empty() || number == "+" || number == "-") return std::nullopt;
    skip();
    const size_t unit_start = i;
    while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
    std::string unit = Lower(std::string(text.substr(unit_start, i - unit_start)));
    skip();
    if (unit.ends_with("s") && unit != "s") unit.pop_back();
    const char* sqlite_unit = unit == "year" || unit == "y" || unit == "yr"      ? "years"
                              : unit == "mon" || unit == "month"                 ? "months"
                              : unit == "day" || unit == "d"                     ? "days"
                              : unit == "hour" || unit == "h" || unit == "hr"    ? "hours"
                              : unit == "minute" || unit == "min" || unit == "m" ? "minutes"
                              : unit == "second" || unit == "sec" || unit == "s" ? "seconds"
                              : unit == "week" || unit == "w"                    ? "weeks"
                                                                                 : nullptr;
    if (sqlite_unit == nullptr) return std::nullopt;
    std::string magnitude = number[0] == '+' || number[0] == '-' ? number : "+" + number;
    if (std::string_view(sqlite_unit) == "weeks") {
      // SQLite has no week modifier: seven days each.
      double weeks = 0;
      try {
        weeks = std::stod(magnitude);
      } catch (...) {
        return std::nullopt;
      }
      char buf[64];
      std::snprintf(buf, sizeof buf, "%+.6g days", weeks * 7);
      out.push_back(buf);
      continue;
    }
    out.push_back(magnitude + " " + sqlite_unit);
  }
  if (out.empty()) return std::nullopt;
  return out;
}

// SQL computing a timestamp from strftime's arguments `arguments` in the
// stored form: "YYYY-MM-DD HH:MM:SS", six fraction digits when there is a
// fraction (strftime gives milliseconds), "+00" for timestamptz.
std::string CanonicalTimestampSql(const std::string& arguments, bool with_tz) {
  const std::string t = "strftime('%Y-%m-%d %H:%M:%f', " + arguments + ")";
  std::string sql = "(CASE WHEN substr(" + t + ", 21) = '000' THEN substr(" + t + ", 1, 19) ELSE " +
                    t + " || '000' END)";
  if (with_tz) sql = "(" + sql + " || '+00')";
  return sql;
}

std::string NegateModifier(const std::string& modifier) {
  if (modifier.empty()) return modifier;
  std::string out = modifier;
  out[0] = out[0] == '-' ? '+' : '-';
  return out;
}

}  // namespace

std::string TypeNameOf(uint32_t type) {
  switch (type) {
    case oid::kInt2:
      return "int2";
    case oid::kInt4:
      return "int4";
    case oid::kInt8:
      return "int8";
    case oid::kFloat4:
      return "float4";
    case oid::kFloat8:
      return "float8";
    case oid::kNumeric:
      return "numeric";
    case oid::kVarchar:
      return "varchar";
    case oid::kBpchar:
      return "bpchar";
    case oid::kBool:
      return "bool";
    case oid::kDate:
      return "date";
    case oid::kTimestamp:
      return "timestamp";
    case oid::kTimestamptz:
      return "timestamptz";
    case oid::kTime:
      return "time";
    case oid::kBytea:
      return "bytea";
    case kIntervalOid:
      return "interval";
    default:
      return "text";
  }
}

// --- casts -------------------------------------------------------------------

Expr Translator::Cast(const Json& body, const Scope& scope) {
  const Json& type_name = Field(body, "typeName");
  const std::vector<std::string> names = Names(Field(type_name, "names"));
  if (names.empty()) Fail(sqlstate::kSyntaxError, "cast to an unnamed type");
  if (catalog_) {
    // The catalog's arrays are text, and its reg* types names or oids.
    if (!Field(type_name, "arrayBounds").is_null()) return Expression(Field(body, "arg"), scope);
    const std::string catalog_type = Lower(names.back());
    if (catalog_type.rfind("reg", 0) == 0 || catalog_type == "oid") {
      return CatalogCast(Expression(Field(body, "arg"), scope), catalog_type);
    }
  }
  if (!Field(type_name, "arrayBounds").is_null()) Unsupported("array types");
  if (names.size() > 1 && names[0] != "pg_catalog" && names[0] != "public") {
    Unsupported("the type " + names[0] + "." + names.back());
  }
  const std::string name = Lower(names.back());
  uint32_t type = oid::kUnspecified;
  for (const TypeEntry& t : kTypes) {
    if (t.name == name) type = t.type;
  }
  if (type == oid::kUnspecified) {
    if (name == "regclass" || name == "regtype" || name == "regproc" || name == "oid" ||
        name == "regnamespace") {
      Unsupported("the catalog type " + name);
    }
    Fail(sqlstate::kUndefinedObject, "type \"" + names.back() + "\" does not exist");
  }
  Expr value = Expression(Field(body, "arg"), scope);
  return CastTo(std::move(value), type, Field(type_name, "typmods"));
}

Expr Translator::CastTo(Expr value, uint32_t type, const Json& type_mods) {
  std::vector<int64_t> mods;
  if (type_mods.is_array()) {
    for (const Json& m : type_mods) {
      if (NodeKind(m) != "A_Const") Unsupported("a type modifier that is not a number");
      mods.push_back(IntField(Field(NodeBody(m), "ival"), "ival"));
    }
  }
  Expr e;
  e.type = type;
  e.name = value.name.empty() || value.name == "?column?" ? TypeNameOf(type) : value.name;
  if (type == oid::kUnknown) {
    e.sql = value.sql;
    e.type = value.type;
    return e;
  }

  // $1::int: the parameter is of that type (its literal is made for it).
  if (value.param > 0) {
    uint32_t& declared = types_[static_cast<size_t>(value.param) - 1];
    if (declared == oid::kUnspecified || declared == oid::kUnknown) {
      if (type == kIntervalOid) Unsupported("an interval parameter");
      declared = type;
      value.type = type;
    }
  }

  // A string constant is converted now, as PostgreSQL converts it at parse
  // time: invalid input is an error, not a silent NULL or zero.
  if (value.text_value.has_value()) {
    const std::string& text = *value.text_value;
    const auto invalid = [&](const char* state) {
      Fail(state, "invalid input syntax for type " + TypeNameOf(type) + ": \"" + text + "\"");
    };
    switch (type) {
      case oid::kInt2:
      case oid::kInt4:
      case oid::kInt8: {
        std::string_view t = text;
        while (!t.empty() && std::isspace(static_cast<unsigned char>(t.front())))
          t.remove_prefix(1);
        while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.remove_suffix(1);
        int64_t v = 0;
        auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
        if (ec != std::errc() || end != t.data() + t.size() || t.empty()) invalid("22P02");
        if ((type == oid::kInt4 && (v < INT32_MIN || v > INT32_MAX)) ||
            (type == oid::kInt2 && (v < INT16_MIN || v > INT16_MAX))) {
          Fail("22003", "value \"" + text + "\" is out of range for type " + TypeNameOf(type));
        }
        e.sql = std::to_string(v);
        return e;
      }
      case oid::kFloat4:
      case oid::kFloat8:
      case oid::kNumeric: {
        char* end = nullptr;
        const std::string trimmed(text);
        errno = 0;
        const double v = std::strtod(trimmed.c_str(), &end);
        while (end != nullptr && std::isspace(static_cast<unsigned char>(*end))) ++end;
        if (trimmed.empty() || end == trimmed.c_str() || *end != '\0' || !std::isfinite(v)) {
          invalid("22P02");
        }
        e.sql = QuoteLiteral(text);
        e.sql = "CAST(" + e.sql + " AS REAL)";
        if (type == oid::kNumeric && mods.size() == 2) {
          e.sql = "round(" + e.sql + ", " + std::to_string(mods[1]) + ")";
        }
        return e;
      }
      case oid::kBool: {
        const std::string t = Lower(text);
        if (t == "t" || t == "true" || t == "y" || t == "yes" || t == "on" || t == "1") {
          e.sql = "TRUE";
        } else if (t == "f" || t == "false" || t == "n" || t == "no" || t == "off" || t == "0") {
          e.sql = "FALSE";
        } else {
          invalid("22P02");
        }
        return e;
      }
      case oid::kDate:
      case oid::kTimestamp:
      case oid::kTimestamptz:
      case oid::kTime: {
        std::optional<std::string> canonical;
        if (type == oid::kDate) canonical = CanonicalDate(text);
        if (type == oid::kTime) canonical = CanonicalTime(text);
        if (type == oid::kTimestamp || type == oid::kTimestamptz) {
          canonical = CanonicalTimestamp(text, type == oid::kTimestamptz);
        }
        if (!canonical.has_value()) invalid("22007");
        e.sql = QuoteLiteral(*canonical);
        e.text_value = *canonical;
        return e;
      }
      case kIntervalOid: {
        auto modifiers = IntervalModifiers(text);
        if (!modifiers.has_value()) {
          Unsupported("the interval \"" + text +
                      "\" (years, months, weeks, days, hours, minutes and seconds are)");
        }
        e.interval = std::move(*modifiers);
        e.sql = QuoteLiteral(text);
        return e;
      }
      case oid::kBytea: {
        // '\x4142' is hex; any other text is the bytes themselves (the
        // escape format's backslash sequences are not read).
        static constexpr char kHex[] = "0123456789ABCDEF";
        std::string hex;
        if (text.starts_with("\\x")) {
          hex = text.substr(2);
          if (hex.size() % 2 != 0 ||
              hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
            invalid("22P02");
          }
        } else {
          for (unsigned char c : text) {
            hex.push_back(kHex[c >> 4]);
            hex.push_back(kHex[c & 15]);
          }
        }
        e.sql = "X'" + hex + "'";
        return e;
      }
      default:  // the text types
        e.sql = value.sql;
        e.text_value = value.text_value;
        if (type == oid::kVarchar && mods.size() == 1) {
          e.sql = "substr(" + e.sql + ", 1, " + std::to_string(mods[0]) + ")";
        }
        return e;
    }
  }

  const uint32_t from = value.type;
  const std::string& x = value.sql;
  if (value.param > 0 && from == type) {  // the literal already has the type
    e.sql = x;
    return e;
  }
  switch (type) {
    case oid::kInt2:
    case oid::kInt4:
    case oid::kInt8:
      // PostgreSQL rounds a fraction to the nearest integer where CAST
      // truncates: a double's halves to the even neighbour (rint), other
      // numbers' away from zero.
      if (IsInteger(from) || from == oid::kBool) {
        e.sql = "CAST(" + x + " AS INTEGER)";
      } else if (from == oid::kFloat8 || from == oid::kFloat4) {
        e.sql = "CAST((CASE WHEN abs(" + x + " - trunc(" + x + ")) = 0.5 THEN 2 * round(" + x +
                " / 2.0) ELSE round(" + x + ") END) AS INTEGER)";
      } else {
        e.sql = "CAST(round(" + x + ") AS INTEGER)";
      }
      return e;
    case oid::kFloat4:
    case oid::kFloat8:
    case oid::kNumeric:
      e.sql = "CAST(" + x + " AS REAL)";
      if (type == oid::kNumeric && mods.size() == 2) {
        e.sql = "round(" + e.sql + ", " + std::to_string(mods[1]) + ")";
      }
      return e;
    case oid::kBool:
      if (from == oid::kBool) {
        e.sql = x;
      } else if (IsNumber(from)) {
        e.sql = "(" + x + " <> 0)";
      } else {
        e.sql = "(CASE lower(trim(" + x +
                ")) WHEN 't' THEN 1 WHEN 'true' THEN 1 WHEN 'y' THEN 1 WHEN 'yes' THEN 1 "
                "WHEN 'on' THEN 1 WHEN '1' THEN 1 WHEN 'f' THEN 0 WHEN 'false' THEN 0 "
                "WHEN 'n' THEN 0 WHEN 'no' THEN 0 WHEN 'off' THEN 0 WHEN '0' THEN 0 END)";
      }
      return e;
    case oid::kDate:
      e.sql = from == oid::kDate                                     ? x
              : from == oid::kTimestamp || from == oid::kTimestamptz ? "substr(" + x + ", 1, 10)"
                                                                     : "date(" + x + ")";
      return e;
    case oid::kTimestamp:
      e.sql = from == oid::kTimestamp     ? x
              : from == oid::kDate        ? "(" + x + " || ' 00:00:00')"
              : from == oid::kTimestamptz ? DateTimeArg(value)
                                          : "datetime(" + x + ")";
      return e;
    case oid::kTimestamptz:
      e.sql = from == oid::kTimestamptz ? x
              : from == oid::kDate      ? "(" + x + " || ' 00:00:00+00')"
              : from == oid::kTimestamp ? "(" + x + " || '+00')"
                                        : "(datetime(" + x + ") || '+00')";
      return e;
    case oid::kTime:
      e.sql = from == oid::kTime ? x : "time(" + DateTimeArg(value) + ")";
      return e;
    case oid::kBytea:
      e.sql = "CAST(" + x + " AS BLOB)";
      return e;
    case kIntervalOid:
      Unsupported("casting an expression to interval (interval constants are supported)");
    default:
      if (from == oid::kBool) {
        e.sql = "(CASE " + x + " WHEN 1 THEN 'true' WHEN 0 THEN 'false' END)";
      } else {
        e.sql = IsText(from) ? x : "CAST(" + x + " AS TEXT)";
      }
      if (type == oid::kVarchar && mods.size() == 1) {
        e.sql = "substr(" + e.sql + ", 1, " + std::to_string(mods[0]) + ")";
      }
      return e;
  }
}

Expr Translator::DateArithmetic(const std::string& op, const Expr& left, const Expr& right) {
  Expr e;
  e.name = "?column?";
  const bool left_interval = left.type == kIntervalOid;
  const bool right_interval = right.type == kIntervalOid;
  if (left_interval && right_interval) Unsupported("arithmetic between intervals");
  if (left_interval || right_interval) {
    const Expr& value = left_interval ? right : left;
    const Expr& interval = left_interval ? left : right;
    if (left_interval && op == "-") Unsupported("interval minus a date");
    if (!IsDateTime(value.type)) {
      if (value.type != oid::kUnknown)
        Unsupported("interval arithmetic on " + TypeNameOf(value.type));
    }
    std::string modifiers;
    for (const std::string& m : interval.interval) {
      modifiers += ", " + QuoteLiteral(op == "-" ? NegateModifier(m) : m);
    }
    // date + interval is a timestamp in PostgreSQL.
    e.type = value.type == oid::kTimestamptz ? oid::kTimestamptz : oid::kTimestamp;
    e.sql = CanonicalTimestampSql(DateTimeArg(value) + modifiers, e.type == oid::kTimestamptz);
    return e;
  }
  if (IsDateTime(left.type) && IsDateTime(right.type)) {
    if (op != "-") Unsupported("adding two dates");
    if (left.type == oid::kDate && right.type == oid::kDate) {
      e.type = oid::kInt4;
      e.sql = "CAST(julianday(" + left.sql + ") - julianday(" + right.sql + ") AS INTEGER)";
      return e;
    }
    Unsupported("subtracting timestamps (the result is an interval)");
  }
  // date ± integer days
  const Expr& date = IsDateTime(left.type) ? left : right;
  const Expr& days = IsDateTime(left.type) ? right : left;
  if (date.type != oid::kDate) Unsupported("adding a number to a " + TypeNameOf(date.type));
  e.type = oid::kDate;
  e.sql =
      "date(" + date.sql + ", " + (op == "-" ? "'-' || " : "'+' || ") + days.sql + " || ' days')";
  return e;
}

Expr Translator::CatalogCast(Expr value, const std::string& type_name) {
  Expr e;
  e.name = value.name.empty() || value.name == "?column?" ? type_name : value.name;
  if (type_name == "oid") {
    e.type = oid::kOid;
    e.sql = "CAST(" + value.sql + " AS INTEGER)";
    return e;
  }
  // 'name'::regclass is the relation's oid; oid::regclass prints its name.
  if (value.text_value.has_value()) {
    if (type_name == "regclass") {
      e.type = oid::kOid;
      e.sql = "pg_regclass_oid(" + value.sql + ")";
      return e;
    }
    if (type_name == "regproc" || type_name == "regprocedure") {
      std::string name = *value.text_value;  // pg_type keeps input functions by name
      if (name.rfind("pg_catalog.", 0) == 0) name = name.substr(11);
      e.type = oid::kText;
      e.sql = QuoteLiteral(name);
      return e;
    }
    Unsupported("'...'::" + type_name);
  }
  e.type = oid::kText;
  if (type_name == "regclass") {
    e.sql = "pg_regclass_name(" + value.sql + ")";
  } else if (type_name == "regtype") {
    e.sql = "pg_regtype_name(" + value.sql + ")";
  } else if (type_name == "regnamespace") {
    e.sql = "pg_regnamespace_name(" + value.sql + ")";
  } else if (type_name == "regproc" || type_name == "regprocedure") {
    e.sql = value.sql;
  } else {
    Unsupported("the catalog type " + type_name);
  }
  return e;
}

std::string Translator::CatalogFunctionInFrom(const Json& body, Scope& scope) {
  // FROM f(...) [AS] alias [(column)]: one column of values through json_each.
  const Json& functions = Field(body, "functions");
  if (!functions.is_array() || functions.size() != 1) Unsupported("ROWS FROM");
  const Json& items = Field(NodeBody(functions[0]), "items");
  if (!items.is_array() || items.empty() || NodeKind(items[0]) != "FuncCall") {
    Unsupported("this function in FROM");
  }
  const Json& call = NodeBody(items[0]);
  std::vector<std::string> names = Names(Field(call, "funcname"));
  const std::string name = names.empty() ? "" : Lower(names.back());
  const Json& alias_node = Field(body, "alias");
  const std::string alias =
      StringField(alias_node, "aliasname").empty() ? name : StringField(alias_node, "aliasname");
  const std::vector<std::string> column_aliases = Names(Field(alias_node, "colnames"));
  const std::string column = column_aliases.empty() ? alias : column_aliases[0];
  std::vector<Expr> args = List(Field(call, "args"), scope);
  std::string values;
  uint32_t type = oid::kText;
  if (name == "generate_series" && args.size() == 2) {
    values = "json_each(pg_series(" + args[0].sql + ", " + args[1].sql + "))";
    type = oid::kInt4;
  } else if (name == "unnest" && args.size() == 1) {
    values = "json_each(pg_array_json(" + args[0].sql + "))";
  } else if (name == "pg_get_keywords") {
    scope.relations.push_back(Relation{
        alias, {{"word", oid::kText}, {"catcode", oid::kText}, {"catdesc", oid::kText}}, true});
    return "(SELECT NULL AS \"word\", NULL AS \"catcode\", NULL AS \"catdesc\" WHERE 0) AS " +
           QuoteIdentifier(alias);
  } else {
    Unsupported("the function " + name + " in FROM");
  }
  scope.relations.push_back(Relation{alias, {{column, type}}, true});
  return "(SELECT value AS " + QuoteIdentifier(column) + " FROM " + values + ") AS " +
         QuoteIdentifier(alias);
}

// --- functions ---------------------------------------------------------------

Expr Translator::ValueFunction(const Json& body) {
  const std::string op = StringField(body, "op");
  Expr e;
  const auto text = [&](const std::string& value, const char* name) {
    e.type = oid::kText;
    e.sql = QuoteLiteral(value);
    e.name = name;
    return e;
  };
  if (op == "SVFOP_CURRENT_DATE") {
    e.type = oid::kDate;
    e.sql = "date('now')";
    e.name = "current_date";
    return e;
  }
  if (op == "SVFOP_CURRENT_TIMESTAMP" || op == "SVFOP_CURRENT_TIMESTAMP_N") {
    e.type = oid::kTimestamptz;
    e.sql = CanonicalTimestampSql("'now'", true);
    e.name = "current_timestamp";
    return e;
  }
  if (op == "SVFOP_LOCALTIMESTAMP" || op == "SVFOP_LOCALTIMESTAMP_N") {
    e.type = oid::kTimestamp;
    e.sql = CanonicalTimestampSql("'now'", false);
    e.name = "localtimestamp";
    return e;
  }
  if (op == "SVFOP_CURRENT_TIME" || op == "SVFOP_CURRENT_TIME_N" || op == "SVFOP_LOCALTIME" ||
      op == "SVFOP_LOCALTIME_N") {
    e.type = oid::kTime;
    e.sql = "time('now')";
    e.name = op.starts_with("SVFOP_LOCAL") ? "localtime" : "current_time";
    return e;
  }
  if (op == "SVFOP_CURRENT_USER") return text(facts_.user, "current_user");
  if (op == "SVFOP_CURRENT_ROLE") return text(facts_.user, "current_role");
  if (op == "SVFOP_SESSION_USER") return text(facts_.user, "session_user");
  if (op == "SVFOP_USER") return text(facts_.user, "current_user");
  if (op == "SVFOP_CURRENT_CATALOG") return text(facts_.database, "current_catalog");
  if (op == "SVFOP_CURRENT_SCHEMA") return text("public", "current_schema");
  Unsupported("the SQL value function " + op);
}

Expr Translator::Function(const Json& body, const Scope& scope) {
  std::vector<std::string> names = Names(Field(body, "funcname"));
  if (names.size() == 2 && names[0] == "pg_catalog") names.erase(names.begin());
  if (names.size() != 1) Unsupported("the function " + names.front() + "." + names.back());
  const std::string name = Lower(names[0]);
  if (!Field(body, "agg_order").is_null()) {
    Unsupported("ORDER BY inside an aggregate's arguments (sort in a subquery instead)");
  }
  if (BoolField(body, "agg_within_group")) Unsupported("WITHIN GROUP");
  if (BoolField(body, "func_variadic")) Unsupported("VARIADIC");

  const bool star = BoolField(body, "agg_star");
  const bool distinct = BoolField(body, "agg_distinct");
  std::vector<Expr> args = List(Field(body, "args"), scope);
  std::string filter;
  if (const Json& f = Field(body, "agg_filter"); !f.is_null()) {
    filter = " FILTER (WHERE " + Expression(f, scope).sql + ")";
  }
  std::string over;
  if (const Json& w = Field(body, "over"); !w.is_null()) {
    const std::string window_name = StringField(w, "name");
    over = window_name.empty() || !Field(w, "partitionClause").is_null() ||
                   !Field(w, "orderClause").is_null()
               ? " OVER (" + WindowSpec(w, scope) + ")"
               : " OVER " + QuoteIdentifier(window_name);
  }

  Expr e;
  e.name = name;
  // The call as `sql`, of PostgreSQL type `type`.
  const auto rewritten = [&](uint32_t type, std::string sql) {
    e.type = type;
    e.sql = std::move(sql);
    return e;
  };
  const auto call = [&](const std::string& engine_name, uint32_t type) {
    return rewritten(type, engine_name + "(" + (distinct ? "DISTINCT " : "") +
                               (star ? "*" : Join(args)) + ")" + filter + over);
  };
  const auto need = [&](size_t min, size_t max) {
    if (args.size() < min || args.size() > max) {
      Fail(sqlstate::kUndefinedFunction, "function " + name + " with " +
                                             std::to_string(args.size()) +
                                             " arguments does not exist");
    }
  };
  const auto constant_text = [&](size_t i) -> std::string {
    if (!args[i].text_value.has_value()) {
      Unsupported(name + "() with a field name that is not a constant");
    }
    return Lower(*args[i].text_value);
  };
  const Expr as_text = [] {
    Expr t;
    t.type = oid::kText;
    return t;
  }();

  // Aggregates and window functions.
  if (name == "count") return call("count", oid::kInt8);
  if (name == "sum") {
    need(1, 1);
    return call("sum", IsInteger(args[0].type) ? oid::kInt8 : args[0].type);
  }
  if (name == "avg") {
    need(1, 1);
    return call("avg", IsInteger(args[0].type) ? oid::kNumeric : args[0].type);
  }
  if (name == "min" || name == "max") {
    need(1, 1);
    return call(name, args[0].type);
  }
  if (name == "string_agg") {
    need(2, 2);
    Infer(args[1], as_text);
    return call("group_concat", oid::kText);
  }
  if (name == "bool_and" || name == "every") return call("min", oid::kBool);
  if (name == "bool_or") return call("max", oid::kBool);
  if (name == "stddev" || name == "stddev_samp" || name == "variance" || name == "var_samp" ||
      name == "stddev_pop" || name == "var_pop") {
    need(1, 1);
    if (distinct || !over.empty()) Unsupported(name + " with DISTINCT or OVER");
    const std::string x = "CAST(" + args[0].sql + " AS REAL)";
    const bool population = name.ends_with("_pop");
    const std::string n = "count(" + args[0].sql + ")" + filter;
    const std::string variance = "((sum(" + x + " * " + x + ")" + filter + " - sum(" + x + ")" +
                                 filter + " * sum(" + x + ")" + filter + " / " + n + ") / nullif(" +
                                 n + (population ? "" : " - 1") + ", 0))";
    return rewritten(oid::kFloat8,
                     name.starts_with("stddev") ? "sqrt(max(" + variance + ", 0))" : variance);
  }
  static constexpr std::string_view kWindowFunctions[] = {
      "row_number", "rank", "dense_rank",  "percent_rank", "cume_dist", "ntile",
      "lag",        "lead", "first_value", "last_value",   "nth_value"};
  for (std::string_view w : kWindowFunctions) {
    if (name == w) {
      uint32_t type =
          name == "row_number" || name == "rank" || name == "dense_rank" || name == "ntile"
              ? oid::kInt8
          : name == "percent_rank" || name == "cume_dist" ? oid::kFloat8
          : args.empty()                                  ? oid::kUnknown
                                                          : args[0].type;
      return call(name, type);
    }
  }
  if (name == "array_agg" || name == "json_agg" || name == "jsonb_agg") {
    Unsupported("the aggregate " + name);
  }
  if (!filter.empty() || !over.empty() || distinct || star) {
    Unsupported("FILTER, OVER, DISTINCT or * with the function " + name);
  }

  // Session and server facts.
  const auto text_constant = [&](const std::string& value) {
    return rewritten(oid::kText, QuoteLiteral(value));
  };
  if (name == "version") return text_constant(VersionString());
  if (name == "current_database") return text_constant(facts_.database);
  if (name == "current_schema") return text_constant("public");
  if (name == "current_schemas") return text_constant("{pg_catalog,public}");
  if (name == "pg_backend_pid") {
    return rewritten(oid::kInt4, "1");
  }
  if (name == "current_user" || name == "session_user") return text_constant(facts_.user);
  if (name == "now" || name == "transaction_timestamp" || name == "statement_timestamp" ||
      name == "clock_timestamp") {
    need(0, 0);
    return rewritten(oid::kTimestamptz, CanonicalTimestampSql("'now'", true));
  }

  // Dates and times.
  if (name == "date_trunc") {
    need(2, 2);
    const std::string unit = constant_text(0);
    const Expr& value = args[1];
    const std::string v = DateTimeArg(value);
    std::string sql;
    if (unit == "year") {
      sql = "strftime('%Y-01-01 00:00:00', " + v + ")";
    } else if (unit == "quarter") {
      sql = "printf('%s-%02d-01 00:00:00', strftime('%Y', " + v + "), ((CAST(strftime('%m', " + v +
            ") AS INTEGER) - 1) / 3) * 3 + 1)";
    } else if (unit == "month") {
      sql = "strftime('%Y-%m-01 00:00:00', " + v + ")";
    } else if (unit == "week") {
      sql = "strftime('%Y-%m-%d 00:00:00', " + v + ", '-6 days', 'weekday 1')";
    } else if (unit == "day") {
      sql = "strftime('%Y-%m-%d 00:00:00', " + v + ")";
    } else if (unit == "hour") {
      sql = "strftime('%Y-%m-%d %H:00:00', " + v + ")";
    } else if (unit == "minute") {
      sql = "strftime('%Y-%m-%d %H:%M:00', " + v + ")";
    } else if (unit == "second") {
      sql = "strftime('%Y-%m-%d %H:%M:%S', " + v + ")";
    } else {
      Unsupported("date_trunc('" + unit + "')");
    }
    // date_trunc of a date or timestamptz is a timestamptz (the session is UTC).
    const bool with_tz = value.type != oid::kTimestamp;
    return rewritten(with_tz ? oid::kTimestamptz : oid::kTimestamp,
                     with_tz ? "(" + sql + " || '+00')" : sql);
  }
  if (name == "extract" || name == "date_part") {
    need(2, 2);
    const std::string unit = constant_text(0);
    const std::string v = DateTimeArg(args[1]);
    const auto part = [&](const char* format) {
      return "CAST(strftime('" + std::string(format) + "', " + v + ") AS INTEGER)";
    };
    std::string sql;
    if (unit == "year") {
      sql = part("%Y");
    } else if (unit == "month") {
      sql = part("%m");
    } else if (unit == "day") {
      sql = part("%d");
    } else if (unit == "hour") {
      sql = part("%H");
    } else if (unit == "minute") {
      sql = part("%M");
    } else if (unit == "second") {
      sql = "CAST(strftime('%f', " + v + ") AS REAL)";
    } else if (unit == "dow") {
      sql = part("%w");
    } else if (unit == "isodow") {
      sql = "((" + part("%w") + " + 6) % 7 + 1)";
    } else if (unit == "doy") {
      sql = part("%j");
    } else if (unit == "quarter") {
      sql = "((" + part("%m") + " + 2) / 3)";
    } else if (unit == "epoch") {
      sql = "((julianday(" + v + ") - 2440587.5) * 86400.0)";
    } else {
      Unsupported("extract(" + unit + ")");
    }
    e.type = name == "date_part" ? oid::kFloat8 : oid::kNumeric;
    e.name = name == "extract" ? "extract" : "date_part";
    e.sql = sql;
    return e;
  }
  if (name == "age" || name == "to_char" || name == "to_date" || name == "to_timestamp" ||
      name == "make_date" || name == "justify_interval") {
    Unsupported("the function " + name);
  }

  // Text: untyped arguments are text.
  const auto text_function = [&] {
    for (Expr& a : args) Infer(a, as_text);
    return true;
  };
  if ((name == "length" || name == "char_length" || name == "character_length") &&
      text_function()) {
    need(1, 1);
    return call("length", oid::kInt4);
  }
  if (name == "octet_length" && text_function()) {
    need(1, 1);
    return rewritten(oid::kInt4, "length(CAST(" + args[0].sql + " AS BLOB))");
  }
  if ((name == "lower" || name == "upper" || name == "replace" || name == "ltrim" ||
       name == "rtrim") &&
      text_function()) {
    return call(name, oid::kText);
  }
  if ((name == "btrim" || name == "trim") && text_function()) return call("trim", oid::kText);
  if (name == "substring" || name == "substr") {
    need(2, 3);
    if (args[1].text_value.has_value()) Unsupported("substring with a regular expression");
    e.name = name;
    return call("substr", oid::kText);
  }
  if ((name == "position" || name == "strpos") && text_function()) {
    need(2, 2);
    return rewritten(oid::kInt4, "instr(" + args[0].sql + ", " + args[1].sql + ")");
  }
  if (name == "left") {
    need(2, 2);
    return rewritten(oid::kText, "substr(" + args[0].sql + ", 1, " + args[1].sql + ")");
  }
  if (name == "right") {
    need(2, 2);
    return rewritten(oid::kText, "(CASE WHEN " + args[1].sql + " > 0 THEN substr(" + args[0].sql +
                                     ", -(" + args[1].sql + ")) ELSE '' END)");
  }
  if (name == "concat" && text_function()) {
    e.type = oid::kText;
    e.sql = "(''";
    for (const Expr& a : args) e.sql += " || coalesce(CAST(" + a.sql + " AS TEXT), '')";
    e.sql += ")";
    return e;
  }
  if (name == "md5" || name == "regexp_replace" || name == "regexp_matches" ||
      name == "split_part" || name == "initcap" || name == "lpad" || name == "rpad" ||
      name == "repeat" || name == "reverse" || name == "format" || name == "to_hex") {
    Unsupported("the function " + name);
  }

  // Numbers.
  if (name == "random") {
    need(0, 0);
    return rewritten(oid::kFloat8, "(abs(random()) / 9223372036854775808.0)");
  }
  if (name == "div") {
    need(2, 2);
    return rewritten(oid::kNumeric, "CAST(" + args[0].sql + " / " + args[1].sql + " AS INTEGER)");
  }
  if (name == "abs" || name == "round" || name == "ceil" || name == "ceiling" || name == "floor" ||
      name == "trunc" || name == "sign" || name == "mod") {
    const uint32_t t = args.empty() ? oid::kUnknown : args[0].type;
    return call(name, name == "abs" || name == "mod" ? t : IsInteger(t) ? oid::kNumeric : t);
  }
  if (name == "sqrt" || name == "exp" || name == "ln" || name == "log" || name == "log10" ||
      name == "power" || name == "pow" || name == "pi" || name == "degrees" || name == "radians" ||
      name == "sin" || name == "cos" || name == "tan" || name == "asin" || name == "acos" ||
      name == "atan" || name == "atan2" || name == "cbrt") {
    if (name == "cbrt") {
      need(1, 1);
      return rewritten(oid::kFloat8, "power(" + args[0].sql + ", 1.0 / 3)");
    }
    return call(name, oid::kFloat8);
  }
  // Anything else goes to the engine under its own name; the enclave's
  // function allow-list decides, and an unknown name is 42883. Only a plain
  // name is passed on: a quoted one could hold any text.
  const bool plain =
      !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0])) &&
      name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") == std::string::npos;
  if (!plain)
    Fail(sqlstate::kUndefinedFunction, "function " + QuoteIdentifier(names[0]) + " does not exist");
  return call(name, oid::kUnknown);
}

}  // namespace airlock::tunnels::pgwire::translate
