// A dataset's source columns: declared types where the configuration gives
// them, otherwise inferred from the first `infer_rows` records:
//  - CSV text: bool (true/false, any case) ⊂ ... int64 ⊂ float64 ⊂ utf8; an
//    empty field is NULL and says nothing; a column with no values is utf8.
//  - JSON Lines: members become columns in order of first appearance; JSON
//    bools → bool, integers → int64, integers mixed with fractions → float64,
//    strings, nested objects/arrays and any other mix → utf8 (JSON text).
// Timestamps are UTC ("tsu:UTC"); text without an offset is read as UTC.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "airlock/cpp/arrow.hpp"
#include "airlock/cpp/scope.hpp"
#include "airlock/cpp/status.hpp"
#include "config.h"
#include "csv_reader.h"
#include "jsonl_reader.h"

namespace airlock::connectors::files {

// Reads the header (if any) and up to `infer_rows` records, then rewinds.
// InvalidArgument naming the line for a malformed record or a record whose
// field count differs from the header's; naming the column for a declared
// column the header lacks.
Result<std::vector<arrow::Field>> CsvSchema(CsvReader* reader, const DatasetConfig& dataset,
                                            int64_t infer_rows);

// Reads up to `infer_rows` objects, then rewinds.
Result<std::vector<arrow::Field>> JsonlSchema(JsonlReader* reader, const DatasetConfig& dataset,
                                              int64_t infer_rows);

// A CSV field as a cell of `type`; nullopt when the text does not fit. An
// empty field is NULL, except a quoted empty field ("") in a utf8 column,
// which is the empty string.
std::optional<scope::Value> CsvCell(std::string_view text, bool quoted, arrow::Type type);

}  // namespace airlock::connectors::files
