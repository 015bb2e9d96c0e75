// "sequence": a connector that generates rows (n, n*n, "row-<n>") for
// n = 1..rows, and serves small typed tables written in its configuration.
// Written only against the installed SDK headers; it shows the whole contract
// of a connector: configuration, a catalog, and a scoped pull (only the
// approved columns, masked where asked, only the rows the filter admits)
// delivered as Arrow batches with progress and cancellation.
//
// Configuration: {"rows": N (0..10000000, default 10), "batch_rows": M (1..1048576, default 4096),
//                 "tables": [{"name", "columns": [{"name", "type"}], "rows": [{...}]}]}
// Table column types: int64 float64 bool utf8 timestamp (RFC 3339 text, delivered as UTC).
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <airlock/cpp/masking.hpp>
#include <airlock/cpp/plugin.hpp>
#include <airlock/cpp/scope.hpp>
#include <airlock/cpp/scoped_pull.hpp>

namespace sequence {

using airlock::Json;
using airlock::Result;
using airlock::Status;
namespace arrow = airlock::arrow;
namespace scope = airlock::scope;

constexpr int64_t kMaxRows = 10'000'000;
constexpr int64_t kMaxBatchRows = 1 << 20;
constexpr size_t kMaxTableRows = 100'000;
constexpr const char* kDataset = "sequence";

// The dataset's columns, in source order (the indices Value getters use).
enum Column : size_t { kN = 0, kSquare = 1, kLabel = 2 };

std::vector<arrow::Field> SourceFields() {
  return {{"n", arrow::Type::kInt64, "", false},
          {"square", arrow::Type::kInt64, "", false},
          {"label", arrow::Type::kUtf8, "", false}};
}

// A table from the configuration: typed columns, rows as JSON objects (a
// missing member or null is NULL), validated once at create().
struct Table {
  std::string name;
  std::vector<arrow::Field> fields;
  std::vector<Json> rows;
};

// The cell of `row` in column `field`; strings borrow from the row.
scope::Value CellOf(const Json& row, const arrow::Field& field) {
  auto it = row.find(field.name);
  if (it == row.end() || it->is_null()) return scope::Value::Null();
  switch (field.type) {
    case arrow::Type::kInt64:
      return it->is_number_integer() ? scope::Value::Int64(it->get<int64_t>()) : scope::Value{};
    case arrow::Type::kFloat64:
      return it->is_number() ? scope::Value::Float64(it->get<double>()) : scope::Value{};
    case arrow::Type::kBool:
      return it->is_boolean() ? scope::Value::Bool(it->get<bool>()) : scope::Value{};
    case arrow::Type::kUtf8:
      return it->is_string() ? scope::Value::String(it->get_ref<const std::string&>())
                             : scope::Value{};
    case arrow::Type::kTimestampMicros: {
      auto micros = it->is_string() ? scope::ParseTimestampMicros(it->get_ref<const std::string&>())
                                    : std::nullopt;
      return micros ? scope::Value::Timestamp(*micros) : scope::Value{};
    }
    default:
      return {};
  }
}

Result<Table> ParseTable(const Json& j, const std::string& where) {
  Table table;
  if (!j.is_object()) return Status::InvalidArgument(where + " must be an object");
  AIRLOCK_RETURN_IF_ERROR(airlock::json_read::String(j, "name", &table.name, true, where));
  auto columns = j.find("columns");
  if (columns == j.end() || !columns->is_array() || columns->empty()) {
    return Status::InvalidArgument(where + ".columns must be a non-empty array");
  }
  for (const auto& c : *columns) {
    arrow::Field field;
    std::string type;
    AIRLOCK_RETURN_IF_ERROR(airlock::json_read::String(c, "name", &field.name, true, where));
    AIRLOCK_RETURN_IF_ERROR(airlock::json_read::String(c, "type", &type, true, where));
    if (type == "int64") {
      field.type = arrow::Type::kInt64;
    } else if (type == "float64") {
      field.type = arrow::Type::kFloat64;
    } else if (type == "bool") {
      field.type = arrow::Type::kBool;
    } else if (type == "utf8") {
      field.type = arrow::Type::kUtf8;
    } else if (type == "timestamp") {
      field.type = arrow::Type::kTimestampMicros;
      field.timezone = "UTC";
    } else {
      return Status::InvalidArgument(where + ": column type '" + type + "' is unknown");
    }
    table.fields.push_back(std::move(field));
  }
  auto rows = j.find("rows");
  if (rows != j.end() && (!rows->is_array() || rows->size() > kMaxTableRows)) {
    return Status::InvalidArgument(where + ".rows must be an array of at most " +
                                   std::to_string(kMaxTableRows) + " objects");
  }
  if (rows == j.end()) return table;
  for (const auto& row : *rows) {
    if (!row.is_object()) return Status::InvalidArgument(where + ".rows must hold objects");
    for (const auto& field : table.fields) {
      // A value that does not fit its column is refused now, not read as NULL later.
      auto it = row.find(field.name);
      if (it != row.end() && !it->is_null() && CellOf(row, field).is_null()) {
        return Status::InvalidArgument(where + ": a value of column '" + field.name +
                                       "' is not a valid " + arrow::TypeName(field.type));
      }
    }
    table.rows.push_back(row);
  }
  return table;
}

class SequenceConnector : public airlock::sdk::Connector {
 public:
  static Result<std::unique_ptr<SequenceConnector>> Create(const Json& config,
                                                           const airlock::sdk::Host& host) {
    if (!config.is_object()) return Status::InvalidArgument("config must be a JSON object");
    auto made = std::make_unique<SequenceConnector>();
    made->host_ = host;
    AIRLOCK_RETURN_IF_ERROR(airlock::json_read::Int(config, "rows", &made->rows_, false, "config"));
    AIRLOCK_RETURN_IF_ERROR(
        airlock::json_read::Int(config, "batch_rows", &made->batch_rows_, false, "config"));
    if (made->rows_ < 0 || made->rows_ > kMaxRows) {
      return Status::InvalidArgument("config.rows must be between 0 and " +
                                     std::to_string(kMaxRows));
    }
    if (made->batch_rows_ < 1 || made->batch_rows_ > kMaxBatchRows) {
      return Status::InvalidArgument("config.batch_rows must be between 1 and " +
                                     std::to_string(kMaxBatchRows));
    }
    if (auto tables = config.find("tables"); tables != config.end()) {
      if (!tables->is_array()) return Status::InvalidArgument("config.tables must be an array");
      for (size_t i = 0; i < tables->size(); ++i) {
        AIRLOCK_ASSIGN_OR_RETURN(
            Table table, ParseTable((*tables)[i], "config.tables[" + std::to_string(i) + "]"));
        made->tables_.push_back(std::move(table));
      }
    }
    return made;
  }

  Result<airlock::Catalog> Describe() override {
    airlock::DatasetInfo dataset;
    dataset.name = kDataset;
    dataset.object = kDataset;
    dataset.description = "n, n squared and a label for n = 1.." + std::to_string(rows_);
    for (const auto& field : SourceFields()) {
      dataset.columns.push_back({field.name, arrow::TypeName(field.type)});
    }
    airlock::Catalog catalog{{dataset}};
    for (const auto& table : tables_) {
      airlock::DatasetInfo info;
      info.name = info.object = table.name;
      info.description = std::to_string(table.rows.size()) + " rows from the configuration";
      for (const auto& field : table.fields) {
        info.columns.push_back({field.name, arrow::TypeName(field.type)});
      }
      catalog.datasets.push_back(std::move(info));
    }
    return catalog;
  }

  Status Pull(const airlock::PullSpec& spec, airlock::sdk::BatchSink& sink) override {
    if (spec.dataset == kDataset) {
      // value(n, column): the generated cell; the label text lives in `label`.
      std::string label;
      return Emit(spec, sink, SourceFields(), rows_, [&](int64_t i, size_t column) {
        const int64_t n = i + 1;
        switch (column) {
          case kN:
            return scope::Value::Int64(n);
          case kSquare:
            return scope::Value::Int64(n * n);  // n <= 10^7, so n*n fits in int64
          case kLabel:
            label = "row-" + std::to_string(n);
            return scope::Value::String(label);
        }
        return scope::Value::Null();
      });
    }
    for (const auto& table : tables_) {
      if (table.name != spec.dataset) continue;
      return Emit(spec, sink, table.fields, static_cast<int64_t>(table.rows.size()),
                  [&](int64_t i, size_t column) {
                    return CellOf(table.rows[static_cast<size_t>(i)], table.fields[column]);
                  });
    }
    return Status::NotFound("the sequence connector has no dataset '" + spec.dataset + "'");
  }

 private:
  // Delivers rows 0..count-1 of a dataset with `fields`, where value(row,
  // column) reads one cell, scoped by spec.scope: the SDK's writer keeps the
  // rows the filter matches and delivers only the scoped columns, masked.
  template <typename ValueOf>
  Status Emit(const airlock::PullSpec& spec, airlock::sdk::BatchSink& sink,
              const std::vector<arrow::Field>& fields, int64_t count, ValueOf&& value_of) {
    AIRLOCK_ASSIGN_OR_RETURN(
        auto writer, airlock::sdk::ScopedBatchWriter::Start(fields, spec.scope, sink,
                                                            static_cast<size_t>(batch_rows_)));
    // Cells of the current row, read once each (strings borrow from the source).
    std::vector<scope::Value> cells(fields.size());
    for (int64_t i = 0; i < count; ++i) {
      for (size_t c = 0; c < fields.size(); ++c) {
        if (writer.needed()[c]) cells[c] = value_of(i, c);
      }
      AIRLOCK_RETURN_IF_ERROR(writer.Add(cells));
    }
    AIRLOCK_RETURN_IF_ERROR(writer.Finish());
    host_.Info("delivered " + std::to_string(writer.delivered()) + " rows of " + spec.dataset);
    return Status::Ok();
  }

  airlock::sdk::Host host_;
  int64_t rows_ = 10;
  int64_t batch_rows_ = 4096;
  std::vector<Table> tables_;
};

}  // namespace sequence

AIRLOCK_CONNECTOR_PLUGIN(sequence::SequenceConnector, "sequence", "1.0.0",
                         "Generates (n, n*n, label) rows and serves tables from its configuration",
                         R"({"type":"object","properties":{)"
                         R"("rows":{"type":"integer","minimum":0,"maximum":10000000},)"
                         R"("batch_rows":{"type":"integer","minimum":1,"maximum":1048576},)"
                         R"("tables":{"type":"array","items":{"type":"object"}}},)"
                         R"("additionalProperties":false})")
