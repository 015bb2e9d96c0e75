#include "config.h"

#include <string_view>

#include "airlock/cpp/config_read.hpp"

namespace airlock::connectors::files {
namespace {

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

namespace read = sdk::config_read;

constexpr std::string_view kWhere = "config";

Status ParseColumns(const Json& j, const std::string& where, std::vector<DeclaredColumn>* out) {
  if (!j.is_array()) return Status::InvalidArgument(where + " must be an array");
  if (j.size() > kMaxColumns) {
    return Status::InvalidArgument(where + " has more than " + std::to_string(kMaxColumns) +
                                   " columns");
  }
  for (size_t i = 0; i < j.size(); ++i) {
    const std::string at = where + "[" + std::to_string(i) + "]";
    const Json& c = j[i];
    if (!c.is_object()) return Status::InvalidArgument(at + " must be an object");
    AIRLOCK_RETURN_IF_ERROR(read::KnownKeys(c, {"name", "type"}, at));
    DeclaredColumn column;
    AIRLOCK_RETURN_IF_ERROR(json_read::String(c, "name", &column.name, true, at));
    if (column.name.empty()) return Status::InvalidArgument(at + ".name must not be empty");
    std::string type;
    AIRLOCK_RETURN_IF_ERROR(json_read::String(c, "type", &type, true, at));
    auto parsed = ParseTypeName(type);
    if (!parsed) {
      return Status::InvalidArgument(at + ".type '" + type +
                                     "' is unknown (int64 float64 bool utf8 date32 timestamp)");
    }
    column.type = *parsed;
    for (const auto& other : *out) {
      if (other.name == column.name) {
        return Status::InvalidArgument(at + ".name '" + column.name + "' is declared twice");
      }
    }
    out->push_back(std::move(column));
  }
  return Status::Ok();
}

Status ParseDataset(const Json& j, const std::string& where, DatasetConfig* out) {
  if (!j.is_object()) return Status::InvalidArgument(where + " must be an object");
  AIRLOCK_RETURN_IF_ERROR(read::KnownKeys(
      j, {"name", "file", "format", "delimiter", "header", "columns", "description", "tags"},
      where));
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "name", &out->name, true, where));
  if (out->name.empty()) return Status::InvalidArgument(where + ".name must not be empty");
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "file", &out->file, true, where));
  if (out->file.empty() || out->file.front() == '/') {
    return Status::InvalidArgument(where + ".file must be a path relative to root");
  }

  std::string format;
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "format", &format, false, where));
  if (format == "csv") {
    out->format = Format::kCsv;
  } else if (format == "jsonl") {
    out->format = Format::kJsonl;
  } else if (format.empty()) {
    auto guessed = FormatFromFileName(out->file);
    if (!guessed) {
      return Status::InvalidArgument(where +
                                     ".format is required when the file name does not end in "
                                     ".csv, .tsv, .jsonl or .ndjson");
    }
    out->format = *guessed;
  } else {
    return Status::InvalidArgument(where + ".format '" + format + "' is unknown (csv or jsonl)");
  }
  if (EndsWith(out->file, ".tsv")) out->delimiter = '\t';

  if (j.contains("delimiter")) {
    if (out->format != Format::kCsv) {
      return Status::InvalidArgument(where + ".delimiter applies to csv only");
    }
    std::string delimiter;
    AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "delimiter", &delimiter, true, where));
    if (delimiter.size() != 1 || delimiter[0] == '"' || delimiter[0] == '\n' ||
        delimiter[0] == '\r') {
      return Status::InvalidArgument(where +
                                     ".delimiter must be one character other than a quote or "
                                     "a line break");
    }
    out->delimiter = delimiter[0];
  }
  if (auto header = j.find("header"); header != j.end()) {
    if (out->format != Format::kCsv) {
      return Status::InvalidArgument(where + ".header applies to csv only");
    }
    if (!header->is_boolean()) return Status::InvalidArgument(where + ".header must be a boolean");
    out->header = header->get<bool>();
  }
  if (auto columns = j.find("columns"); columns != j.end() && !columns->is_null()) {
    AIRLOCK_RETURN_IF_ERROR(ParseColumns(*columns, where + ".columns", &out->columns));
  }
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "description", &out->description, false, where));
  AIRLOCK_RETURN_IF_ERROR(json_read::StringList(j, "tags", &out->tags, false, where));
  return Status::Ok();
}

}  // namespace

std::optional<Format> FormatFromFileName(std::string_view file) {
  if (EndsWith(file, ".csv") || EndsWith(file, ".tsv")) return Format::kCsv;
  if (EndsWith(file, ".jsonl") || EndsWith(file, ".ndjson")) return Format::kJsonl;
  return std::nullopt;
}

Result<DatasetConfig> DefaultDataset(std::string name, std::string file) {
  auto format = FormatFromFileName(file);
  if (!format) {
    return Status::InvalidArgument("cannot tell the format of '" + file +
                                   "' (expected .csv, .tsv, .jsonl or .ndjson)");
  }
  DatasetConfig dataset;
  dataset.name = std::move(name);
  dataset.format = *format;
  if (EndsWith(file, ".tsv")) dataset.delimiter = '\t';
  dataset.file = std::move(file);
  return dataset;
}

std::optional<arrow::Type> ParseTypeName(std::string_view name) {
  if (name == "int64") return arrow::Type::kInt64;
  if (name == "float64") return arrow::Type::kFloat64;
  if (name == "bool") return arrow::Type::kBool;
  if (name == "utf8") return arrow::Type::kUtf8;
  if (name == "date32") return arrow::Type::kDate32;
  if (name == "timestamp") return arrow::Type::kTimestampMicros;
  return std::nullopt;
}

const char* TypeNameOf(arrow::Type type) {
  switch (type) {
    case arrow::Type::kInt64:
      return "int64";
    case arrow::Type::kFloat64:
      return "float64";
    case arrow::Type::kBool:
      return "bool";
    case arrow::Type::kDate32:
      return "date32";
    case arrow::Type::kTimestampMicros:
      return "timestamp";
    default:
      return "utf8";
  }
}

Result<FilesConfig> ParseConfig(const Json& config) {
  if (!config.is_object()) return Status::InvalidArgument("configuration must be a JSON object");
  AIRLOCK_RETURN_IF_ERROR(
      read::KnownKeys(config, {"root", "datasets", "infer_rows", "batch_rows"}, kWhere));
  FilesConfig parsed;
  AIRLOCK_RETURN_IF_ERROR(json_read::String(config, "root", &parsed.root, true, kWhere));
  if (parsed.root.empty()) return Status::InvalidArgument("root must not be empty");
  AIRLOCK_RETURN_IF_ERROR(
      read::Bounded(config, "infer_rows", 1, 1000000, &parsed.infer_rows, kWhere));
  AIRLOCK_RETURN_IF_ERROR(
      read::Bounded(config, "batch_rows", 1, 1 << 20, &parsed.batch_rows, kWhere));
  if (auto datasets = config.find("datasets"); datasets != config.end() && !datasets->is_null()) {
    if (!datasets->is_array()) return Status::InvalidArgument("datasets must be an array");
    parsed.datasets_configured = true;
    for (size_t i = 0; i < datasets->size(); ++i) {
      const std::string where = "datasets[" + std::to_string(i) + "]";
      DatasetConfig dataset;
      AIRLOCK_RETURN_IF_ERROR(ParseDataset((*datasets)[i], where, &dataset));
      for (size_t k = 0; k < parsed.datasets.size(); ++k) {
        if (parsed.datasets[k].name == dataset.name) {
          return Status::InvalidArgument(where + ".name '" + dataset.name +
                                         "' duplicates datasets[" + std::to_string(k) + "].name");
        }
      }
      parsed.datasets.push_back(std::move(dataset));
    }
  }
  return parsed;
}

}  // namespace airlock::connectors::files
