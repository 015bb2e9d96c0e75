// The connector conformance kit: one GoogleTest suite any connector runs
// against itself, through the C ABI exactly as an enclave drives it.
//
// A connector author writes a fixture that prepares a few datasets in the
// source (files, tables, collections) and says how to load the connector,
// then instantiates the suite once:
//
//   #include <airlock/testing/connector_conformance.hpp>
//
//   class MyFixture : public airlock::conformance::ConnectorFixture {
//    public:
//     airlock::Result<airlock::conformance::ConformanceSetup> Prepare() override {
//       airlock::conformance::ConformanceSetup setup;
//       setup.connector.plugin_path = "/path/to/my_connector.so";
//       setup.config_json = R"({"dsn": "...", "password": "env:MY_PASSWORD"})";
//       setup.typed = {"customers"};        // holds exactly TypedRows()
//       ...
//       return setup;
//     }
//   };
//   AIRLOCK_CONNECTOR_CONFORMANCE_SUITE(MyConnector, MyFixture);   // at global scope
//
// What the fixture must provide is documented on ConformanceSetup and in
// docs/sdk.md ("Conformance kit"). The kit checks: describe, full pulls,
// column scope, every row-filter operator, masks (equal to scope::Masker's
// output), NULLs, empty datasets, bounded incremental streaming, sink refusal,
// cancellation, distinct error codes for a missing object / bad credentials /
// permission denied, fail-closed handling of malformed input, no secret in any
// error message or log line, no exception across the ABI, concurrent pulls on
// one instance, and the Arrow release contract of every schema and batch
// (run the suite under AddressSanitizer to catch leaks and double frees).
//
// Header-only. Depends on the SDK headers (C ABI, airlock/cpp/*), GoogleTest,
// OpenSSL's libcrypto (masking.hpp) and dlopen: link Airlock::sdk,
// OpenSSL::Crypto, GTest::gtest_main (or GTest::gtest) and ${CMAKE_DL_LIBS}.
// Thread-safety: the suite drives one connector at a time; the kit's host
// services are safe to call from any thread.
#pragma once

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "airlock/c/airlock_plugin.h"
#include "airlock/cpp/abi_util.hpp"
#include "airlock/cpp/arrow.hpp"
#include "airlock/cpp/masking.hpp"
#include "airlock/cpp/scope.hpp"
#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"
#include "airlock/testing/plugin_harness.hpp"

namespace airlock::conformance {

// ===========================================================================
// The typed dataset every fixture prepares.
//
// Columns, in this order (the connector must deliver these Arrow types):
//   id          int64      ("l")        never NULL, unique
//   name        utf8       ("u")        NULL in rows 3 and 6; "" (empty, not NULL) in row 7
//   amount      float64    ("g")        NULL in rows 4 and 6
//   active      bool       ("b")        NULL in rows 4 and 6
//   created_at  timestamp  ("tsu:<tz>") microseconds, UTC; NULL in rows 4 and 6
//
// Rows (TypedRows() holds them as data; TypedRowsCsv() / TypedRowsJsonLines()
// render them for file- or COPY-based sources):
//   1  "alice"               10.5       true   2024-01-02T03:04:05Z
//   2  "bob"                 -3.25      false  2024-02-29T12:00:00Z
//   3  NULL                  0          true   2023-12-31T23:59:59.25Z
//   4  "O'Brien, \"Jr\""     NULL       NULL   NULL
//   5  "zoë 東京"            1000000    false  1970-01-01T00:00:00Z
//   6  NULL                  NULL       NULL   NULL
//   7  ""                    7.75       true   2000-06-15T08:30:00Z
// ===========================================================================

struct TypedRow {
  int64_t id = 0;
  std::optional<std::string> name;
  std::optional<double> amount;
  std::optional<bool> active;
  std::optional<std::string> created_at;  // RFC 3339, UTC ("Z")
};

inline const std::vector<TypedRow>& TypedRows() {
  static const std::vector<TypedRow> rows = {
      {1, "alice", 10.5, true, "2024-01-02T03:04:05Z"},
      {2, "bob", -3.25, false, "2024-02-29T12:00:00Z"},
      {3, std::nullopt, 0.0, true, "2023-12-31T23:59:59.25Z"},
      {4, "O'Brien, \"Jr\"", std::nullopt, std::nullopt, std::nullopt},
      {5, "zo\xC3\xAB \xE6\x9D\xB1\xE4\xBA\xAC", 1000000.0, false, "1970-01-01T00:00:00Z"},
      {6, std::nullopt, std::nullopt, std::nullopt, std::nullopt},
      {7, "", 7.75, true, "2000-06-15T08:30:00Z"},
  };
  return rows;
}

// Column names and Arrow types of the typed dataset, in source order.
inline std::vector<arrow::Field> TypedColumns() {
  return {{"id", arrow::Type::kInt64, "", false},
          {"name", arrow::Type::kUtf8, "", true},
          {"amount", arrow::Type::kFloat64, "", true},
          {"active", arrow::Type::kBool, "", true},
          {"created_at", arrow::Type::kTimestampMicros, "UTC", true}};
}

namespace detail {

inline std::string FormatDouble(double value) {
  std::ostringstream out;
  out.precision(17);
  out << value;
  return out.str();
}

}  // namespace detail

// The typed rows as RFC 4180 CSV with a header line. NULL is an unquoted empty
// field, the empty string is `""` (the convention of the files connector and
// of PostgreSQL's COPY ... CSV).
inline std::string TypedRowsCsv(char delimiter = ',') {
  auto quote = [delimiter](const std::string& text) {
    if (text.empty()) return std::string("\"\"");
    if (text.find_first_of(std::string("\"\r\n") + delimiter) == std::string::npos) return text;
    std::string out = "\"";
    for (char c : text) {
      if (c == '"') out += '"';
      out += c;
    }
    return out + "\"";
  };
  std::string out;
  const char d = delimiter;
  out += std::string("id") + d + "name" + d + "amount" + d + "active" + d + "created_at\n";
  for (const auto& row : TypedRows()) {
    out += std::to_string(row.id);
    out += d;
    if (row.name) out += quote(*row.name);
    out += d;
    if (row.amount) out += detail::FormatDouble(*row.amount);
    out += d;
    if (row.active) out += *row.active ? "true" : "false";
    out += d;
    if (row.created_at) out += *row.created_at;
    out += "\n";
  }
  return out;
}

// The typed rows as a JSON array of objects (member order as TypedColumns());
// NULL is JSON null, created_at an RFC 3339 string. For document stores and
// sources configured with inline rows.
inline nlohmann::ordered_json TypedRowsAsJson() {
  using J = nlohmann::ordered_json;
  J rows = J::array();
  for (const auto& row : TypedRows()) {
    J j;
    j["id"] = row.id;
    j["name"] = row.name ? J(*row.name) : J();
    j["amount"] = row.amount ? J(*row.amount) : J();
    j["active"] = row.active ? J(*row.active) : J();
    j["created_at"] = row.created_at ? J(*row.created_at) : J();
    rows.push_back(std::move(j));
  }
  return rows;
}

// The typed rows as JSON Lines; NULL is JSON null. created_at is an RFC 3339
// string, so a source reading JSON must be told (or infer) it is a timestamp.
inline std::string TypedRowsJsonLines() {
  std::string out;
  for (const auto& row : TypedRowsAsJson()) out += row.dump() + "\n";
  return out;
}

// ===========================================================================
// What the fixture provides.
// ===========================================================================

// How to reach the connector. Set exactly one member.
struct ConnectorSource {
  // A built plugin (.so): loaded with dlopen, entered through
  // airlock_plugin_entry_v1 with the kit's host services, kept loaded.
  std::string plugin_path;
  // Or the entry point of a plugin linked into the test binary.
  airlock_on_plugin_entry_v1_plugin_ptr entry = nullptr;
  // Or a bare connector table (the kit's host services are then not handed
  // to the plugin; use it for tables written in plain C).
  const airlock_type_connector_vtable* vtable = nullptr;
};

// One dataset as a pull names it.
struct DatasetRef {
  std::string dataset;  // the pull's "dataset" and the name describe() lists
  std::string object;   // the pull's "object"; empty: the same as dataset
};

// A connector configured (or a dataset chosen) so that an error must follow.
struct ErrorCase {
  std::string config_json;  // create() configuration; empty: ConformanceSetup::config_json
  DatasetRef dataset;       // what to pull; empty name: ConformanceSetup::typed
};

struct ConformanceSetup {
  // Non-empty: every test is skipped with this reason (e.g. "PostgreSQL is
  // not installed"). Use sparingly: a skipped suite proves nothing.
  std::string skip_reason;

  ConnectorSource connector;
  // create() configuration for every test but the error cases.
  std::string config_json = "{}";

  // Holds exactly TypedRows() with TypedColumns() (see the table above).
  DatasetRef typed;
  // No rows. Its schema must still arrive; when `empty_columns` is not empty
  // the delivered column names must equal it.
  DatasetRef empty;
  std::vector<std::string> empty_columns;
  // `large_rows` rows with an int64 column (`large_id_column`, "id" by
  // default) holding 1..large_rows; other columns are free. Choose large_rows so that it spans
  // several batches.
  DatasetRef large;
  int64_t large_rows = 0;
  std::string large_id_column = "id";  // the int64 column holding 1..large_rows
  // Bounds on every delivered batch of the large dataset.
  size_t max_batch_rows = 65536;
  size_t max_batch_bytes = 64u << 20;

  // Does not exist in the source: NOT_FOUND.
  DatasetRef missing;

  // A configuration whose credential is wrong: UNAUTHENTICATED, from
  // create() or from the pull. Leave empty and say why in
  // `bad_credentials_not_applicable` for sources without credentials.
  std::optional<ErrorCase> bad_credentials;
  std::string bad_credentials_not_applicable;
  // An object the connector may not read: PERMISSION_DENIED.
  std::optional<ErrorCase> permission_denied;
  std::string permission_denied_not_applicable;
  // Cancellation is tested on the large dataset; a connector that really
  // cannot stop early says why here (the test is then skipped).
  std::string cancellation_not_applicable;

  // Secret references the kit's host resolves (secret_resolve), e.g.
  // {"env:PG_PASSWORD", "s3cret"}. References not listed resolve `env:NAME`
  // from the environment and `file:/path` from the file.
  std::map<std::string, std::string> secret_references;
  // Values that must never appear in an error message or a log line (the
  // values of secret_references are added automatically): include the wrong
  // password of `bad_credentials`.
  std::vector<std::string> secret_values;
};

// Derive from this, default-constructible. The kit creates one fixture per
// suite, calls Prepare() once before the first test and destroys the fixture
// after the last (clean up the source in the destructor).
class ConnectorFixture {
 public:
  virtual ~ConnectorFixture() = default;
  // Prepares the datasets and says how to reach the connector. A non-ok
  // Status fails every test with its message.
  virtual Result<ConformanceSetup> Prepare() = 0;
};

// ===========================================================================
// Loading and driving a connector through its table.
// ===========================================================================

// The connector table for `source`; loaded libraries stay loaded for the
// process (a host never unloads a library whose entry point kept its table).
inline Result<const airlock_type_connector_vtable*> LoadConnector(const ConnectorSource& source) {
  if (source.vtable != nullptr) return source.vtable;
  const airlock_type_plugin_info* info = nullptr;
  if (source.entry != nullptr) {
    AIRLOCK_ASSIGN_OR_RETURN(info, EnterPlugin(source.entry));
  } else if (!source.plugin_path.empty()) {
    AIRLOCK_ASSIGN_OR_RETURN(info, EnterPluginFile(source.plugin_path));
  } else {
    return Status::InvalidArgument("ConnectorSource names no plugin_path, entry or vtable");
  }
  return TableOf<airlock_type_connector_vtable>(*info, AIRLOCK_KIND_CONNECTOR, "connector",
                                                "connector", AIRLOCK_CONNECTOR_VTABLE_1_0_SIZE);
}

// One delivered cell, owned.
struct Cell {
  enum class Kind { kNull, kInt, kFloat, kBool, kText, kTimestamp, kOther };
  Kind kind = Kind::kNull;
  int64_t i = 0;
  double d = 0;
  bool b = false;
  std::string s;

  static Cell Null() { return {}; }
  static Cell Int(int64_t v) { return {Kind::kInt, v, 0, false, {}}; }
  static Cell Float(double v) { return {Kind::kFloat, 0, v, false, {}}; }
  static Cell Bool(bool v) { return {Kind::kBool, 0, 0, v, {}}; }
  static Cell Text(std::string v) { return {Kind::kText, 0, 0, false, std::move(v)}; }
  static Cell Timestamp(int64_t micros) { return {Kind::kTimestamp, micros, 0, false, {}}; }

  friend bool operator==(const Cell& a, const Cell& b) {
    if (a.kind != b.kind) return false;
    switch (a.kind) {
      case Kind::kNull:
        return true;
      case Kind::kInt:
      case Kind::kTimestamp:
        return a.i == b.i;
      case Kind::kFloat:
        return a.d == b.d;
      case Kind::kBool:
        return a.b == b.b;
      case Kind::kText:
      case Kind::kOther:
        return a.s == b.s;
    }
    return false;
  }
  friend std::ostream& operator<<(std::ostream& out, const Cell& c) {
    switch (c.kind) {
      case Kind::kNull:
        return out << "NULL";
      case Kind::kInt:
        return out << c.i;
      case Kind::kFloat:
        return out << detail::FormatDouble(c.d);
      case Kind::kBool:
        return out << (c.b ? "true" : "false");
      case Kind::kText:
        return out << '"' << c.s << '"';
      case Kind::kTimestamp:
        return out << arrow::FormatTimestamp(c.i, true);
      case Kind::kOther:
        return out << "<" << c.s << ">";
    }
    return out;
  }
};

using Row = std::vector<Cell>;

inline Cell CellAt(const arrow::BatchView& view, size_t col, size_t row) {
  if (view.IsNull(col, row)) return Cell::Null();
  switch (view.field(col).type) {
    case arrow::Type::kInt64:
      return Cell::Int(view.GetInt64(col, row));
    case arrow::Type::kInt32:
      return Cell::Int(view.GetInt32(col, row));
    case arrow::Type::kFloat64:
      return Cell::Float(view.GetDouble(col, row));
    case arrow::Type::kBool:
      return Cell::Bool(view.GetBool(col, row));
    case arrow::Type::kUtf8:
    case arrow::Type::kBinary:
      return Cell::Text(std::string(view.GetString(col, row)));
    case arrow::Type::kTimestampMicros:
      return Cell::Timestamp(view.GetTimestamp(col, row));
    default: {
      Cell c;
      c.kind = Cell::Kind::kOther;
      scope::AppendText(scope::ValueAt(view, col, row), &c.s);
      return c;
    }
  }
}

// Payload bytes of one batch (validity, values, offsets and string data of
// every column), as a bound on what the connector held for it.
inline uint64_t BatchBytes(const arrow::BatchView& view) {
  const uint64_t rows = view.num_rows();
  uint64_t bytes = 0;
  for (size_t c = 0; c < view.num_columns(); ++c) {
    const auto& col = view.column(c);
    if (col.validity != nullptr) bytes += (rows + 7) / 8;
    if (col.type == arrow::Type::kBool) {
      bytes += (rows + 7) / 8;
    } else if (arrow::IsVarSize(col.type)) {
      bytes += (rows + 1) * sizeof(int32_t);
      if (rows > 0 && col.offsets != nullptr) {
        int32_t first = 0, last = 0;
        std::memcpy(&first, col.offsets + col.offset, sizeof first);
        std::memcpy(&last, col.offsets + col.offset + static_cast<int64_t>(rows), sizeof last);
        if (last > first) bytes += static_cast<uint64_t>(last - first);
      }
    } else {
      bytes += rows * arrow::FixedWidth(col.type);
    }
  }
  return bytes;
}

// How the kit's sink behaves during one pull.
struct SinkOptions {
  bool keep_rows = true;              // decode and keep every row
  int64_t cancel_after_batches = -1;  // is_cancelled answers 1 once this many batches arrived
  airlock_type_status refuse_schema = AIRLOCK_OK;  // on_schema answers this
  airlock_type_status refuse_batch = AIRLOCK_OK;   // on_batch answers this (first batch)
  std::string id_column = "id";                    // tracked in `ids` even when rows are not kept
};

// Everything one pull produced.
struct PullOutcome {
  airlock_type_status status = AIRLOCK_ERR_UNKNOWN;
  std::string message;
  bool exception_escaped = false;
  int schemas = 0;
  std::vector<arrow::Field> fields;
  std::vector<Row> rows;
  std::vector<int64_t> ids;
  std::vector<size_t> batch_rows;
  std::vector<uint64_t> batch_bytes;
  std::vector<uint64_t> progress_rows;
  int batches_after_cancel = 0;
  bool cancel_signalled = false;
  std::chrono::steady_clock::duration first_batch_after{};
  std::chrono::steady_clock::duration total{};
  std::vector<std::string> problems;  // contract violations seen by the sink

  uint64_t total_rows() const {
    uint64_t n = 0;
    for (size_t r : batch_rows) n += r;
    return n;
  }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& f : fields) out.push_back(f.name);
    return out;
  }
  int column(std::string_view name) const {
    for (size_t i = 0; i < fields.size(); ++i) {
      if (fields[i].name == name) return static_cast<int>(i);
    }
    return -1;
  }
  // Rows sorted by the "id" column (when present).
  std::vector<Row> sorted_rows() const {
    std::vector<Row> out = rows;
    const int id = column("id");
    if (id >= 0) {
      std::stable_sort(out.begin(), out.end(), [id](const Row& a, const Row& b) {
        return a[static_cast<size_t>(id)].i < b[static_cast<size_t>(id)].i;
      });
    }
    return out;
  }
};

namespace detail {

// The kit's airlock_type_batch_sink: takes ownership of what arrives, checks
// the Arrow contract, and releases everything itself.
class Recorder {
 public:
  Recorder(const SinkOptions& options, PullOutcome* out) : options_(options), out_(out) {
    std::memset(&sink_, 0, sizeof(sink_));
    std::memset(&schema_, 0, sizeof(schema_));
    sink_.size = sizeof(sink_);
    sink_.host_data = this;
    sink_.on_schema = [](void* self, ArrowSchema* schema) {
      return static_cast<Recorder*>(self)->OnSchema(schema);
    };
    sink_.on_batch = [](void* self, ArrowArray* batch) {
      return static_cast<Recorder*>(self)->OnBatch(batch);
    };
    sink_.is_cancelled = [](void* self) -> int32_t {
      return static_cast<Recorder*>(self)->IsCancelled() ? 1 : 0;
    };
    sink_.on_progress = [](void* self, uint64_t rows, uint64_t) {
      static_cast<Recorder*>(self)->out_->progress_rows.push_back(rows);
    };
  }
  ~Recorder() { ReleaseSchema(); }
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  const airlock_type_batch_sink* sink() const { return &sink_; }
  void Start() { start_ = std::chrono::steady_clock::now(); }
  void Stop() { out_->total = std::chrono::steady_clock::now() - start_; }

  void ReleaseSchema() {
    if (schema_.release == nullptr) return;
    schema_.release(&schema_);
    if (schema_.release != nullptr) {
      out_->problems.push_back("the schema's release callback did not set itself to NULL");
      schema_.release = nullptr;
    }
  }

 private:
  airlock_type_status OnSchema(ArrowSchema* schema) {
    ++out_->schemas;
    if (schema == nullptr || schema->release == nullptr) {
      out_->problems.push_back("on_schema received a NULL or released schema");
      return AIRLOCK_ERR_INVALID_ARGUMENT;
    }
    ArrowSchema taken = *schema;  // move: bitwise copy, then the source is released-looking
    schema->release = nullptr;
    if (out_->schemas > 1) {
      out_->problems.push_back("on_schema was called more than once");
      taken.release(&taken);
      return AIRLOCK_ERR_INVALID_ARGUMENT;
    }
    if (!out_->batch_rows.empty()) out_->problems.push_back("a batch arrived before the schema");
    schema_ = taken;
    if (schema_.format == nullptr || std::string_view(schema_.format) != "+s") {
      out_->problems.push_back("the schema is not a struct ('+s')");
    } else {
      for (int64_t i = 0; i < schema_.n_children; ++i) {
        auto field = arrow::ParseField(*schema_.children[i]);
        if (!field.ok()) {
          out_->problems.push_back("schema child " + std::to_string(i) + ": " +
                                   field.status().ToString());
          continue;
        }
        out_->fields.push_back(*field);
      }
    }
    if (options_.refuse_schema != AIRLOCK_OK) return options_.refuse_schema;
    return AIRLOCK_OK;
  }

  airlock_type_status OnBatch(ArrowArray* batch) {
    const auto now = std::chrono::steady_clock::now();
    if (batch == nullptr || batch->release == nullptr) {
      out_->problems.push_back("on_batch received a NULL or released array");
      return AIRLOCK_ERR_INVALID_ARGUMENT;
    }
    ArrowArray taken = *batch;
    batch->release = nullptr;
    if (out_->batch_rows.empty()) out_->first_batch_after = now - start_;
    if (cancelled_) ++out_->batches_after_cancel;
    size_t rows = 0;
    if (schema_.release == nullptr) {
      out_->problems.push_back("a batch arrived without a schema");
    } else {
      auto view = arrow::BatchView::Make(schema_, taken);
      if (!view.ok()) {
        out_->problems.push_back("batch " + std::to_string(out_->batch_rows.size()) +
                                 " does not match the schema: " + view.status().ToString());
      } else {
        rows = view->num_rows();
        out_->batch_bytes.push_back(BatchBytes(*view));
        int id = -1;
        for (size_t c = 0; c < view->num_columns(); ++c) {
          if (view->field(c).name == options_.id_column) id = static_cast<int>(c);
        }
        for (size_t r = 0; r < rows; ++r) {
          if (id >= 0 && !view->IsNull(static_cast<size_t>(id), r) &&
              view->field(static_cast<size_t>(id)).type == arrow::Type::kInt64) {
            out_->ids.push_back(view->GetInt64(static_cast<size_t>(id), r));
          }
          if (!options_.keep_rows) continue;
          Row row;
          row.reserve(view->num_columns());
          for (size_t c = 0; c < view->num_columns(); ++c) row.push_back(CellAt(*view, c, r));
          out_->rows.push_back(std::move(row));
        }
      }
    }
    out_->batch_rows.push_back(rows);
    taken.release(&taken);
    if (taken.release != nullptr) {
      out_->problems.push_back("a batch's release callback did not set itself to NULL");
    }
    if (options_.refuse_batch != AIRLOCK_OK) return options_.refuse_batch;
    return AIRLOCK_OK;
  }

  bool IsCancelled() {
    if (options_.cancel_after_batches >= 0 &&
        out_->batch_rows.size() >= static_cast<size_t>(options_.cancel_after_batches)) {
      cancelled_ = true;
      out_->cancel_signalled = true;
    }
    return cancelled_;
  }

  SinkOptions options_;
  PullOutcome* out_;
  airlock_type_batch_sink sink_;
  ArrowSchema schema_;
  bool cancelled_ = false;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace detail

// One connector instance, created through the table and destroyed with it.
class ConnectorInstance {
 public:
  ConnectorInstance(const airlock_type_connector_vtable* table, const std::string& config)
      : table_(table) {
    abi::ErrorHolder error;
    try {
      status_ = table_->create(config.data(), config.size(), &instance_, error.get());
    } catch (...) {
      exception_escaped_ = true;
      status_ = AIRLOCK_ERR_INTERNAL;
    }
    message_ = error.message();
    if (status_ != AIRLOCK_OK && instance_ != nullptr) {
      problem_ = "create() failed but left an instance behind";
      table_->destroy(instance_);
      instance_ = nullptr;
    }
  }
  ~ConnectorInstance() {
    if (instance_ != nullptr) table_->destroy(instance_);
  }
  ConnectorInstance(const ConnectorInstance&) = delete;
  ConnectorInstance& operator=(const ConnectorInstance&) = delete;

  bool ok() const { return status_ == AIRLOCK_OK && instance_ != nullptr; }
  airlock_type_status status() const { return status_; }
  const std::string& message() const { return message_; }
  bool exception_escaped() const { return exception_escaped_; }
  const std::string& problem() const { return problem_; }

  // describe(): the catalog text, or the error.
  struct Described {
    airlock_type_status status = AIRLOCK_ERR_UNKNOWN;
    std::string message;
    std::string catalog;
    bool exception_escaped = false;
  };
  Described Describe() const {
    Described out;
    abi::BufferHolder buffer;
    abi::ErrorHolder error;
    try {
      out.status = table_->describe(instance_, buffer.get(), error.get());
    } catch (...) {
      out.exception_escaped = true;
      out.status = AIRLOCK_ERR_INTERNAL;
    }
    out.message = error.message();
    if (out.status == AIRLOCK_OK) out.catalog = std::string(buffer.view());
    return out;
  }

  // pull() with a raw pull document.
  PullOutcome PullText(const std::string& pull_json, const SinkOptions& options = {}) const {
    PullOutcome out;
    detail::Recorder recorder(options, &out);
    abi::ErrorHolder error;
    recorder.Start();
    try {
      out.status =
          table_->pull(instance_, pull_json.data(), pull_json.size(), recorder.sink(), error.get());
    } catch (...) {
      out.exception_escaped = true;
      out.status = AIRLOCK_ERR_INTERNAL;
    }
    recorder.Stop();
    recorder.ReleaseSchema();
    out.message = error.message();
    return out;
  }

  PullOutcome Pull(const DatasetRef& dataset, const Json& scope = Json::object(),
                   const SinkOptions& options = {}) const {
    Json spec = {{"dataset", dataset.dataset}, {"scope", scope}};
    spec["object"] = dataset.object.empty() ? dataset.dataset : dataset.object;
    return PullText(spec.dump(), options);
  }

 private:
  const airlock_type_connector_vtable* table_;
  void* instance_ = nullptr;
  airlock_type_status status_ = AIRLOCK_ERR_UNKNOWN;
  std::string message_;
  std::string problem_;
  bool exception_escaped_ = false;
};

// ===========================================================================
// Expectations.
// ===========================================================================

inline std::optional<int64_t> TimestampMicros(const std::string& rfc3339) {
  return scope::ParseTimestampMicros(rfc3339);
}

// The typed rows as delivered cells, in TypedColumns() order.
inline std::vector<Row> ExpectedTypedRows() {
  std::vector<Row> rows;
  for (const auto& r : TypedRows()) {
    Row row;
    row.push_back(Cell::Int(r.id));
    row.push_back(r.name ? Cell::Text(*r.name) : Cell::Null());
    row.push_back(r.amount ? Cell::Float(*r.amount) : Cell::Null());
    row.push_back(r.active ? Cell::Bool(*r.active) : Cell::Null());
    row.push_back(r.created_at ? Cell::Timestamp(*TimestampMicros(*r.created_at)) : Cell::Null());
    rows.push_back(std::move(row));
  }
  return rows;
}

// The value the SDK's Masker produces for typed cell (row, column), or NULL.
inline Cell ExpectedMasked(const TypedRow& row, const std::string& column, scope::MaskFunction fn) {
  scope::Value value;
  int64_t micros = 0;
  if (column == "id") {
    value = scope::Value::Int64(row.id);
  } else if (column == "name" && row.name) {
    value = scope::Value::String(*row.name);
  } else if (column == "amount" && row.amount) {
    value = scope::Value::Float64(*row.amount);
  } else if (column == "active" && row.active) {
    value = scope::Value::Bool(*row.active);
  } else if (column == "created_at" && row.created_at) {
    micros = *TimestampMicros(*row.created_at);
    value = scope::Value::Timestamp(micros);
  }
  if (value.is_null()) return Cell::Null();
  scope::Masker masker;
  std::string out;
  masker.Mask(fn, value, &out);
  return Cell::Text(out);
}

// One row-filter case and the ids it must keep.
struct FilterCase {
  std::string label;
  Json row_filter;
  std::vector<int64_t> ids;
};

inline std::vector<FilterCase> FilterCases() {
  auto c = [](std::string column, std::string op, Json value = Json()) {
    Json j = {{"column", std::move(column)}, {"op", std::move(op)}};
    if (!value.is_null()) j["value"] = std::move(value);
    return j;
  };
  return {
      {"eq int64", Json::array({c("id", "eq", 2)}), {2}},
      {"eq utf8", Json::array({c("name", "eq", "alice")}), {1}},
      {"eq utf8 with quotes and comma", Json::array({c("name", "eq", "O'Brien, \"Jr\"")}), {4}},
      {"eq empty string (not NULL)", Json::array({c("name", "eq", "")}), {7}},
      {"eq bool", Json::array({c("active", "eq", true)}), {1, 3, 7}},
      {"ne utf8 (NULL excluded)", Json::array({c("name", "ne", "alice")}), {2, 4, 5, 7}},
      {"ne int64", Json::array({c("id", "ne", 1)}), {2, 3, 4, 5, 6, 7}},
      {"lt float64", Json::array({c("amount", "lt", 0)}), {2}},
      {"le float64", Json::array({c("amount", "le", 0)}), {2, 3}},
      {"gt float64", Json::array({c("amount", "gt", 7.75)}), {1, 5}},
      {"ge float64", Json::array({c("amount", "ge", 7.75)}), {1, 5, 7}},
      {"le int64", Json::array({c("id", "le", 2)}), {1, 2}},
      {"ge timestamp", Json::array({c("created_at", "ge", "2024-01-01T00:00:00Z")}), {1, 2}},
      {"lt timestamp", Json::array({c("created_at", "lt", "2000-01-01T00:00:00Z")}), {5}},
      {"in int64", Json::array({c("id", "in", Json::array({1, 3, 99}))}), {1, 3}},
      {"in utf8",
       Json::array({c("name", "in", Json::array({"bob", "zo\xC3\xAB \xE6\x9D\xB1\xE4\xBA\xAC"}))}),
       {2, 5}},
      {"not_in utf8 (NULL excluded)",
       Json::array({c("name", "not_in", Json::array({"alice", "bob"}))}),
       {4, 5, 7}},
      {"is_null utf8", Json::array({c("name", "is_null")}), {3, 6}},
      {"is_null float64", Json::array({c("amount", "is_null")}), {4, 6}},
      {"is_null bool", Json::array({c("active", "is_null")}), {4, 6}},
      {"is_null timestamp", Json::array({c("created_at", "is_null")}), {4, 6}},
      {"not_null float64", Json::array({c("amount", "not_null")}), {1, 2, 3, 5, 7}},
      {"like %o%", Json::array({c("name", "like", "%o%")}), {2, 5}},
      {"like is case-sensitive", Json::array({c("name", "like", "O%")}), {4}},
      {"like _ob", Json::array({c("name", "like", "_ob")}), {2}},
      {"all conditions hold (AND)",
       Json::array({c("id", "gt", 1), c("name", "not_null"), c("amount", "lt", 100)}),
       {2, 7}},
      {"nothing matches", Json::array({c("id", "gt", 1000)}), {}},
  };
}

// ===========================================================================
// The suite.
// ===========================================================================

template <typename Fixture>
class ConnectorConformance : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    fixture_ = std::make_unique<Fixture>();
    auto prepared = fixture_->Prepare();
    if (!prepared.ok()) {
      prepare_error_ = "the fixture's Prepare() failed: " + prepared.status().ToString();
      return;
    }
    setup_ = std::make_unique<ConformanceSetup>(std::move(prepared).value());
    for (const auto& [reference, value] : setup_->secret_references) {
      if (!value.empty()) setup_->secret_values.push_back(value);
    }
    KitHost::Get().Configure(setup_->secret_references);
    if (!setup_->skip_reason.empty()) return;
    auto table = LoadConnector(setup_->connector);
    if (!table.ok()) {
      prepare_error_ = "cannot load the connector: " + table.status().ToString();
      return;
    }
    table_ = *table;
  }

  static void TearDownTestSuite() {
    setup_.reset();
    fixture_.reset();
    prepare_error_.clear();
    table_ = nullptr;
  }

  void SetUp() override {
    ASSERT_TRUE(prepare_error_.empty()) << prepare_error_;
    ASSERT_NE(setup_, nullptr);
    if (!setup_->skip_reason.empty()) GTEST_SKIP() << setup_->skip_reason;
    KitHost::Get().ClearLogs();
  }

  void TearDown() override {
    if (setup_ == nullptr) return;
    for (const auto& line : KitHost::Get().logs()) ExpectNoSecret(line, "a log line");
  }

  const ConformanceSetup& setup() const { return *setup_; }

  // A connector made from `config` (default: the setup's); fails the test
  // when create() fails.
  std::unique_ptr<ConnectorInstance> Connect(const std::string& config = {}) const {
    auto instance =
        std::make_unique<ConnectorInstance>(table_, config.empty() ? setup_->config_json : config);
    EXPECT_FALSE(instance->exception_escaped()) << "an exception escaped create()";
    EXPECT_TRUE(instance->ok()) << "create() failed (" << instance->status()
                                << "): " << this->Shown(instance->message());
    ExpectNoSecret(instance->message(), "create()'s error");
    return instance;
  }

  // `text` with every secret value replaced, for failure messages.
  std::string Shown(std::string text) const {
    for (const auto& secret : setup_->secret_values) {
      if (secret.empty()) continue;
      for (size_t at = text.find(secret); at != std::string::npos; at = text.find(secret, at)) {
        text.replace(at, secret.size(), "<secret>");
      }
    }
    return text;
  }

  void ExpectNoSecret(const std::string& text, const std::string& where) const {
    for (const auto& secret : setup_->secret_values) {
      if (secret.empty()) continue;
      EXPECT_EQ(text.find(secret), std::string::npos) << where << " reveals a secret value";
    }
  }

  // The contract every pull keeps, whatever its outcome.
  void ExpectSound(const PullOutcome& out, const std::string& what) const {
    SCOPED_TRACE(what);
    EXPECT_FALSE(out.exception_escaped) << "an exception escaped pull()";
    for (const auto& problem : out.problems) ADD_FAILURE() << problem;
    ExpectNoSecret(out.message, "the pull's error");
    if (out.status != AIRLOCK_OK) {
      EXPECT_FALSE(out.message.empty())
          << "a failed pull (" << out.status << ") must say why in its error";
      EXPECT_EQ(out.message.find("raised an exception"), std::string::npos)
          << "the connector let an exception reach the ABI shim: " << this->Shown(out.message);
    }
  }

  // Pulls and expects success.
  PullOutcome PullOk(const ConnectorInstance& connector, const DatasetRef& dataset,
                     const Json& scope = Json::object(), const SinkOptions& options = {}) const {
    PullOutcome out = connector.Pull(dataset, scope, options);
    ExpectSound(out, "pull " + dataset.dataset + " " + scope.dump());
    EXPECT_EQ(out.status, AIRLOCK_OK) << this->Shown(out.message);
    EXPECT_EQ(out.schemas, 1) << "a successful pull sends exactly one schema";
    return out;
  }

  // The ids a pull of the typed dataset delivered, sorted.
  static std::vector<int64_t> SortedIds(const PullOutcome& out) {
    std::vector<int64_t> ids = out.ids;
    std::sort(ids.begin(), ids.end());
    return ids;
  }

  // Fails unless `out` delivered TypedColumns() (all, or those named) with
  // exactly the typed rows whose ids are listed.
  void ExpectTypedRows(const PullOutcome& out, const std::vector<std::string>& columns,
                       const std::vector<int64_t>& ids) const {
    const auto all = TypedColumns();
    ASSERT_EQ(out.names(), columns);
    for (size_t c = 0; c < columns.size(); ++c) {
      size_t k = 0;
      while (k < all.size() && all[k].name != columns[c]) ++k;
      ASSERT_LT(k, all.size());
      EXPECT_EQ(arrow::TypeName(out.fields[c].type), std::string(arrow::TypeName(all[k].type)))
          << "column " << columns[c];
    }
    const auto expected_all = ExpectedTypedRows();
    std::vector<Row> expected;
    for (int64_t id : ids) {
      const Row& full = expected_all[static_cast<size_t>(id - 1)];
      Row row;
      for (const auto& name : columns) {
        size_t k = 0;
        while (all[k].name != name) ++k;
        row.push_back(full[k]);
      }
      expected.push_back(std::move(row));
    }
    std::vector<Row> actual = out.rows;
    if (out.column("id") >= 0) actual = out.sorted_rows();
    ASSERT_EQ(actual.size(), expected.size());
    for (size_t r = 0; r < expected.size(); ++r) {
      for (size_t c = 0; c < columns.size(); ++c) {
        EXPECT_EQ(actual[r][c], expected[r][c]) << "row " << r << " column " << columns[c];
      }
    }
  }

  static std::vector<std::string> TypedNames() {
    std::vector<std::string> names;
    for (const auto& f : TypedColumns()) names.push_back(f.name);
    return names;
  }

  static std::vector<int64_t> AllTypedIds() {
    std::vector<int64_t> ids;
    for (const auto& r : TypedRows()) ids.push_back(r.id);
    return ids;
  }

  // Runs an error case: UNAUTHENTICATED / PERMISSION_DENIED from create()
  // or, when create() succeeds, from the pull.
  void ExpectErrorCase(const ErrorCase& error_case, airlock_type_status expected) const {
    const std::string config =
        error_case.config_json.empty() ? setup_->config_json : error_case.config_json;
    ConnectorInstance connector(table_, config);
    EXPECT_FALSE(connector.exception_escaped()) << "an exception escaped create()";
    ExpectNoSecret(connector.message(), "create()'s error");
    if (!connector.ok()) {
      EXPECT_EQ(connector.status(), expected) << this->Shown(connector.message());
      EXPECT_FALSE(connector.message().empty());
      return;
    }
    const DatasetRef dataset =
        error_case.dataset.dataset.empty() ? setup_->typed : error_case.dataset;
    PullOutcome out = connector.Pull(dataset);
    ExpectSound(out, "pull " + dataset.dataset);
    EXPECT_EQ(out.status, expected) << this->Shown(out.message);
    EXPECT_EQ(out.total_rows(), 0u) << "a refused pull delivered rows";
  }

  static inline std::unique_ptr<Fixture> fixture_;
  static inline std::unique_ptr<ConformanceSetup> setup_;
  static inline std::string prepare_error_;
  static inline const airlock_type_connector_vtable* table_ = nullptr;
};

TYPED_TEST_SUITE_P(ConnectorConformance);

// describe() lists the typed, empty and large datasets; the typed one with its
// columns and types in source order.
TYPED_TEST_P(ConnectorConformance, DescribeListsDatasetsWithColumnsAndTypes) {
  auto connector = this->Connect();
  ASSERT_TRUE(connector->ok());
  auto described = connector->Describe();
  EXPECT_FALSE(described.exception_escaped);
  ASSERT_EQ(described.status, AIRLOCK_OK) << this->Shown(described.message);
  auto parsed = json_read::Parse(described.catalog, "catalog");
  ASSERT_TRUE(parsed.ok()) << described.catalog;
  auto catalog = Catalog::FromJson(*parsed);
  ASSERT_TRUE(catalog.ok()) << catalog.status().ToString();
  auto find = [&](const std::string& name) -> const DatasetInfo* {
    for (const auto& d : catalog->datasets) {
      if (d.name == name) return &d;
    }
    return nullptr;
  };
  for (const auto* ref : {&this->setup().typed, &this->setup().empty, &this->setup().large}) {
    EXPECT_NE(find(ref->dataset), nullptr)
        << "describe() does not list '" << ref->dataset << "': " << described.catalog;
  }
  const DatasetInfo* typed = find(this->setup().typed.dataset);
  ASSERT_NE(typed, nullptr);
  const auto columns = TypedColumns();
  ASSERT_EQ(typed->columns.size(), columns.size()) << described.catalog;
  for (size_t i = 0; i < columns.size(); ++i) {
    EXPECT_EQ(typed->columns[i].name, columns[i].name);
    const std::string type = typed->columns[i].type;
    if (columns[i].type == arrow::Type::kTimestampMicros) {
      EXPECT_EQ(type.rfind("timestamp", 0), 0u) << "column " << columns[i].name << ": " << type;
    } else {
      EXPECT_EQ(type, arrow::TypeName(columns[i].type)) << "column " << columns[i].name;
    }
  }
}

// A full pull delivers exactly the typed rows, with the typed columns.
TYPED_TEST_P(ConnectorConformance, FullPullReturnsExactlyTheKnownRows) {
  auto connector = this->Connect();
  ASSERT_TRUE(connector->ok());
  PullOutcome out = this->PullOk(*connector, this->setup().typed);
  ASSERT_EQ(out.fields.size(), TypedColumns().size()) << "columns delivered";
  for (size_t i = 0; i < out.fields.size(); ++i) {
    EXPECT_EQ(out.fields[i].name, TypedColumns()[i].name);
    EXPECT_EQ(out.fields[i].type, TypedColumns()[i].type)
        << "column " << out.fields[i].name << " is " << arrow::TypeName(out.fields[i].type);
  }
  this->ExpectTypedRows(out, this->TypedNames(), this->AllTypedIds());
  EXPECT_EQ(this->SortedIds(out), this->AllTypedIds()) << "each row exactly once";
}

// Every column holds NULLs where the source does (and "" is not NULL).
TYPED_TEST_P(ConnectorConformance, NullsSurviveInEveryColumn) {
  auto connector = this->Connect();
  ASSERT_TRUE(connector->ok());
  PullOutcome out = this->PullOk(*connector, this->setup().typed);
  ASSERT_EQ(out.names(), this->TypedNames());
  const auto rows = out.sorted_rows();
  ASSERT_EQ(rows.size(), TypedRows().size());
  for (size_t c = 1; c < out.fields.size(); ++c) {
    EXPECT_TRUE(out.fields[c].nullable) << "column " << out.fields[c].name << " holds NULLs";
    std::vector<int64_t> nulls;
    for (const auto& row : rows) {
      if (row[c].kind == Cell::Kind::kNull) nulls.push_back(row[0].i);
    }
    const std::vector<int64_t> expected =
        out.fields[c].name == "name" ? std::vector<int64_t>{3, 6} : std::vector<int64_t>{4, 6};
    EXPECT_EQ(nulls, expected) << "NULL rows of column " << out.fields[c].name;
  }
  EXPECT_EQ(rows[6][1], Cell::Text("")) << "the empty string is not NULL";
}

// Only the scoped columns arrive, in the dataset's column order (the SDK's
// ScopePlan contract), and a filter may read a column that is not delivered.
TYPED_TEST_P(ConnectorConformance, ColumnScopeIsHonoured) {
  auto connector = this->Connect();
  ASSERT_TRUE(connector->ok());
  {
    PullOutcome out =
        this->PullOk(*connector, this->setup().typed, {{"columns", {"created_at", "name", "id"}}});
    this->ExpectTypedRows(out, {"id", "name", "created_at"}, this->AllTypedIds());
  }
  {
    PullOutcome out = this->PullOk(*connector, this->setup().typed, {{"columns", {"amount"}}});
    EXPECT_EQ(out.names(), std::vector<std::string>{"amount"});
    std::vector<std::string> seen;
    for (const auto& row : out.rows) {
      std::ostringstream text;
      text << row[0];
      seen.push_back(text.str());
    }
    std::sort(seen.begin(), seen.end());
    std::vector<std::string> expected;
    for (const auto& r : TypedRows()) {
      std::ostringstream text;
      text << (r.amount ? Cell::Float(*r.amount) : Cell::Null());
      expected.push_back(text.str());
    }
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(seen, expected);
  }
  {
    Json scope = {
        {"columns", {"id"}},
        {"row_filter", Json::array({{{"column", "name"}, {"op", "eq"}, {"value", "bob"}}})}};
    PullOutcome out = this->PullOk(*connector, this->setup().typed, scope);
    this->ExpectTypedRows(out, {"id"}, {2});
  }
}

// Every operator keeps exactly the rows SQL semantics keep (NULL satisfies
// nothing but is_null).
TYPED_TEST_P(ConnectorConformance, RowFilterIsHonouredForEveryOperator) {
  auto connector = this->Connect();
  ASSERT_TRUE(connector->ok());
  for (const auto& c : FilterCases()) {
    SCOPED_TRACE(c.label + ": " + c.row_filter.dump());
    PullOutcome out = this->PullOk(*connector, this->setup().typed, {{"row_filter", c.row_filter}});
    this->ExpectTypedRows(out, this->TypedNames(), c.ids);
  }
}

// Masked columns arrive as utf8 holding exactly scope::Masker's output; NULL
// stays NULL; unmasked columns are untouched.
TYPED_TEST_P(ConnectorConformance, MasksEqualTheSdkMasker) {
  auto connector = this->Connect();
  ASSERT_TRUE(connector->ok());
  const std::vector<std::pair<std::string, std::map<std::string, std::string>>> cases = {
      {"redact", {{"name", "redact"}, {"amount", "redact"}}},
      {"last4", {{"name", "last4"}, {"created_at", "last4"}}},
      {"hash", {{"name", "hash"}, {"amount", "hash"}, {"active", "hash"}, {"created_at", "hash"}}},
  };
  for (const auto& [label, masks] : cases) {
    SCOPED_TRACE(label);
    PullOutcome out = this->PullOk(*connector, this->setup().typed, {{"masks", masks}});
    ASSERT_EQ(out.names(), this->TypedNames());
    for (size_t c = 0; c < out.fields.size(); ++c) {
      if (masks.count(out.fields[c].name) != 0) {
        EXPECT_EQ(out.fields[c].type, arrow::Type::kUtf8)
            << "masked column " << out.fields[c].name << " must be utf8";
      } else {
        EXPECT_EQ(out.fields[c].type, TypedColumns()[c].type);
      }
    }
    const auto rows = out.sorted_rows();
    const auto expected_raw = ExpectedTypedRows();
    ASSERT_EQ(rows.size(), TypedRows().size());
    for (size_t r = 0; r < rows.size(); ++r) {
      for (size_t c = 0; c < out.fields.size(); ++c) {
        const std::string& name = out.fields[c].name;
        auto mask = masks.find(name);
        const Cell expected =
            mask == masks.end()
                ? expected_raw[r][c]
                : ExpectedMasked(TypedRows()[r], name, *scope::ParseMaskFunction(mask->second));
        EXPECT_EQ(rows[r][c], expected) << "row id " << TypedRows()[r].id << " column " << name;
      }
    }
  }
  // Masking composes with the column scope and the row filter.
  Json scope = {
      {"columns", {"id", "name"}},
      {"masks", {{"name", "hash"}}},
      {"row_filter", Json::array({{{"column", "name"}, {"op", "eq"}, {"value", "alice"}}})}};
  PullOutcome out = this->PullOk(*connector, this->setup().typed, scope);
  ASSERT_EQ(out.rows.size(), 1u);
  EXPECT_EQ(out.rows[0][1], ExpectedMasked(TypedRows()[0], "name", scope::MaskFunction::kHash));
}

// An empty dataset still sends its schema, then no rows.
TYPED_TEST_P(ConnectorConformance, EmptyDatasetGivesSchemaAndZeroRows) {
  auto connector = this->Connect();
  ASSERT_TRUE(connector->ok());
  PullOutcome out = this->PullOk(*connector, this->setup().empty);
  EXPECT_EQ(out.total_rows(), 0u);
  if (!this->setup().empty_columns.empty()) {
    EXPECT_EQ(out.names(), this->setup().empty_columns);
  }
  // A filter that matches nothing on a non-empty dataset behaves the same.
  PullOutcome none = this->PullOk(
      *connector, this->setup().typed,
      {{"row_filter", Json::array({{{"column", "id"}, {"op", "lt"}, {"value", -1}}})}});
  EXPECT_EQ(none.total_rows(), 0u);
  EXPECT_EQ(none.names(), this->TypedNames());
}

// The large dataset arrives whole, in several bounded batches, delivered as
// they are read: the first batch comes early in the pull, and progress grows.
TYPED_TEST_P(ConnectorConformance, LargeDatasetIsStreamedInBoundedBatches) {
  const auto& setup = this->setup();
  ASSERT_GT(setup.large_rows, 0) << "the fixture must set large_rows";
  auto connector = this->Connect();
  ASSERT_TRUE(connector->ok());
  SinkOptions options;
  options.keep_rows = false;
  options.id_column = this->setup().large_id_column;
  // The timing half of the check is retried: one scheduling hiccup must not
  // fail it, a connector that reads everything first fails every attempt.
  bool early = false;
  for (int attempt = 0; attempt < 3 && !early; ++attempt) {
    PullOutcome out = this->PullOk(*connector, setup.large, Json::object(), options);
    if (attempt == 0) {
      EXPECT_EQ(out.total_rows(), static_cast<uint64_t>(setup.large_rows));
      std::vector<int64_t> ids = this->SortedIds(out);
      ASSERT_EQ(ids.size(), static_cast<size_t>(setup.large_rows))
          << "the large dataset needs an int64 column " << setup.large_id_column;
      for (size_t i = 0; i < ids.size(); ++i) {
        ASSERT_EQ(ids[i], static_cast<int64_t>(i + 1)) << "ids must be 1..large_rows, each once";
      }
      ASSERT_GE(out.batch_rows.size(), 2u) << "the large dataset arrived in one batch";
      const size_t min_batches =
          (static_cast<size_t>(setup.large_rows) + setup.max_batch_rows - 1) / setup.max_batch_rows;
      EXPECT_GE(out.batch_rows.size(), min_batches);
      EXPECT_LE(*std::max_element(out.batch_rows.begin(), out.batch_rows.end()),
                setup.max_batch_rows);
      EXPECT_LE(*std::max_element(out.batch_bytes.begin(), out.batch_bytes.end()),
                setup.max_batch_bytes);
      for (size_t i = 1; i < out.progress_rows.size(); ++i) {
        EXPECT_GE(out.progress_rows[i], out.progress_rows[i - 1]) << "progress is cumulative";
      }
      if (!out.progress_rows.empty()) {
        EXPECT_LT(out.progress_rows.front(), static_cast<uint64_t>(setup.large_rows))
            << "the first progress report came only at the end";
      }
    }
    early = out.batch_rows.size() >= 2 && out.first_batch_after * 2 < out.total;
    if (!early) {
      std::cerr
          << "attempt " << attempt << ": first batch after "
          << std::chrono::duration_cast<std::chrono::microseconds>(out.first_batch_after).count()
          << " us of " << std::chrono::duration_cast<std::chrono::microseconds>(out.total).count()
          << " us\n";
    }
  }
  EXPECT_TRUE(early) << "the first batch must arrive in the first half of the pull, not after "
                        "the connector has read the whole dataset";
}

// A sink that refuses a batch stops the pull with the sink's status at once.
TYPED_TEST_P(ConnectorConformance, SinkRefusalStopsThePull) {
  auto connector = this->Connect();
  ASSERT_TRUE(connector->ok());
  SinkOptions options;
  options.keep_rows = false;
  options.id_column = this->setup().large_id_column;
  options.refuse_batch = AIRLOCK_ERR_RESOURCE_EXHAUSTED;
  PullOutcome out = connector->Pull(this->setup().large, Json::object(), options);
  this->ExpectSound(out, "pull with a refusing sink");
  EXPECT_EQ(out.status, AIRLOCK_ERR_RESOURCE_EXHAUSTED) << this->Shown(out.message);
  EXPECT_EQ(out.batch_rows.size(), 1u) << "batches kept coming after the sink refused one";

  SinkOptions schema_refused;
  schema_refused.refuse_schema = AIRLOCK_ERR_RESOURCE_EXHAUSTED;
  PullOutcome refused = connector->Pull(this->setup().typed, Json::object(), schema_refused);
  this->ExpectSound(refused, "pull with a sink refusing the schema");
  EXPECT_EQ(refused.status, AIRLOCK_ERR_RESOURCE_EXHAUSTED) << this->Shown(refused.message);
  EXPECT_TRUE(refused.batch_rows.empty()) << "batches came after the schema was refused";
}

// is_cancelled turning true after the first batch ends the pull with
// CANCELLED, at most one batch later.
TYPED_TEST_P(ConnectorConformance, CancellationStopsThePullPromptly) {
  if (!this->setup().cancellation_not_applicable.empty()) {
    GTEST_SKIP() << this->setup().cancellation_not_applicable;
  }
  auto connector = this->Connect();
  ASSERT_TRUE(connector->ok());
  SinkOptions options;
  options.keep_rows = false;
  options.id_column = this->setup().large_id_column;
  options.cancel_after_batches = 1;
  PullOutcome out = connector->Pull(this->setup().large, Json::object(), options);
  this->ExpectSound(out, "cancelled pull");
  EXPECT_EQ(out.status, AIRLOCK_ERR_CANCELLED) << this->Shown(out.message);
  EXPECT_TRUE(out.cancel_signalled) << "the connector never polled is_cancelled";
  EXPECT_LE(out.batches_after_cancel, 1) << "batches kept coming after cancellation";
  EXPECT_LT(out.total_rows(), static_cast<uint64_t>(this->setup().large_rows));

  // Cancelled before anything was delivered.
  SinkOptions at_once;
  at_once.cancel_after_batches = 0;
  PullOutcome early = connector->Pull(this->setup().typed, Json::object(), at_once);
  this->ExpectSound(early, "pull cancelled from the start");
  EXPECT_EQ(early.status, AIRLOCK_ERR_CANCELLED) << this->Shown(early.message);
  EXPECT_LE(early.batch_rows.size(), 1u);
}

TYPED_TEST_P(ConnectorConformance, MissingObjectIsNotFound) {
  auto connector = this->Connect();
  ASSERT_TRUE(connector->ok());
  PullOutcome out = connector->Pull(this->setup().missing);
  this->ExpectSound(out, "pull of a missing object");
  EXPECT_EQ(out.status, AIRLOCK_ERR_NOT_FOUND) << this->Shown(out.message);
  EXPECT_EQ(out.total_rows(), 0u);
  // The instance stays usable.
  PullOutcome after = this->PullOk(*connector, this->setup().typed);
  EXPECT_EQ(after.total_rows(), TypedRows().size());
}

TYPED_TEST_P(ConnectorConformance, BadCredentialsAreUnauthenticated) {
  const auto& setup = this->setup();
  if (!setup.bad_credentials) {
    ASSERT_FALSE(setup.bad_credentials_not_applicable.empty())
        << "the fixture must give a bad-credentials case or say why none applies";
    GTEST_SKIP() << setup.bad_credentials_not_applicable;
  }
  this->ExpectErrorCase(*setup.bad_credentials, AIRLOCK_ERR_UNAUTHENTICATED);
}

TYPED_TEST_P(ConnectorConformance, ForbiddenObjectIsPermissionDenied) {
  const auto& setup = this->setup();
  if (!setup.permission_denied) {
    ASSERT_FALSE(setup.permission_denied_not_applicable.empty())
        << "the fixture must give a permission-denied case or say why none applies";
    GTEST_SKIP() << setup.permission_denied_not_applicable;
  }
  this->ExpectErrorCase(*setup.permission_denied, AIRLOCK_ERR_PERMISSION_DENIED);
}

// Malformed documents and scopes fail closed with an error code (never a
// crash, an exception, or raw data).
TYPED_TEST_P(ConnectorConformance, MalformedInputFailsClosedWithoutExceptions) {
  auto connector = this->Connect();
  ASSERT_TRUE(connector->ok());
  const DatasetRef& typed = this->setup().typed;
  const std::string object = typed.object.empty() ? typed.dataset : typed.object;
  auto spec = [&](Json scope) {
    return Json{{"dataset", typed.dataset}, {"object", object}, {"scope", std::move(scope)}}.dump();
  };
  const std::vector<std::pair<std::string, std::string>> invalid = {
      {"not JSON", "{\"dataset\": "},
      {"not an object", "[1, 2]"},
      {"no dataset", "{}"},
      {"unknown scoped column", spec({{"columns", {"id", "no_such_column"}}})},
      {"unknown masked column", spec({{"masks", {{"no_such_column", "redact"}}}})},
      {"unknown mask function", spec({{"masks", {{"name", "reverse"}}}})},
      {"unknown filter column",
       spec({{"row_filter", Json::array({{{"column", "nope"}, {"op", "eq"}, {"value", 1}}})}})},
      {"unknown filter op",
       spec({{"row_filter", Json::array({{{"column", "id"}, {"op", "regex"}, {"value", 1}}})}})},
      {"literal of the wrong type",
       spec({{"row_filter", Json::array({{{"column", "id"}, {"op", "eq"}, {"value", "abc"}}})}})},
      {"in without a list",
       spec({{"row_filter", Json::array({{{"column", "id"}, {"op", "in"}, {"value", 1}}})}})},
  };
  for (const auto& [label, text] : invalid) {
    SCOPED_TRACE(label);
    PullOutcome out = connector->PullText(text);
    this->ExpectSound(out, label);
    EXPECT_EQ(out.status, AIRLOCK_ERR_INVALID_ARGUMENT) << this->Shown(out.message);
    EXPECT_EQ(out.total_rows(), 0u) << "rows were delivered for a scope that cannot be honoured";
  }
  // Bad configurations are refused at create().
  for (const std::string config : {"{not json", "[]", "42"}) {
    SCOPED_TRACE(config);
    ConnectorInstance bad(this->table_, config);
    EXPECT_FALSE(bad.exception_escaped());
    EXPECT_FALSE(bad.ok());
    EXPECT_TRUE(bad.problem().empty()) << bad.problem();
    EXPECT_NE(bad.status(), AIRLOCK_OK);
    EXPECT_EQ(bad.message().find("raised an exception"), std::string::npos)
        << this->Shown(bad.message());
  }
}

// One instance serves concurrent pulls (the ABI's default thread-safety).
TYPED_TEST_P(ConnectorConformance, ConcurrentPullsOnOneInstance) {
  auto connector = this->Connect();
  ASSERT_TRUE(connector->ok());
  constexpr int kThreads = 4;
  std::vector<PullOutcome> outcomes(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back(
        [&, t] { outcomes[static_cast<size_t>(t)] = connector->Pull(this->setup().typed); });
  }
  for (auto& thread : threads) thread.join();
  for (const auto& out : outcomes) {
    this->ExpectSound(out, "concurrent pull");
    EXPECT_EQ(out.status, AIRLOCK_OK) << this->Shown(out.message);
    EXPECT_EQ(this->SortedIds(out), this->AllTypedIds());
  }
}

REGISTER_TYPED_TEST_SUITE_P(ConnectorConformance, DescribeListsDatasetsWithColumnsAndTypes,
                            FullPullReturnsExactlyTheKnownRows, NullsSurviveInEveryColumn,
                            ColumnScopeIsHonoured, RowFilterIsHonouredForEveryOperator,
                            MasksEqualTheSdkMasker, EmptyDatasetGivesSchemaAndZeroRows,
                            LargeDatasetIsStreamedInBoundedBatches, SinkRefusalStopsThePull,
                            CancellationStopsThePullPromptly, MissingObjectIsNotFound,
                            BadCredentialsAreUnauthenticated, ForbiddenObjectIsPermissionDenied,
                            MalformedInputFailsClosedWithoutExceptions,
                            ConcurrentPullsOnOneInstance);

}  // namespace airlock::conformance

// Instantiates the conformance suite for `Fixture` (a default-constructible
// ConnectorFixture). Use at global namespace scope; tests are named
// `<Name>/ConnectorConformance/0.<Test>`.
#define AIRLOCK_CONNECTOR_CONFORMANCE_SUITE(Name, Fixture)                               \
  namespace airlock::conformance {                                                       \
  INSTANTIATE_TYPED_TEST_SUITE_P(Name, ConnectorConformance, ::testing::Types<Fixture>); \
  }                                                                                      \
  static_assert(true, "require a trailing semicolon")
