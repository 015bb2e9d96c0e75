// Configuration of the mongodb connector (README.md has the full reference):
//   {"uri": "mongodb://host:27017/?replicaSet=rs0" | "uri_secret": "env:MONGO_URI",
//    "database": "shop",
//    "username": "reader", "password_secret": "file:/run/secrets/mongo",
//    "auth_source": "admin", "auth_mechanism": "SCRAM-SHA-256",
//    "tls": {"enabled": true, "ca_file": "ca.pem", "certificate_key_file": "client.pem",
//            "certificate_key_password_secret": "env:KEY_PW",
//            "allow_invalid_hostnames": false},
//    "batch_rows": 8192, "infer_documents": 1000, "nested": "json|flatten",
//    "datasets": [{"name", "collection", "pipeline": [...], "columns": [{"name","type"}],
//                  "nested", "description", "tags"}]}
// Errors are InvalidArgument naming the key. Secret references are kept as
// references; their values are resolved only at pull time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"
#include "bson_cells.h"

namespace airlock::connectors::mongodb {

inline constexpr int64_t kDefaultBatchRows = 8192;
inline constexpr int64_t kDefaultInferDocuments = 1000;

struct DeclaredColumn {
  std::string name;
  Kind kind = Kind::kString;
};

struct DatasetConfig {
  std::string name;
  std::string collection;
  std::string pipeline_json;            // a JSON array of stages (Extended JSON), or empty
  std::vector<DeclaredColumn> columns;  // empty: inferred from a sample
  NestedMode nested = NestedMode::kJson;
  std::string description;
  std::vector<std::string> tags;
};

struct TlsConfig {
  bool enabled = false;
  std::string ca_file;
  std::string certificate_key_file;
  std::string certificate_key_password_secret;
  bool allow_invalid_hostnames = false;
};

struct MongoConfig {
  std::string uri;         // without a password
  std::string uri_secret;  // or: a reference to the whole URI
  std::string database;
  std::string username;
  std::string password_secret;
  std::string auth_source;
  std::string auth_mechanism;
  TlsConfig tls;
  int64_t batch_rows = kDefaultBatchRows;
  int64_t infer_documents = kDefaultInferDocuments;
  NestedMode nested = NestedMode::kJson;
  bool datasets_configured = false;
  std::vector<DatasetConfig> datasets;
};

Result<MongoConfig> ParseConfig(const Json& config);

// A collection or column name the connector may put into a query: non-empty,
// at most 255 bytes, no NUL, not starting with '$'. Column names may contain
// '.' only in flatten mode (they are then paths).
bool SafeName(std::string_view name);

// Declared type names: objectid int32 int64 float64 decimal bool utf8
// timestamp binary json mixed.
std::optional<Kind> ParseKindName(std::string_view name);

}  // namespace airlock::connectors::mongodb
