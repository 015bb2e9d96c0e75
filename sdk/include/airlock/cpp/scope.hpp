// Client-side enforcement of a DatasetScope, for connectors that cannot push
// the scope down to their source (files, APIs, document stores):
//
//  - text -> typed value parsers (dates, RFC 3339 timestamps, numbers, bools)
//    shared by connectors and by the row filter when it reads literals;
//  - Value: one typed cell, non-owning for strings;
//  - RowFilter: a DatasetScope's row_filter compiled against the dataset's
//    column types once, then evaluated per row without allocating;
//  - masking functions that need no cryptography (redact, last4) and the
//    parser of mask names (hash lives in masking.hpp, which needs libcrypto);
//  - ScopePlan: columns to deliver (masked ones become utf8), the compiled
//    filter, and validation that fails closed.
//
// Semantics (what a connector promises by using these helpers):
//  - Comparisons follow SQL: a NULL cell satisfies no condition except
//    is_null (so `ne`, `not_in` and `like` exclude NULL rows too).
//  - Literals are converted to the column's type when the filter is compiled;
//    a literal that cannot be (e.g. "abc" against int64) is InvalidArgument.
//  - `like` is case-sensitive, `%` matches any run, `_` one UTF-8 character,
//    `\` escapes the next pattern character (PostgreSQL's default). utf8 and
//    binary columns only.
//  - A scope naming a column, mask or filter column the dataset does not have
//    is InvalidArgument; an unknown mask function is InvalidArgument. Never
//    deliver a raw value because a name did not resolve.
//  - NULL stays NULL under every mask (its nullness is not hidden).
//
// Header-only; depends on arrow.hpp and values.hpp. Thread-safety: compiled
// objects are immutable after Make/Compile and may be shared between threads.
#pragma once

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "airlock/cpp/arrow.hpp"
#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"

namespace airlock::scope {

// ---------------------------------------------------------------------------
// Text -> typed values. All parsers are strict: the whole text must be
// consumed, no surrounding whitespace.

namespace detail {

inline bool ParseDigits(std::string_view text, size_t pos, size_t count, int64_t* out) {
  if (pos + count > text.size()) return false;
  int64_t value = 0;
  for (size_t i = pos; i < pos + count; ++i) {
    const char c = text[i];
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  *out = value;
  return true;
}

inline unsigned DaysInMonth(int64_t year, unsigned month) {
  static constexpr unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month == 2) {
    const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return leap ? 29 : 28;
  }
  return kDays[month - 1];
}

// "YYYY-MM-DD" at the start of `text`; days since the epoch.
inline bool ParseDatePrefix(std::string_view text, int64_t* days) {
  int64_t year = 0, month = 0, day = 0;
  if (text.size() < 10 || text[4] != '-' || text[7] != '-') return false;
  if (!ParseDigits(text, 0, 4, &year) || !ParseDigits(text, 5, 2, &month) ||
      !ParseDigits(text, 8, 2, &day)) {
    return false;
  }
  if (month < 1 || month > 12 || day < 1 || day > DaysInMonth(year, static_cast<unsigned>(month))) {
    return false;
  }
  *days = arrow::DaysFromCivil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  return true;
}

// "HH:MM:SS[.f{1,9}]" at `text[pos]`; advances pos. Fractions beyond
// microseconds are truncated. Second 60 (a leap second) is accepted.
inline bool ParseClock(std::string_view text, size_t* pos, int64_t* micros) {
  int64_t hour = 0, minute = 0, second = 0;
  const size_t p = *pos;
  if (text.size() < p + 8 || text[p + 2] != ':' || text[p + 5] != ':') return false;
  if (!ParseDigits(text, p, 2, &hour) || !ParseDigits(text, p + 3, 2, &minute) ||
      !ParseDigits(text, p + 6, 2, &second)) {
    return false;
  }
  if (hour > 23 || minute > 59 || second > 60) return false;
  int64_t fraction = 0;
  size_t q = p + 8;
  if (q < text.size() && text[q] == '.') {
    ++q;
    const size_t start = q;
    int64_t scale = 100000;
    while (q < text.size() && text[q] >= '0' && text[q] <= '9') {
      if (q - start < 6) fraction += (text[q] - '0') * scale;
      scale /= 10;
      ++q;
    }
    if (q == start || q - start > 9) return false;
  }
  *micros = ((hour * 60 + minute) * 60 + second) * 1000000 + fraction;
  *pos = q;
  return true;
}

}  // namespace detail

// "YYYY-MM-DD" -> days since 1970-01-01. Calendar-checked (no 2023-02-30).
inline std::optional<int32_t> ParseDate32(std::string_view text) {
  int64_t days = 0;
  if (text.size() != 10 || !detail::ParseDatePrefix(text, &days)) return std::nullopt;
  return static_cast<int32_t>(days);
}

// RFC 3339 date-time -> microseconds since the epoch (UTC):
// "YYYY-MM-DD(T|t| )HH:MM:SS[.fraction](Z|z|+HH:MM|-HH:MM)". When
// `require_offset` is false a missing offset reads as UTC and a bare
// "YYYY-MM-DD" reads as its midnight UTC.
inline std::optional<int64_t> ParseTimestampMicros(std::string_view text,
                                                   bool require_offset = false) {
  int64_t days = 0;
  if (!detail::ParseDatePrefix(text, &days)) return std::nullopt;
  constexpr int64_t kMicrosPerDay = 86400LL * 1000000LL;
  if (text.size() == 10) {
    if (require_offset) return std::nullopt;
    return days * kMicrosPerDay;
  }
  const char sep = text[10];
  if (sep != 'T' && sep != 't' && sep != ' ') return std::nullopt;
  size_t pos = 11;
  int64_t clock = 0;
  if (!detail::ParseClock(text, &pos, &clock)) return std::nullopt;
  int64_t offset_micros = 0;
  if (pos == text.size()) {
    if (require_offset) return std::nullopt;
  } else if ((text[pos] == 'Z' || text[pos] == 'z') && pos + 1 == text.size()) {
    // UTC.
  } else if ((text[pos] == '+' || text[pos] == '-') && pos + 6 == text.size() &&
             text[pos + 3] == ':') {
    int64_t oh = 0, om = 0;
    if (!detail::ParseDigits(text, pos + 1, 2, &oh) ||
        !detail::ParseDigits(text, pos + 4, 2, &om) || oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset_micros = (oh * 60 + om) * 60 * 1000000;
    if (text[pos] == '-') offset_micros = -offset_micros;
  } else {
    return std::nullopt;
  }
  return days * kMicrosPerDay + clock - offset_micros;
}

// "HH:MM:SS[.fraction]" -> microseconds since midnight.
inline std::optional<int64_t> ParseTime64Micros(std::string_view text) {
  size_t pos = 0;
  int64_t micros = 0;
  if (!detail::ParseClock(text, &pos, &micros) || pos != text.size()) return std::nullopt;
  return micros;
}

// Decimal integer with optional leading '-'; the whole text, no overflow.
inline std::optional<int64_t> ParseInt64(std::string_view text) {
  int64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || text.empty()) return std::nullopt;
  return value;
}

// A finite decimal number ("1.5", "-2", "3e8"); no "inf"/"nan", no hex.
inline std::optional<double> ParseFloat64(std::string_view text) {
  if (text.empty()) return std::nullopt;
  const char first = text[0];
  if (!(first == '-' || first == '.' || (first >= '0' && first <= '9'))) return std::nullopt;
  double value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value, std::chars_format::general);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

// "true" / "false", ASCII case-insensitive.
inline std::optional<bool> ParseBool(std::string_view text) {
  auto equals = [](std::string_view a, std::string_view lower) {
    if (a.size() != lower.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      const char c = (a[i] >= 'A' && a[i] <= 'Z') ? static_cast<char>(a[i] - 'A' + 'a') : a[i];
      if (c != lower[i]) return false;
    }
    return true;
  };
  if (equals(text, "true")) return true;
  if (equals(text, "false")) return false;
  return std::nullopt;
}

// ---------------------------------------------------------------------------
// Value: one typed cell.

// `type` is the column's Arrow type; int32 cells travel as int64 in `i`,
// date32 (days), timestamp and time64 (micros) also use `i`; utf8 and binary
// use `s`, which borrows (it must outlive the evaluation, nothing more).
struct Value {
  arrow::Type type = arrow::Type::kNull;
  bool b = false;
  int64_t i = 0;
  double d = 0;
  std::string_view s;

  bool is_null() const { return type == arrow::Type::kNull; }

  static Value Null() { return {}; }
  static Value Bool(bool v) { return {arrow::Type::kBool, v, 0, 0, {}}; }
  static Value Int64(int64_t v) { return {arrow::Type::kInt64, false, v, 0, {}}; }
  static Value Float64(double v) { return {arrow::Type::kFloat64, false, 0, v, {}}; }
  static Value String(std::string_view v) { return {arrow::Type::kUtf8, false, 0, 0, v}; }
  static Value Date32(int32_t days) { return {arrow::Type::kDate32, false, days, 0, {}}; }
  static Value Timestamp(int64_t micros) {
    return {arrow::Type::kTimestampMicros, false, micros, 0, {}};
  }
  static Value Time64(int64_t micros) { return {arrow::Type::kTime64Micros, false, micros, 0, {}}; }
};

// Reads row `row` of column `col` of a batch as a Value (NULL-aware).
inline Value ValueAt(const arrow::BatchView& view, size_t col, size_t row) {
  if (view.IsNull(col, row)) return Value::Null();
  switch (view.field(col).type) {
    case arrow::Type::kBool:
      return Value::Bool(view.GetBool(col, row));
    case arrow::Type::kInt32:
      return Value::Int64(view.GetInt32(col, row));
    case arrow::Type::kInt64:
      return Value::Int64(view.GetInt64(col, row));
    case arrow::Type::kFloat64:
      return Value::Float64(view.GetDouble(col, row));
    case arrow::Type::kUtf8:
      return Value::String(view.GetString(col, row));
    case arrow::Type::kBinary: {
      Value v = Value::String(view.GetString(col, row));
      v.type = arrow::Type::kBinary;
      return v;
    }
    case arrow::Type::kDate32:
      return Value::Date32(view.GetDate32(col, row));
    case arrow::Type::kTimestampMicros:
      return Value::Timestamp(view.GetTimestamp(col, row));
    case arrow::Type::kTime64Micros:
      return Value::Time64(view.GetTime(col, row));
    case arrow::Type::kNull:
      break;
  }
  return Value::Null();
}

// Canonical text of a non-null value, as masks see it: integers in decimal,
// floats in shortest round-trip form, bools "true"/"false", dates
// "YYYY-MM-DD", timestamps and times as arrow::FormatTimestamp/FormatTime
// (UTC marked "+00" when `utc`), strings as they are. Appends to `out`.
inline void AppendText(const Value& value, std::string* out, bool utc = true) {
  switch (value.type) {
    case arrow::Type::kNull:
      return;
    case arrow::Type::kBool:
      out->append(value.b ? "true" : "false");
      return;
    case arrow::Type::kInt32:
    case arrow::Type::kInt64: {
      char buf[24];
      auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, value.i);
      out->append(buf, static_cast<size_t>(ptr - buf));
      return;
    }
    case arrow::Type::kFloat64: {
      char buf[32];
      auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, value.d);
      out->append(buf, static_cast<size_t>(ptr - buf));
      return;
    }
    case arrow::Type::kUtf8:
    case arrow::Type::kBinary:
      out->append(value.s);
      return;
    case arrow::Type::kDate32:
      out->append(arrow::FormatDate32(static_cast<int32_t>(value.i)));
      return;
    case arrow::Type::kTimestampMicros:
      out->append(arrow::FormatTimestamp(value.i, utc));
      return;
    case arrow::Type::kTime64Micros:
      out->append(arrow::FormatTime(value.i));
      return;
  }
}

// ---------------------------------------------------------------------------
// Row filter.

namespace detail {

// How a column's cells are compared.
enum class Domain : uint8_t { kNone, kBool, kInt, kFloat, kString };

inline Domain DomainOf(arrow::Type type) {
  switch (type) {
    case arrow::Type::kBool:
      return Domain::kBool;
    case arrow::Type::kInt32:
    case arrow::Type::kInt64:
    case arrow::Type::kDate32:
    case arrow::Type::kTimestampMicros:
    case arrow::Type::kTime64Micros:
      return Domain::kInt;
    case arrow::Type::kFloat64:
      return Domain::kFloat;
    case arrow::Type::kUtf8:
    case arrow::Type::kBinary:
      return Domain::kString;
    case arrow::Type::kNull:
      return Domain::kNone;
  }
  return Domain::kNone;
}

enum class Op : uint8_t { kEq, kNe, kLt, kLe, kGt, kGe, kIn, kNotIn, kIsNull, kNotNull, kLike };

inline std::optional<Op> ParseOp(std::string_view op) {
  if (op == "eq") return Op::kEq;
  if (op == "ne") return Op::kNe;
  if (op == "lt") return Op::kLt;
  if (op == "le") return Op::kLe;
  if (op == "gt") return Op::kGt;
  if (op == "ge") return Op::kGe;
  if (op == "in") return Op::kIn;
  if (op == "not_in") return Op::kNotIn;
  if (op == "is_null") return Op::kIsNull;
  if (op == "not_null") return Op::kNotNull;
  if (op == "like") return Op::kLike;
  return std::nullopt;
}

// A literal converted to a column's domain. For int columns compared with a
// non-integral number the comparison moves to the float domain.
struct Literal {
  Domain domain = Domain::kNone;
  bool b = false;
  int64_t i = 0;
  double d = 0;
  std::string s;
};

inline size_t Utf8Length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead >> 5) == 0x6) return 2;
  if ((lead >> 4) == 0xE) return 3;
  if ((lead >> 3) == 0x1E) return 4;
  return 1;  // invalid lead byte: step one byte
}

// A LIKE pattern as tokens: literal bytes, '_' (one character), '%' (any run).
struct LikePattern {
  enum Kind : uint8_t { kByte, kOne, kAny };
  std::vector<std::pair<Kind, char>> tokens;

  static LikePattern Compile(std::string_view pattern) {
    LikePattern p;
    for (size_t i = 0; i < pattern.size(); ++i) {
      const char c = pattern[i];
      if (c == '\\' && i + 1 < pattern.size()) {
        p.tokens.emplace_back(kByte, pattern[++i]);
      } else if (c == '%') {
        if (p.tokens.empty() || p.tokens.back().first != kAny) p.tokens.emplace_back(kAny, 0);
      } else if (c == '_') {
        p.tokens.emplace_back(kOne, 0);
      } else {
        p.tokens.emplace_back(kByte, c);
      }
    }
    return p;
  }

  // Greedy match with backtracking to the last '%' (linear for one '%',
  // O(n*m) worst case); allocation-free.
  bool Matches(std::string_view text) const {
    size_t t = 0, p = 0;
    size_t star_p = std::string_view::npos, star_t = 0;
    while (t < text.size()) {
      if (p < tokens.size() && tokens[p].first == kByte && tokens[p].second == text[t]) {
        ++p;
        ++t;
      } else if (p < tokens.size() && tokens[p].first == kOne) {
        t += Utf8Length(static_cast<unsigned char>(text[t]));
        ++p;
      } else if (p < tokens.size() && tokens[p].first == kAny) {
        star_p = p++;
        star_t = t;
      } else if (star_p != std::string_view::npos) {
        p = star_p + 1;
        star_t += Utf8Length(static_cast<unsigned char>(text[star_t]));
        t = star_t;
      } else {
        return false;
      }
    }
    if (t > text.size()) return false;  // '_' consumed a truncated character
    while (p < tokens.size() && tokens[p].first == kAny) ++p;
    return p == tokens.size();
  }
};

struct Condition {
  size_t column = 0;
  Op op = Op::kEq;
  arrow::Type column_type = arrow::Type::kNull;
  Domain domain = Domain::kNone;  // the domain of the comparison
  Literal literal;
  std::vector<int64_t> ints;         // in / not_in, sorted
  std::vector<double> floats;        // in / not_in, sorted
  std::vector<std::string> strings;  // in / not_in, sorted
  std::vector<uint8_t> bools;        // in / not_in: which of false(0)/true(1) are listed
  LikePattern like;
};

inline bool SameCategory(arrow::Type column, arrow::Type cell) {
  if (column == cell) return true;
  if (column == arrow::Type::kInt32 && cell == arrow::Type::kInt64) return true;
  if (column == arrow::Type::kBinary && cell == arrow::Type::kUtf8) return true;
  return false;
}

template <typename T>
inline int Compare(const T& a, const T& b) {
  return a < b ? -1 : (b < a ? 1 : 0);
}

inline bool ApplyOrdering(Op op, int cmp) {
  switch (op) {
    case Op::kEq:
      return cmp == 0;
    case Op::kNe:
      return cmp != 0;
    case Op::kLt:
      return cmp < 0;
    case Op::kLe:
      return cmp <= 0;
    case Op::kGt:
      return cmp > 0;
    case Op::kGe:
      return cmp >= 0;
    default:
      return false;
  }
}

inline bool Evaluate(const Condition& c, const Value& v) {
  if (c.op == Op::kIsNull) return v.is_null();
  if (v.is_null()) return false;
  if (!SameCategory(c.column_type, v.type)) return false;  // mis-typed cell: fail closed
  if (c.op == Op::kNotNull) return true;
  switch (c.op) {
    case Op::kLike:
      return c.like.Matches(v.s);
    case Op::kIn:
    case Op::kNotIn: {
      bool found = false;
      switch (c.domain) {
        case Domain::kBool:
          found = c.bools[v.b ? 1 : 0] != 0;
          break;
        case Domain::kInt:
          found = std::binary_search(c.ints.begin(), c.ints.end(), v.i);
          break;
        case Domain::kFloat: {
          const double x = v.type == arrow::Type::kFloat64 ? v.d : static_cast<double>(v.i);
          found = std::binary_search(c.floats.begin(), c.floats.end(), x);
          break;
        }
        case Domain::kString: {
          auto it =
              std::lower_bound(c.strings.begin(), c.strings.end(), v.s,
                               [](const std::string& a, std::string_view b) { return a < b; });
          found = it != c.strings.end() && std::string_view(*it) == v.s;
          break;
        }
        case Domain::kNone:
          return false;
      }
      return c.op == Op::kIn ? found : !found;
    }
    default:
      break;
  }
  switch (c.domain) {
    case Domain::kBool:
      return ApplyOrdering(c.op, Compare<int>(v.b, c.literal.b));
    case Domain::kInt:
      return ApplyOrdering(c.op, Compare(v.i, c.literal.i));
    case Domain::kFloat: {
      const double x = v.type == arrow::Type::kFloat64 ? v.d : static_cast<double>(v.i);
      if (x != x || c.literal.d != c.literal.d) return c.op == Op::kNe;  // NaN: only ne holds
      return ApplyOrdering(c.op, Compare(x, c.literal.d));
    }
    case Domain::kString:
      return ApplyOrdering(c.op, Compare(v.s, std::string_view(c.literal.s)));
    case Domain::kNone:
      return false;
  }
  return false;
}

// Converts JSON literal `j` for a column of `type`. On success fills `out`
// (whose domain may be kFloat for an int column and a fractional number).
inline Status ConvertLiteral(const Json& j, arrow::Type type, std::string_view where,
                             Literal* out) {
  const std::string type_name = arrow::TypeName(type);
  auto bad = [&](std::string_view want) {
    return Status::InvalidArgument(std::string(where) + ": column is " + type_name +
                                   ", value must be " + std::string(want));
  };
  if (j.is_null())
    return Status::InvalidArgument(std::string(where) + ": value must not be null (use is_null)");
  switch (type) {
    case arrow::Type::kBool: {
      out->domain = Domain::kBool;
      if (j.is_boolean()) {
        out->b = j.get<bool>();
        return Status::Ok();
      }
      if (j.is_string()) {
        if (auto parsed = ParseBool(j.get_ref<const std::string&>())) {
          out->b = *parsed;
          return Status::Ok();
        }
      }
      return bad("true or false");
    }
    case arrow::Type::kInt32:
    case arrow::Type::kInt64: {
      out->domain = Domain::kInt;
      if (j.is_number_integer()) {
        if (j.is_number_unsigned() &&
            j.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
          out->domain = Domain::kFloat;
          out->d = static_cast<double>(j.get<uint64_t>());
          return Status::Ok();
        }
        out->i = j.get<int64_t>();
        return Status::Ok();
      }
      std::optional<double> number;
      if (j.is_number_float()) number = j.get<double>();
      if (j.is_string()) {
        const auto& text = j.get_ref<const std::string&>();
        if (auto parsed = ParseInt64(text)) {
          out->i = *parsed;
          return Status::Ok();
        }
        number = ParseFloat64(text);
      }
      if (!number) return bad("a number");
      out->domain = Domain::kFloat;
      out->d = *number;
      return Status::Ok();
    }
    case arrow::Type::kFloat64: {
      out->domain = Domain::kFloat;
      if (j.is_number()) {
        out->d = j.get<double>();
        return Status::Ok();
      }
      if (j.is_string()) {
        if (auto parsed = ParseFloat64(j.get_ref<const std::string&>())) {
          out->d = *parsed;
          return Status::Ok();
        }
      }
      return bad("a number");
    }
    case arrow::Type::kUtf8:
    case arrow::Type::kBinary:
      out->domain = Domain::kString;
      if (j.is_string()) {
        out->s = j.get<std::string>();
        return Status::Ok();
      }
      if (j.is_primitive()) {
        out->s = j.dump();  // 42 -> "42", true -> "true"
        return Status::Ok();
      }
      return bad("a string");
    case arrow::Type::kDate32:
      out->domain = Domain::kInt;
      if (j.is_string()) {
        if (auto parsed = ParseDate32(j.get_ref<const std::string&>())) {
          out->i = *parsed;
          return Status::Ok();
        }
      }
      return bad("a date \"YYYY-MM-DD\"");
    case arrow::Type::kTimestampMicros:
      out->domain = Domain::kInt;
      if (j.is_string()) {
        if (auto parsed = ParseTimestampMicros(j.get_ref<const std::string&>())) {
          out->i = *parsed;
          return Status::Ok();
        }
      }
      return bad("an RFC 3339 timestamp or a date");
    case arrow::Type::kTime64Micros:
      out->domain = Domain::kInt;
      if (j.is_string()) {
        if (auto parsed = ParseTime64Micros(j.get_ref<const std::string&>())) {
          out->i = *parsed;
          return Status::Ok();
        }
      }
      return bad("a time \"HH:MM:SS\"");
    case arrow::Type::kNull:
      out->domain = Domain::kNone;
      return Status::Ok();
  }
  return bad("a supported literal");
}

}  // namespace detail

// A row_filter compiled against a dataset's columns. All conditions must hold
// (AND). Compile once per pull; Matches() does not allocate.
class RowFilter {
 public:
  RowFilter() = default;

  // Fails with InvalidArgument naming the condition (row_filter[i]) when a
  // column does not exist, the op is unknown, or a literal does not fit the
  // column's type.
  static Result<RowFilter> Compile(const std::vector<RowCondition>& conditions,
                                   const std::vector<arrow::Field>& columns) {
    RowFilter filter;
    for (size_t n = 0; n < conditions.size(); ++n) {
      const RowCondition& rc = conditions[n];
      const std::string where = "row_filter[" + std::to_string(n) + "] (" + rc.column + ")";
      auto op = detail::ParseOp(rc.op);
      if (!op) return Status::InvalidArgument(where + ": unknown op '" + rc.op + "'");
      size_t index = columns.size();
      for (size_t i = 0; i < columns.size(); ++i) {
        if (columns[i].name == rc.column) {
          index = i;
          break;
        }
      }
      if (index == columns.size()) {
        return Status::InvalidArgument(where + ": the dataset has no column '" + rc.column + "'");
      }
      detail::Condition c;
      c.column = index;
      c.op = *op;
      c.column_type = columns[index].type;
      c.domain = detail::DomainOf(c.column_type);
      if (c.op == detail::Op::kLike) {
        if (c.domain != detail::Domain::kString) {
          return Status::InvalidArgument(where + ": like needs a utf8 column, not " +
                                         arrow::TypeName(c.column_type));
        }
        if (!rc.value.is_string()) {
          return Status::InvalidArgument(where + ": like needs a string pattern");
        }
        c.like = detail::LikePattern::Compile(rc.value.get_ref<const std::string&>());
      } else if (c.op == detail::Op::kIn || c.op == detail::Op::kNotIn) {
        if (!rc.value.is_array()) return Status::InvalidArgument(where + ": needs an array value");
        AIRLOCK_RETURN_IF_ERROR(CompileList(rc.value, where, &c));
      } else if (c.op != detail::Op::kIsNull && c.op != detail::Op::kNotNull) {
        if (!rc.value.is_primitive()) {
          return Status::InvalidArgument(where + ": needs a scalar value");
        }
        AIRLOCK_RETURN_IF_ERROR(detail::ConvertLiteral(rc.value, c.column_type, where, &c.literal));
        c.domain = c.literal.domain;
      }
      filter.conditions_.push_back(std::move(c));
      if (std::find(filter.columns_.begin(), filter.columns_.end(), index) ==
          filter.columns_.end()) {
        filter.columns_.push_back(index);
      }
    }
    return filter;
  }

  bool empty() const { return conditions_.empty(); }
  // The distinct source columns the filter reads, in first-use order.
  const std::vector<size_t>& columns() const { return columns_; }

  // `get(size_t column)` returns the Value of that source column for the row.
  template <typename GetValue>
  requires std::is_invocable_r_v<Value, GetValue, size_t>
  bool Matches(GetValue&& get) const {
    for (const detail::Condition& c : conditions_) {
      if (!detail::Evaluate(c, get(c.column))) return false;
    }
    return true;
  }

  // `row[i]` is the Value of source column i.
  bool Matches(const std::vector<Value>& row) const {
    return Matches([&row](size_t i) { return i < row.size() ? row[i] : Value::Null(); });
  }

 private:
  static Status CompileList(const Json& list, const std::string& where, detail::Condition* c) {
    c->bools.assign(2, 0);
    bool any_float = false;
    std::vector<detail::Literal> literals;
    for (size_t k = 0; k < list.size(); ++k) {
      if (!list[k].is_primitive()) {
        return Status::InvalidArgument(where + ": list entries must be scalars");
      }
      detail::Literal lit;
      AIRLOCK_RETURN_IF_ERROR(detail::ConvertLiteral(list[k], c->column_type,
                                                     where + "[" + std::to_string(k) + "]", &lit));
      any_float = any_float || lit.domain == detail::Domain::kFloat;
      literals.push_back(std::move(lit));
    }
    // An int column listed against fractional numbers compares as float.
    if (c->domain == detail::Domain::kInt && any_float) c->domain = detail::Domain::kFloat;
    for (const auto& lit : literals) {
      switch (c->domain) {
        case detail::Domain::kBool:
          c->bools[lit.b ? 1 : 0] = 1;
          break;
        case detail::Domain::kInt:
          c->ints.push_back(lit.i);
          break;
        case detail::Domain::kFloat:
          c->floats.push_back(lit.domain == detail::Domain::kFloat ? lit.d
                                                                   : static_cast<double>(lit.i));
          break;
        case detail::Domain::kString:
          c->strings.push_back(lit.s);
          break;
        case detail::Domain::kNone:
          break;
      }
    }
    std::sort(c->ints.begin(), c->ints.end());
    std::sort(c->floats.begin(), c->floats.end());
    std::sort(c->strings.begin(), c->strings.end());
    return Status::Ok();
  }

  std::vector<detail::Condition> conditions_;
  std::vector<size_t> columns_;
};

// Convenience for one-off checks: compiles `conditions` against `columns`
// and evaluates them on `row` (row[i] is the Value of columns[i]).
inline Result<bool> RowMatches(const std::vector<RowCondition>& conditions,
                               const std::vector<arrow::Field>& columns,
                               const std::vector<Value>& row) {
  AIRLOCK_ASSIGN_OR_RETURN(RowFilter filter, RowFilter::Compile(conditions, columns));
  return filter.Matches(row);
}

// ---------------------------------------------------------------------------
// Masks.

enum class MaskFunction : uint8_t {
  kRedact,  // "***"
  kLast4,   // "****" + the last 4 characters; 4 characters or fewer: "****"
  kHash,    // lowercase hex SHA-256 of the canonical text (masking.hpp)
};

inline const char* MaskFunctionName(MaskFunction fn) {
  switch (fn) {
    case MaskFunction::kRedact:
      return "redact";
    case MaskFunction::kLast4:
      return "last4";
    case MaskFunction::kHash:
      return "hash";
  }
  return "redact";
}

// Unknown names fail (fail closed: a typo must never deliver raw values).
inline Result<MaskFunction> ParseMaskFunction(std::string_view name) {
  if (name == "redact") return MaskFunction::kRedact;
  if (name == "last4") return MaskFunction::kLast4;
  if (name == "hash") return MaskFunction::kHash;
  return Status::InvalidArgument("unknown mask function '" + std::string(name) +
                                 "' (known: redact, last4, hash)");
}

inline constexpr std::string_view kRedacted = "***";

inline void MaskRedact(std::string* out) {
  out->assign(kRedacted);
}

// Keeps the last 4 UTF-8 characters; a value of 4 characters or fewer would
// be revealed whole, so it becomes "****".
inline void MaskLast4(std::string_view value, std::string* out) {
  size_t start = value.size();
  int kept = 0;
  while (start > 0 && kept < 5) {
    --start;
    while (start > 0 && (static_cast<unsigned char>(value[start]) & 0xC0) == 0x80) --start;
    ++kept;
  }
  out->assign("****");
  if (kept < 5) return;  // 4 characters or fewer
  size_t tail = value.size();
  for (int k = 0; k < 4; ++k) {
    --tail;
    while (tail > 0 && (static_cast<unsigned char>(value[tail]) & 0xC0) == 0x80) --tail;
  }
  out->append(value.substr(tail));
}

// ---------------------------------------------------------------------------
// ScopePlan: what a connector delivers for one scoped pull.

struct OutputColumn {
  size_t source = 0;                 // index in the source columns
  arrow::Field field;                // as delivered (utf8, nullable when masked)
  std::optional<MaskFunction> mask;  // set when the column is masked
};

class ScopePlan {
 public:
  // Validates `scope` against the dataset's `source` columns (InvalidArgument
  // naming the column for an unknown scoped column, mask column, filter column
  // or mask function) and resolves what to deliver, in source order.
  static Result<ScopePlan> Make(const std::vector<arrow::Field>& source,
                                const DatasetScope& scope) {
    ScopePlan plan;
    auto find = [&source](std::string_view name) -> std::optional<size_t> {
      for (size_t i = 0; i < source.size(); ++i) {
        if (source[i].name == name) return i;
      }
      return std::nullopt;
    };
    for (const auto& name : scope.columns) {
      if (!find(name)) {
        return Status::InvalidArgument("scope names column '" + name +
                                       "' which the dataset does not have");
      }
    }
    std::vector<std::optional<MaskFunction>> masks(source.size());
    for (const auto& [name, function] : scope.masks) {
      auto index = find(name);
      if (!index) {
        return Status::InvalidArgument("scope masks column '" + name +
                                       "' which the dataset does not have");
      }
      auto parsed = ParseMaskFunction(function);
      if (!parsed.ok()) return parsed.status().WithContext("scope.masks." + name);
      masks[*index] = *parsed;
    }
    AIRLOCK_ASSIGN_OR_RETURN(plan.filter_, RowFilter::Compile(scope.row_filter, source));
    plan.needed_.assign(source.size(), false);
    for (size_t i = 0; i < source.size(); ++i) {
      if (!scope.AllowsColumn(source[i].name)) continue;
      OutputColumn out;
      out.source = i;
      out.field = source[i];
      out.mask = masks[i];
      if (out.mask) {
        out.field.type = arrow::Type::kUtf8;
        out.field.timezone.clear();
        out.field.nullable = true;
      }
      plan.outputs_.push_back(std::move(out));
      plan.needed_[i] = true;
    }
    for (size_t c : plan.filter_.columns()) plan.needed_[c] = true;
    return plan;
  }

  const std::vector<OutputColumn>& outputs() const { return outputs_; }
  std::vector<arrow::Field> output_fields() const {
    std::vector<arrow::Field> fields;
    fields.reserve(outputs_.size());
    for (const auto& o : outputs_) fields.push_back(o.field);
    return fields;
  }
  const RowFilter& filter() const { return filter_; }
  // needed()[i]: source column i is delivered or read by the filter.
  const std::vector<bool>& needed() const { return needed_; }

 private:
  std::vector<OutputColumn> outputs_;
  RowFilter filter_;
  std::vector<bool> needed_;
};

}  // namespace airlock::scope
