// PostgreSQL types for the Arrow types a query channel delivers, and the
// value conversions both ways: result values to the text and binary wire
// formats, bound parameters to SQL literals.
//
//   Arrow      PostgreSQL (OID)       Arrow        PostgreSQL (OID)
//   bool       bool (16)              binary       bytea (17)
//   int32      int4 (23)              date32       date (1082)
//   int64      int8 (20)              timestamp    timestamp (1114), timestamptz (1184) with a zone
//   float64    float8 (701)           time64       time (1083)
//   utf8       text (25)              null         text (25), always NULL
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "airlock/cpp/arrow.hpp"
#include "airlock/cpp/status.hpp"

namespace airlock::tunnels::pgwire {

namespace oid {
inline constexpr uint32_t kUnspecified = 0;
inline constexpr uint32_t kBool = 16;
inline constexpr uint32_t kBytea = 17;
inline constexpr uint32_t kName = 19;
inline constexpr uint32_t kInt8 = 20;
inline constexpr uint32_t kInt2 = 21;
inline constexpr uint32_t kInt4 = 23;
inline constexpr uint32_t kText = 25;
inline constexpr uint32_t kOid = 26;
inline constexpr uint32_t kFloat4 = 700;
inline constexpr uint32_t kFloat8 = 701;
inline constexpr uint32_t kUnknown = 705;
inline constexpr uint32_t kBpchar = 1042;
inline constexpr uint32_t kVarchar = 1043;
inline constexpr uint32_t kDate = 1082;
inline constexpr uint32_t kTime = 1083;
inline constexpr uint32_t kTimestamp = 1114;
inline constexpr uint32_t kTimestamptz = 1184;
inline constexpr uint32_t kNumeric = 1700;
}  // namespace oid

uint32_t OidFor(const arrow::Field& field);
// pg_type.typlen: the fixed size in bytes, or -1 for variable length.
int16_t TypeLength(uint32_t type_oid);

// Appends the text-format (format 0) bytes of a non-NULL value, as
// PostgreSQL 15 prints it with DateStyle ISO, TimeZone UTC, bytea_output hex.
void AppendText(std::string& out, const arrow::BatchView& view, size_t col, size_t row);
// Appends the binary-format (format 1) bytes of a non-NULL value.
void AppendBinary(std::string& out, const arrow::BatchView& view, size_t col, size_t row);

// The columns of a result schema the channel delivered (a struct).
Result<std::vector<arrow::Field>> ResultFields(const arrow::OwnedSchema& schema);

// How a result column is shown to clients. The engine has no boolean or
// date/time values: a comparison comes back as an integer and date_trunc()
// as text. Where the translated statement knows the PostgreSQL type of the
// column, the values are shown as that type (t/f, a timestamp), as
// PostgreSQL would show them.
struct ColumnPresentation {
  uint32_t type_oid = 0;
  enum class Conversion { kNone, kIntegerAsBool, kTextAsDateTime } conversion = Conversion::kNone;
};
// `translated`: the PostgreSQL type of each column (0 unknown), or empty.
ColumnPresentation PresentColumn(const arrow::Field& field, uint32_t translated);
// Appends a non-NULL value as `presentation` says, in `format` (0 text,
// 1 binary). False when a text value cannot be read as its date/time type.
bool AppendPresented(std::string& out, const ColumnPresentation& presentation, int16_t format,
                     const arrow::BatchView& view, size_t col, size_t row);

// A bound parameter as an SQL literal for the enclave's engine: NULL, a
// number (negative numbers in parentheses), TRUE/FALSE, X'hex' for bytea,
// otherwise a quoted string ('' doubled). `format` 0 text, 1 binary; `value`
// nullopt is SQL NULL. Errors carry the SQLSTATE to report in their message
// prefix: see ParameterError.
struct ParameterError {
  std::string sqlstate;  // 22P02 invalid text, 22P03 invalid binary, 42P18 unknown type, ...
  std::string message;
};
std::optional<ParameterError> ParameterLiteral(uint32_t type_oid, int16_t format,
                                               std::optional<std::string_view> value,
                                               std::string* literal);

}  // namespace airlock::tunnels::pgwire
