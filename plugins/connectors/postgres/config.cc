#include "config.h"

#include <string_view>

#include "airlock/cpp/config_read.hpp"

namespace airlock::connectors::postgres {
namespace {

namespace read = sdk::config_read;

constexpr std::string_view kWhere = "config";

Status ParseDataset(const Json& j, const std::string& where, DatasetConfig* out) {
  if (!j.is_object()) return Status::InvalidArgument(where + " must be an object");
  AIRLOCK_RETURN_IF_ERROR(
      read::KnownKeys(j, {"name", "schema", "table", "query", "description", "tags"}, where));
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "name", &out->name, true, where));
  if (out->name.empty()) return Status::InvalidArgument(where + ".name must not be empty");
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "schema", &out->schema, false, where));
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "table", &out->table, false, where));
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "query", &out->query, false, where));
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "description", &out->description, false, where));
  AIRLOCK_RETURN_IF_ERROR(json_read::StringList(j, "tags", &out->tags, false, where));
  if (out->table.empty() == out->query.empty()) {
    return Status::InvalidArgument(where + " needs exactly one of table and query");
  }
  if (out->is_query()) {
    if (!out->schema.empty()) return Status::InvalidArgument(where + ".schema needs a table");
    if (out->query.size() > kMaxQueryBytes) {
      return Status::InvalidArgument(where + ".query is longer than " +
                                     std::to_string(kMaxQueryBytes) + " bytes");
    }
    return Status::Ok();
  }
  // "schema.table" splits at the first dot unless "schema" is given (then
  // the table name is taken whole, dots included).
  if (out->schema.empty()) {
    if (const size_t dot = out->table.find('.'); dot != std::string::npos) {
      out->schema = out->table.substr(0, dot);
      out->table = out->table.substr(dot + 1);
      if (out->schema.empty() || out->table.empty()) {
        return Status::InvalidArgument(where + ".table must be \"schema.table\" or \"table\"");
      }
    }
  }
  for (const std::string* name : {&out->schema, &out->table}) {
    if (name->find('\0') != std::string::npos || name->size() > 63) {
      return Status::InvalidArgument(where + ".table: identifiers are at most 63 bytes, no NUL");
    }
  }
  return Status::Ok();
}

}  // namespace

std::string DatasetConfig::object() const {
  if (is_query()) return "query:" + name;
  return schema.empty() ? table : schema + "." + table;
}

Result<PostgresConfig> ParseConfig(const Json& j) {
  if (!j.is_object()) return Status::InvalidArgument("configuration must be a JSON object");
  AIRLOCK_RETURN_IF_ERROR(
      read::KnownKeys(j,
                      {"host", "port", "database", "user", "password", "sslmode", "ca_file",
                       "connect_timeout_seconds", "statement_timeout_ms", "pull_timeout_ms",
                       "batch_rows", "application_name", "datasets"},
                      kWhere));
  PostgresConfig c;
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "host", &c.host, true, kWhere));
  if (c.host.empty()) return Status::InvalidArgument("host must not be empty");
  AIRLOCK_RETURN_IF_ERROR(read::Bounded(j, "port", 1, 65535, &c.port, kWhere));
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "database", &c.database, true, kWhere));
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "user", &c.user, true, kWhere));
  if (c.database.empty() || c.user.empty()) {
    return Status::InvalidArgument("database and user must not be empty");
  }
  AIRLOCK_RETURN_IF_ERROR(read::SecretReference(j, "password", &c.password_ref, false, kWhere));

  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "sslmode", &c.sslmode, false, kWhere));
  if (c.sslmode != "disable" && c.sslmode != "require" && c.sslmode != "verify-ca" &&
      c.sslmode != "verify-full") {
    return Status::InvalidArgument("sslmode must be disable, require, verify-ca or verify-full");
  }
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "ca_file", &c.ca_file, false, kWhere));
  if (c.sslmode.starts_with("verify-") && c.ca_file.empty()) {
    return Status::InvalidArgument("sslmode " + c.sslmode + " needs ca_file");
  }
  AIRLOCK_RETURN_IF_ERROR(
      read::Bounded(j, "connect_timeout_seconds", 1, 3600, &c.connect_timeout_seconds, kWhere));
  AIRLOCK_RETURN_IF_ERROR(
      read::Bounded(j, "statement_timeout_ms", 0, 86400000, &c.statement_timeout_ms, kWhere));
  AIRLOCK_RETURN_IF_ERROR(
      read::Bounded(j, "pull_timeout_ms", 0, 86400000, &c.pull_timeout_ms, kWhere));
  AIRLOCK_RETURN_IF_ERROR(read::Bounded(j, "batch_rows", 1, 1 << 20, &c.batch_rows, kWhere));
  AIRLOCK_RETURN_IF_ERROR(
      json_read::String(j, "application_name", &c.application_name, false, kWhere));
  if (c.application_name.size() > 63) {
    return Status::InvalidArgument("application_name must be at most 63 bytes");
  }

  auto datasets = j.find("datasets");
  if (datasets == j.end() || !datasets->is_array() || datasets->empty()) {
    return Status::InvalidArgument("datasets must be a non-empty array");
  }
  if (datasets->size() > kMaxDatasets) {
    return Status::InvalidArgument("datasets has more than " + std::to_string(kMaxDatasets) +
                                   " entries");
  }
  for (size_t i = 0; i < datasets->size(); ++i) {
    const std::string where = "datasets[" + std::to_string(i) + "]";
    DatasetConfig d;
    AIRLOCK_RETURN_IF_ERROR(ParseDataset((*datasets)[i], where, &d));
    for (const auto& other : c.datasets) {
      if (other.name == d.name) {
        return Status::InvalidArgument(where + ".name '" + d.name + "' is used twice");
      }
    }
    c.datasets.push_back(std::move(d));
  }
  return c;
}

}  // namespace airlock::connectors::postgres
