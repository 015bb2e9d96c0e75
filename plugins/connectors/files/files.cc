#include "files.h"

#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <string_view>
#include <unordered_map>

#include "airlock/cpp/scope.hpp"
#include "batch_emitter.h"
#include "csv_reader.h"
#include "jsonl_reader.h"
#include "schema.h"

namespace airlock::connectors::files {
namespace {

std::string Stem(std::string_view file) {
  const size_t dot = file.rfind('.');
  return std::string(dot == std::string_view::npos ? file : file.substr(0, dot));
}

Status CellError(int64_t line, const arrow::Field& field) {
  // Never quote the value: it may be exactly what the scope hides.
  return Status::InvalidArgument("line " + std::to_string(line) + ": column '" + field.name +
                                 "' does not hold a valid " + TypeNameOf(field.type) +
                                 " (declare the column's type or raise infer_rows)");
}

std::vector<size_t> NeededColumns(const scope::ScopePlan& plan) {
  std::vector<size_t> needed;
  for (size_t i = 0; i < plan.needed().size(); ++i) {
    if (plan.needed()[i]) needed.push_back(i);
  }
  return needed;
}

}  // namespace

Result<std::unique_ptr<FilesConnector>> FilesConnector::Create(const Json& config,
                                                               const sdk::Host& host) {
  AIRLOCK_ASSIGN_OR_RETURN(FilesConfig parsed, ParseConfig(config));
  // A relative root is relative to the kernel configuration's directory.
  parsed.root = host.ResolvePath(parsed.root);
  AIRLOCK_ASSIGN_OR_RETURN(RootDirectory root, RootDirectory::Open(parsed.root));
  return std::unique_ptr<FilesConnector>(
      new FilesConnector(std::move(parsed), std::move(root), host));
}

Result<std::vector<DatasetConfig>> FilesConnector::Discover() const {
  AIRLOCK_ASSIGN_OR_RETURN(auto names, root_.List());
  std::vector<DatasetConfig> datasets;
  std::unordered_map<std::string, std::string> by_stem;
  for (const auto& file : names) {
    if (!FormatFromFileName(file)) continue;
    std::string stem = Stem(file);
    auto [it, inserted] = by_stem.emplace(stem, file);
    if (!inserted) {
      return Status::InvalidArgument("files '" + it->second + "' and '" + file +
                                     "' would both be dataset '" + stem +
                                     "'; configure datasets explicitly");
    }
    AIRLOCK_ASSIGN_OR_RETURN(DatasetConfig dataset, DefaultDataset(std::move(stem), file));
    datasets.push_back(std::move(dataset));
  }
  return datasets;
}

Result<DatasetConfig> FilesConnector::Resolve(const PullSpec& spec) const {
  const std::string& object = spec.object.empty() ? spec.dataset : spec.object;
  for (const auto& d : config_.datasets) {
    if (d.name == spec.dataset) {
      DatasetConfig dataset = d;
      if (object != spec.dataset) dataset.file = object;  // the kernel named the object
      return dataset;
    }
  }
  for (const auto& d : config_.datasets) {
    if (d.name == object || d.file == object) {
      DatasetConfig dataset = d;
      dataset.name = spec.dataset;
      return dataset;
    }
  }
  if (FormatFromFileName(object)) return DefaultDataset(spec.dataset, object);
  // A bare name: the file discovery would list under that name, with any of
  // the known extensions; two candidates are ambiguous, as in discovery.
  std::string found;
  for (const char* extension : {".csv", ".tsv", ".jsonl", ".ndjson"}) {
    const std::string file = object + extension;
    auto fd = root_.OpenFile(file);
    if (fd.ok()) {
      ::close(*fd);
      if (!found.empty()) {
        return Status::InvalidArgument("files '" + found + "' and '" + file +
                                       "' would both be dataset '" + object +
                                       "'; configure datasets explicitly");
      }
      found = file;
    } else if (fd.status().code() != StatusCode::kNotFound) {
      return fd.status();
    }
  }
  if (!found.empty()) return DefaultDataset(spec.dataset, found);
  return Status::NotFound("no file for dataset '" + spec.dataset + "' (looked for '" + object +
                          "' with .csv, .tsv, .jsonl or .ndjson)");
}

Result<std::vector<arrow::Field>> FilesConnector::Schema(const DatasetConfig& dataset,
                                                         BufferedFile* file) const {
  if (dataset.format == Format::kCsv) {
    CsvReader reader(file, dataset.delimiter, kMaxColumns);
    return CsvSchema(&reader, dataset, config_.infer_rows);
  }
  JsonlReader reader(file);
  return JsonlSchema(&reader, dataset, config_.infer_rows);
}

int64_t FilesConnector::CountRows(const DatasetConfig& dataset) const {
  auto fd = root_.OpenFile(dataset.file);
  if (!fd.ok()) return -1;
  BufferedFile file(*fd, kMaxRecordBytes);  // closes the descriptor
  struct stat st {};
  if (::fstat(*fd, &st) != 0 || st.st_size > kMaxCountedBytes) return -1;
  int64_t rows = 0;
  if (dataset.format == Format::kCsv) {
    CsvReader reader(&file, dataset.delimiter, kMaxColumns);
    CsvRecord record;
    for (;;) {
      auto more = reader.Next(&record);
      if (!more.ok()) return -1;
      if (!*more) break;
      ++rows;
    }
    if (dataset.header && rows > 0) --rows;
    return rows;
  }
  JsonlReader reader(&file);
  nlohmann::json object;
  for (;;) {
    auto more = reader.Next(&object);
    if (!more.ok()) return -1;
    if (!*more) break;
    ++rows;
  }
  return rows;
}

Result<Catalog> FilesConnector::Describe() {
  std::vector<DatasetConfig> datasets;
  if (config_.datasets_configured) {
    datasets = config_.datasets;
  } else {
    AIRLOCK_ASSIGN_OR_RETURN(datasets, Discover());
  }
  Catalog catalog;
  for (const auto& dataset : datasets) {
    const std::string context = "dataset '" + dataset.name + "'";
    auto fd = root_.OpenFile(dataset.file);
    if (!fd.ok() && !config_.datasets_configured &&
        (fd.status().code() == StatusCode::kPermissionDenied ||
         fd.status().code() == StatusCode::kInvalidArgument)) {
      // Discovery only: a symlink leading out of root, or something that is
      // not a regular file, is not a dataset. Configured datasets still fail.
      host_.Warn("skipping '" + dataset.file + "': " + fd.status().message());
      continue;
    }
    if (!fd.ok()) return fd.status().WithContext(context);
    BufferedFile file(*fd, kMaxRecordBytes);
    auto fields = Schema(dataset, &file);
    if (!fields.ok()) return fields.status().WithContext(context);
    DatasetInfo info;
    info.name = dataset.name;
    info.object = dataset.file;
    info.description = dataset.description;
    info.tags = dataset.tags;
    for (const auto& field : *fields) info.columns.push_back({field.name, TypeNameOf(field.type)});
    info.rows = CountRows(dataset);
    catalog.datasets.push_back(std::move(info));
  }
  return catalog;
}

Status FilesConnector::Pull(const PullSpec& spec, sdk::BatchSink& sink) {
  AIRLOCK_ASSIGN_OR_RETURN(DatasetConfig dataset, Resolve(spec));
  const std::string context = "dataset '" + spec.dataset + "'";
  auto fd = root_.OpenFile(dataset.file);
  if (!fd.ok()) return fd.status().WithContext(context);
  BufferedFile file(*fd, kMaxRecordBytes);
  uint64_t rows = 0;
  Status status = dataset.format == Format::kCsv
                      ? PullCsv(dataset, &file, spec.scope, sink, &rows)
                      : PullJsonl(dataset, &file, spec.scope, sink, &rows);
  if (!status.ok()) return status.WithContext(context);
  host_.Info("pulled " + std::to_string(rows) + " row(s) of " + context);
  return Status::Ok();
}

Status FilesConnector::PullCsv(const DatasetConfig& dataset, BufferedFile* file,
                               const DatasetScope& scope, sdk::BatchSink& sink,
                               uint64_t* rows) const {
  CsvReader reader(file, dataset.delimiter, kMaxColumns);
  AIRLOCK_ASSIGN_OR_RETURN(auto fields, CsvSchema(&reader, dataset, config_.infer_rows));
  AIRLOCK_ASSIGN_OR_RETURN(auto plan, scope::ScopePlan::Make(fields, scope));
  const std::vector<size_t> needed = NeededColumns(plan);
  BatchEmitter emitter(plan, sink, static_cast<size_t>(config_.batch_rows));
  AIRLOCK_RETURN_IF_ERROR(emitter.Start());

  CsvRecord record;
  if (dataset.header) {
    AIRLOCK_ASSIGN_OR_RETURN(bool has_header, reader.Next(&record));
    if (!has_header) return Status::InvalidArgument("'" + dataset.file + "' has no header line");
  }
  std::vector<scope::Value> row(fields.size());
  for (;;) {
    AIRLOCK_ASSIGN_OR_RETURN(bool more, reader.Next(&record));
    if (!more) break;
    if (record.fields.size() != fields.size()) {
      return Status::InvalidArgument("line " + std::to_string(record.line) + ": expected " +
                                     std::to_string(fields.size()) + " fields, found " +
                                     std::to_string(record.fields.size()));
    }
    for (size_t i : needed) {
      auto cell = CsvCell(record.fields[i], record.quoted[i] != 0, fields[i].type);
      if (!cell) return CellError(record.line, fields[i]);
      row[i] = *cell;
    }
    AIRLOCK_RETURN_IF_ERROR(emitter.Add(row));
  }
  AIRLOCK_RETURN_IF_ERROR(emitter.Finish());
  *rows = emitter.rows_sent();
  return Status::Ok();
}

Status FilesConnector::PullJsonl(const DatasetConfig& dataset, BufferedFile* file,
                                 const DatasetScope& scope, sdk::BatchSink& sink,
                                 uint64_t* rows) const {
  JsonlReader reader(file);
  AIRLOCK_ASSIGN_OR_RETURN(auto fields, JsonlSchema(&reader, dataset, config_.infer_rows));
  AIRLOCK_ASSIGN_OR_RETURN(auto plan, scope::ScopePlan::Make(fields, scope));
  const std::vector<size_t> needed = NeededColumns(plan);
  BatchEmitter emitter(plan, sink, static_cast<size_t>(config_.batch_rows));
  AIRLOCK_RETURN_IF_ERROR(emitter.Start());

  Json object;
  std::vector<scope::Value> row(fields.size());
  std::vector<std::string> scratch(fields.size());
  for (;;) {
    AIRLOCK_ASSIGN_OR_RETURN(bool more, reader.Next(&object));
    if (!more) break;
    for (size_t i : needed) {
      auto member = object.find(fields[i].name);
      if (member == object.end()) {
        row[i] = scope::Value::Null();
        continue;
      }
      auto cell = JsonCell(*member, fields[i].type, &scratch[i]);
      if (!cell) return CellError(reader.line(), fields[i]);
      row[i] = *cell;
    }
    AIRLOCK_RETURN_IF_ERROR(emitter.Add(row));
  }
  AIRLOCK_RETURN_IF_ERROR(emitter.Finish());
  *rows = emitter.rows_sent();
  return Status::Ok();
}

}  // namespace airlock::connectors::files
