// Arrow record batches → CSV text (RFC 4180), the result format of
// POST /t/<id>/query with Accept: text/csv or ?format=csv.
//
// Records end with CRLF. A field is quoted ("...") when it contains a comma,
// a double quote, CR or LF; quotes inside are doubled. NULL is an empty
// field; an empty string is "" (so the two stay distinguishable).
//
// Spreadsheet formula injection: a text cell (utf8, binary, date and time
// columns, and every header name) that begins with = + - @ TAB or CR gets a
// single quote (') in front, so spreadsheet programs show it as text instead
// of evaluating it. Numeric (int32, int64, float64) and bool cells are never
// changed: -5 stays -5. The text '-5' in a utf8 column becomes '-5 with the
// quote prefixed.
//
// Values are written as in the JSON format: int64 exactly, float64 in the
// shortest round-trip form (NaN, Infinity, -Infinity), bool true/false,
// binary base64, dates and times ISO 8601.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "airlock/cpp/arrow.hpp"

namespace airlock::tunnels::https {

// The header record: column names.
std::string CsvHeader(const std::vector<arrow::Field>& fields);

// Appends row `row` of `view` as one CSV record, CRLF included.
void AppendRowCsv(std::string& out, const arrow::BatchView& view, size_t row);

// Appends one text field: invalid UTF-8 replaced by U+FFFD, formula-looking
// text prefixed with a single quote, quoted when needed.
void AppendCsvTextField(std::string& out, std::string_view text);

// True when a spreadsheet would take text beginning like this for a formula.
bool LooksLikeFormula(std::string_view text);

}  // namespace airlock::tunnels::https
