// JSON Lines: one JSON object per line. Lines are read incrementally from a
// BufferedFile; blank lines are skipped; a trailing CR is dropped.
//
// Thread-safety: none; one reader per pull.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "airlock/cpp/arrow.hpp"
#include "airlock/cpp/scope.hpp"
#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"
#include "buffered_file.h"

namespace airlock::connectors::files {

class JsonlReader {
 public:
  explicit JsonlReader(BufferedFile* file) : file_(file) {}

  // ok(true): `object` holds the next line's object; ok(false): end of file.
  // InvalidArgument naming the line when it is not a JSON object. `JsonType`
  // is nlohmann::json (members sorted, fast lookup) or nlohmann::ordered_json
  // (members in file order, for schema inference).
  template <typename JsonType>
  Result<bool> Next(JsonType* object) {
    std::string_view line;
    AIRLOCK_ASSIGN_OR_RETURN(bool more, NextLine(&line));
    if (!more) return false;
    *object = JsonType::parse(line, nullptr, /*allow_exceptions=*/false);
    if (object->is_discarded()) {
      return Status::InvalidArgument("line " + std::to_string(line_) + ": not valid JSON");
    }
    if (!object->is_object()) {
      return Status::InvalidArgument("line " + std::to_string(line_) + ": not a JSON object");
    }
    return true;
  }

  // Physical line (1-based) of the object Next() returned last.
  int64_t line() const { return line_; }

  Status Rewind();

 private:
  // The next non-blank line, without its line break; valid until the next call.
  Result<bool> NextLine(std::string_view* line);

  BufferedFile* file_;
  int64_t line_ = 0;
  bool at_start_ = true;
};

// Reads `value` (a member of a JSON Lines object) as a cell of `type`.
// Strings are borrowed from `value`; other JSON rendered as text goes to
// `scratch`, which must outlive the returned Value. nullopt when the value
// does not fit the type. JSON null is a NULL cell.
std::optional<scope::Value> JsonCell(const Json& value, arrow::Type type, std::string* scratch);

}  // namespace airlock::connectors::files
