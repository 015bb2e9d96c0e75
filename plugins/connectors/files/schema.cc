#include "schema.h"

#include <limits>
#include <string>
#include <unordered_map>

namespace airlock::connectors::files {
namespace {

arrow::Field MakeField(std::string name, arrow::Type type) {
  arrow::Field field;
  field.name = std::move(name);
  field.type = type;
  if (type == arrow::Type::kTimestampMicros) field.timezone = "UTC";
  return field;
}

const DeclaredColumn* FindDeclared(const DatasetConfig& dataset, std::string_view name) {
  for (const auto& c : dataset.columns) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

struct TextGuess {
  bool seen = false;
  bool can_bool = true;
  bool can_int = true;
  bool can_float = true;

  void Observe(std::string_view text) {
    if (text.empty()) return;
    seen = true;
    if (can_bool && !scope::ParseBool(text)) can_bool = false;
    if (can_int && !scope::ParseInt64(text)) can_int = false;
    if (can_float && !scope::ParseFloat64(text)) can_float = false;
  }
  arrow::Type Type() const {
    if (!seen) return arrow::Type::kUtf8;
    if (can_bool) return arrow::Type::kBool;
    if (can_int) return arrow::Type::kInt64;
    if (can_float) return arrow::Type::kFloat64;
    return arrow::Type::kUtf8;
  }
};

struct JsonGuess {
  enum Kind { kNone, kBool, kInt, kFloat, kText } kind = kNone;

  void Observe(const nlohmann::ordered_json& v) {
    Kind k;
    if (v.is_null()) return;
    if (v.is_boolean()) {
      k = kBool;
    } else if (v.is_number_unsigned()) {
      k = v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ? kFloat
                                                                                         : kInt;
    } else if (v.is_number_integer()) {
      k = kInt;
    } else if (v.is_number_float()) {
      k = kFloat;
    } else {
      k = kText;
    }
    if (kind == kNone || kind == k) {
      kind = k;
    } else if ((kind == kInt && k == kFloat) || (kind == kFloat && k == kInt)) {
      kind = kFloat;
    } else {
      kind = kText;
    }
  }
  arrow::Type Type() const {
    switch (kind) {
      case kBool:
        return arrow::Type::kBool;
      case kInt:
        return arrow::Type::kInt64;
      case kFloat:
        return arrow::Type::kFloat64;
      default:
        return arrow::Type::kUtf8;
    }
  }
};

}  // namespace

Result<std::vector<arrow::Field>> CsvSchema(CsvReader* reader, const DatasetConfig& dataset,
                                            int64_t infer_rows) {
  CsvRecord record;
  std::vector<std::string> names;
  AIRLOCK_ASSIGN_OR_RETURN(bool has_record, reader->Next(&record));

  if (dataset.header) {
    if (!has_record) return Status::InvalidArgument("'" + dataset.file + "' has no header line");
    if (record.fields.size() > kMaxColumns) {
      return Status::InvalidArgument("line " + std::to_string(record.line) + ": more than " +
                                     std::to_string(kMaxColumns) + " columns");
    }
    for (size_t i = 0; i < record.fields.size(); ++i) {
      std::string name(record.fields[i]);
      if (name.empty()) name = "column_" + std::to_string(i + 1);
      for (const auto& other : names) {
        if (other == name) {
          return Status::InvalidArgument("line " + std::to_string(record.line) +
                                         ": duplicate column name '" + name + "'");
        }
      }
      names.push_back(std::move(name));
    }
    for (const auto& declared : dataset.columns) {
      if (std::find(names.begin(), names.end(), declared.name) == names.end()) {
        return Status::InvalidArgument("declared column '" + declared.name +
                                       "' is not in the header of '" + dataset.file + "'");
      }
    }
    AIRLOCK_ASSIGN_OR_RETURN(has_record, reader->Next(&record));
  } else if (!dataset.columns.empty()) {
    for (const auto& declared : dataset.columns) names.push_back(declared.name);
  } else if (has_record) {
    for (size_t i = 0; i < record.fields.size() && i < kMaxColumns; ++i) {
      names.push_back("column_" + std::to_string(i + 1));
    }
  }

  std::vector<TextGuess> guesses(names.size());
  for (int64_t n = 0; has_record && n < infer_rows; ++n) {
    if (record.fields.size() != names.size()) {
      return Status::InvalidArgument("line " + std::to_string(record.line) + ": expected " +
                                     std::to_string(names.size()) + " fields, found " +
                                     std::to_string(record.fields.size()));
    }
    for (size_t i = 0; i < names.size(); ++i) guesses[i].Observe(record.fields[i]);
    AIRLOCK_ASSIGN_OR_RETURN(has_record, reader->Next(&record));
  }

  std::vector<arrow::Field> fields;
  fields.reserve(names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    const DeclaredColumn* declared = FindDeclared(dataset, names[i]);
    fields.push_back(MakeField(names[i], declared ? declared->type : guesses[i].Type()));
  }
  AIRLOCK_RETURN_IF_ERROR(reader->Rewind());
  return fields;
}

Result<std::vector<arrow::Field>> JsonlSchema(JsonlReader* reader, const DatasetConfig& dataset,
                                              int64_t infer_rows) {
  std::vector<std::string> names;
  std::unordered_map<std::string, size_t> index;
  std::vector<JsonGuess> guesses;
  // Declared columns come first, in declaration order, even if absent so far.
  for (const auto& declared : dataset.columns) {
    index.emplace(declared.name, names.size());
    names.push_back(declared.name);
    guesses.emplace_back();
  }
  nlohmann::ordered_json object;  // members in file order
  for (int64_t n = 0; n < infer_rows; ++n) {
    AIRLOCK_ASSIGN_OR_RETURN(bool has_object, reader->Next(&object));
    if (!has_object) break;
    for (const auto& [key, value] : object.items()) {
      auto [it, inserted] = index.emplace(key, names.size());
      if (inserted) {
        if (names.size() >= kMaxColumns) {
          return Status::InvalidArgument("line " + std::to_string(reader->line()) + ": more than " +
                                         std::to_string(kMaxColumns) + " columns");
        }
        names.push_back(key);
        guesses.emplace_back();
      }
      guesses[it->second].Observe(value);
    }
  }
  std::vector<arrow::Field> fields;
  fields.reserve(names.size());
  for (size_t i = 0; i < names.size(); ++i) {
    const DeclaredColumn* declared = FindDeclared(dataset, names[i]);
    fields.push_back(MakeField(names[i], declared ? declared->type : guesses[i].Type()));
  }
  AIRLOCK_RETURN_IF_ERROR(reader->Rewind());
  return fields;
}

std::optional<scope::Value> CsvCell(std::string_view text, bool quoted, arrow::Type type) {
  using scope::Value;
  if (text.empty()) {
    if (quoted && type == arrow::Type::kUtf8) return Value::String(text);
    return Value::Null();
  }
  switch (type) {
    case arrow::Type::kBool:
      if (auto b = scope::ParseBool(text)) return Value::Bool(*b);
      return std::nullopt;
    case arrow::Type::kInt64:
      if (auto i = scope::ParseInt64(text)) return Value::Int64(*i);
      return std::nullopt;
    case arrow::Type::kFloat64:
      if (auto d = scope::ParseFloat64(text)) return Value::Float64(*d);
      return std::nullopt;
    case arrow::Type::kDate32:
      if (auto d = scope::ParseDate32(text)) return Value::Date32(*d);
      return std::nullopt;
    case arrow::Type::kTimestampMicros:
      if (auto t = scope::ParseTimestampMicros(text)) return Value::Timestamp(*t);
      return std::nullopt;
    default:
      return Value::String(text);
  }
}

}  // namespace airlock::connectors::files
