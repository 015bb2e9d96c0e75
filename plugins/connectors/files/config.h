// Configuration of the files connector:
//   {"root": "<dir>",
//    "datasets": [{"name", "file", "format": "csv|jsonl", "delimiter": ",",
//                  "header": true, "columns": [{"name", "type"}],
//                  "description", "tags": []}],      (optional)
//    "infer_rows": 1000, "batch_rows": 8192}
// Errors are InvalidArgument naming the key ("datasets[1].delimiter must be
// one character").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "airlock/cpp/arrow.hpp"
#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"

namespace airlock::connectors::files {

enum class Format { kCsv, kJsonl };

inline constexpr int64_t kDefaultInferRows = 1000;
inline constexpr int64_t kDefaultBatchRows = 8192;
inline constexpr size_t kMaxRecordBytes = 64u << 20;  // one CSV record / JSON line
inline constexpr size_t kMaxColumns = 4096;
// Files up to this size are read whole by Describe to count their rows.
inline constexpr int64_t kMaxCountedBytes = 64 << 20;

struct DeclaredColumn {
  std::string name;
  arrow::Type type = arrow::Type::kUtf8;
};

// How to read one dataset. Also used for files found in the root when no
// datasets are configured (then everything is derived from the file name).
struct DatasetConfig {
  std::string name;
  std::string file;  // relative to root
  Format format = Format::kCsv;
  char delimiter = ',';
  bool header = true;
  std::vector<DeclaredColumn> columns;  // declared types; others are inferred
  std::string description;
  std::vector<std::string> tags;
};

struct FilesConfig {
  std::string root;
  bool datasets_configured = false;
  std::vector<DatasetConfig> datasets;
  int64_t infer_rows = kDefaultInferRows;
  int64_t batch_rows = kDefaultBatchRows;
};

Result<FilesConfig> ParseConfig(const Json& config);

// "csv" for .csv/.tsv, "jsonl" for .jsonl/.ndjson; nullopt otherwise.
std::optional<Format> FormatFromFileName(std::string_view file);

// A dataset read with defaults derived from its file name (discovery, or a
// pull naming an object that is not configured). InvalidArgument when the
// extension says nothing about the format.
Result<DatasetConfig> DefaultDataset(std::string name, std::string file);

// Declared type names: int64 float64 bool utf8 date32 timestamp.
std::optional<arrow::Type> ParseTypeName(std::string_view name);
const char* TypeNameOf(arrow::Type type);

}  // namespace airlock::connectors::files
