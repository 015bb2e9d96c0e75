// The rows the "gen" test connector produces, shared with the tests that
// check what comes back out of the enclave.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "airlock/cpp/arrow.hpp"

namespace gen {

// The only credential the connector accepts.
inline constexpr const char* kExpectedSecret = "gen-s3cret-7f1c9a";

inline std::vector<airlock::arrow::Field> AllFields() {
  using airlock::arrow::Type;
  return {{"id", Type::kInt64, "", false},      {"score", Type::kFloat64, "", true},
          {"name", Type::kUtf8, "", true},      {"flag", Type::kBool, "", true},
          {"day", Type::kDate32, "", true},     {"ts", Type::kTimestampMicros, "UTC", true},
          {"t", Type::kTime64Micros, "", true}, {"small", Type::kInt32, "", true},
          {"payload", Type::kBinary, "", true}, {"nothing", Type::kNull, "", true}};
}

inline std::vector<airlock::arrow::Field> NarrowFields() {
  using airlock::arrow::Type;
  return {{"id", Type::kInt64, "", false},
          {"value", Type::kFloat64, "", true},
          {"name", Type::kUtf8, "", true}};
}

// Expected values of the "all" shape (nullopt = NULL).
inline std::optional<double> Score(int64_t row) {
  if (row % 7 == 0) return std::nullopt;
  return static_cast<double>(row) * 0.5;
}
inline std::optional<std::string> Name(int64_t row) {
  if (row % 17 == 0) return std::nullopt;
  if (row % 11 == 0) return std::string();
  if (row % 13 == 0) return "\xe5\x90\x8d\xe5\x89\x8d-\xc3\xbc-" + std::to_string(row);
  return "name-" + std::to_string(row);
}
inline bool Flag(int64_t row) {
  return row % 2 == 0;
}
inline std::optional<int32_t> Day(int64_t row) {
  if (row % 19 == 0) return std::nullopt;
  return static_cast<int32_t>(row % 40000) - 20000;
}
inline int64_t Ts(int64_t row) {
  return (row - 500) * 86400000123LL + 7;
}
inline int64_t Time(int64_t row) {
  return (row * 1234567LL) % 86400000000LL;
}
inline int32_t Small(int64_t row) {
  return static_cast<int32_t>(row % 100000) - 50000;
}
inline std::string Payload(int64_t row) {
  if (row % 5 == 0) return std::string();
  return std::string{'\0', '\xff', static_cast<char>(row & 0x7f)};
}

inline void AppendAllRow(airlock::arrow::RecordBatchBuilder& b, int64_t row) {
  b.AppendInt64(0, row);
  if (auto v = Score(row))
    b.AppendDouble(1, *v);
  else
    b.AppendNull(1);
  if (auto v = Name(row))
    b.AppendString(2, *v);
  else
    b.AppendNull(2);
  b.AppendBool(3, Flag(row));
  if (auto v = Day(row))
    b.AppendDate32(4, *v);
  else
    b.AppendNull(4);
  b.AppendTimestamp(5, Ts(row));
  b.AppendTime(6, Time(row));
  b.AppendInt32(7, Small(row));
  b.AppendString(8, Payload(row));
  b.AppendNull(9);
}

inline void AppendNarrowRow(airlock::arrow::RecordBatchBuilder& b, int64_t row) {
  b.AppendInt64(0, row);
  b.AppendDouble(1, static_cast<double>(row) * 1.25);
  b.AppendString(2, "n" + std::to_string(row));
}

}  // namespace gen
