// Arrow record batches → JSON text, the result format of POST /t/<id>/query:
//   {"columns":[{"name","type"}...],"rows":[[...],...],"row_count":N}
// Values: bool → true/false; int32/int64 → numbers; float64 → numbers, with
// NaN and ±infinity as the strings "NaN", "Infinity", "-Infinity"; utf8 →
// strings (invalid UTF-8 replaced by U+FFFD); binary → base64 strings;
// date32 → "YYYY-MM-DD"; timestamp → "YYYY-MM-DDTHH:MM:SS[.ffffff]" with a
// trailing "Z" when the column has a time zone (the value is UTC); time64 →
// "HH:MM:SS[.ffffff]"; null → null.
#pragma once

#include <string>
#include <vector>

#include "airlock/cpp/arrow.hpp"

namespace airlock::tunnels::https {

// [{"name":"...","type":"int64"}, ...]; timestamp columns with a zone also
// carry "timezone".
std::string ColumnsJson(const std::vector<arrow::Field>& fields);

// Appends row `row` of `view` as a JSON array.
void AppendRowJson(std::string& out, const arrow::BatchView& view, size_t row);

// "YYYY-MM-DDTHH:MM:SS[.ffffff]", with "Z" when `utc` (a column with a zone).
std::string IsoTimestamp(int64_t micros, bool utc);

}  // namespace airlock::tunnels::https
