// Configuration of the postgres connector (see README.md for every key):
//   {"host", "port": 5432, "database", "user", "password": "env:NAME" | "file:/path",
//    "sslmode": "verify-full", "ca_file", "connect_timeout_seconds": 10,
//    "statement_timeout_ms": 0, "pull_timeout_ms": 0, "batch_rows": 10000,
//    "application_name": "airlock",
//    "datasets": [{"name", "table": "schema.table" | "query": "SELECT ...",
//                  "description", "tags": []}]}
// The password is a secret reference, never a value: it is resolved through
// the host when a connection is opened. Errors are InvalidArgument naming the
// key ("datasets[1] needs exactly one of table and query").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"

namespace airlock::connectors::postgres {

inline constexpr int64_t kDefaultBatchRows = 10000;
inline constexpr size_t kMaxDatasets = 4096;
inline constexpr size_t kMaxQueryBytes = 1 << 20;

struct DatasetConfig {
  std::string name;
  // Exactly one of: a table or view ("schema"/"table", schema may be empty:
  // then the server's search_path applies) or a named query.
  std::string schema;
  std::string table;
  std::string query;
  std::string description;
  std::vector<std::string> tags;

  bool is_query() const { return !query.empty(); }
  // What the catalog shows as the dataset's object: "schema.table", "table"
  // or "query:<name>".
  std::string object() const;
};

struct PostgresConfig {
  std::string host;
  int64_t port = 5432;
  std::string database;
  std::string user;
  std::string password_ref;  // "env:NAME" / "file:/path"; empty: no password
  std::string sslmode = "verify-full";
  std::string ca_file;
  int64_t connect_timeout_seconds = 10;
  int64_t statement_timeout_ms = 0;  // 0: no server-side bound
  int64_t pull_timeout_ms = 0;       // 0: no bound on a whole pull
  int64_t batch_rows = kDefaultBatchRows;
  std::string application_name = "airlock";
  std::vector<DatasetConfig> datasets;
};

Result<PostgresConfig> ParseConfig(const Json& config);

}  // namespace airlock::connectors::postgres
