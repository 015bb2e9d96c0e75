#include "config.h"

#include <string_view>

#include "airlock/cpp/config_read.hpp"

namespace airlock::connectors::mongodb {
namespace {

constexpr size_t kMaxColumns = 4096;
constexpr size_t kMaxPipelineStages = 64;

namespace read = sdk::config_read;

constexpr std::string_view kWhere = "config";

Status ReadNested(const Json& j, const std::string& where, NestedMode* out) {
  std::string nested;
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "nested", &nested, false, where));
  if (nested.empty()) return Status::Ok();
  if (nested == "json") {
    *out = NestedMode::kJson;
  } else if (nested == "flatten") {
    *out = NestedMode::kFlatten;
  } else {
    return Status::InvalidArgument((where.empty() ? "" : where + ".") +
                                   "nested must be \"json\" or \"flatten\"");
  }
  return Status::Ok();
}

Status ParseColumns(const Json& j, const std::string& where, NestedMode mode,
                    std::vector<DeclaredColumn>* out) {
  if (!j.is_array()) return Status::InvalidArgument(where + " must be an array");
  if (j.size() > kMaxColumns) return Status::InvalidArgument(where + " has too many columns");
  for (size_t i = 0; i < j.size(); ++i) {
    const std::string at = where + "[" + std::to_string(i) + "]";
    const Json& c = j[i];
    if (!c.is_object()) return Status::InvalidArgument(at + " must be an object");
    AIRLOCK_RETURN_IF_ERROR(read::KnownKeys(c, {"name", "type"}, at));
    DeclaredColumn column;
    AIRLOCK_RETURN_IF_ERROR(json_read::String(c, "name", &column.name, true, at));
    if (!SafeName(column.name) ||
        (mode == NestedMode::kJson && column.name.find('.') != std::string::npos)) {
      return Status::InvalidArgument(
          at + ".name must be a field name: not empty, not starting with '$', no NUL" +
          (mode == NestedMode::kJson ? ", no '.' (use nested: flatten for paths)" : ""));
    }
    std::string type;
    AIRLOCK_RETURN_IF_ERROR(json_read::String(c, "type", &type, true, at));
    auto kind = ParseKindName(type);
    if (!kind) {
      return Status::InvalidArgument(at + ".type '" + type +
                                     "' is unknown (objectid int32 int64 float64 decimal bool "
                                     "utf8 timestamp binary json mixed)");
    }
    column.kind = *kind;
    for (const auto& other : *out) {
      if (other.name == column.name) {
        return Status::InvalidArgument(at + ".name '" + column.name + "' is declared twice");
      }
    }
    out->push_back(std::move(column));
  }
  return Status::Ok();
}

Status ParsePipeline(const Json& j, const std::string& where, std::string* out) {
  if (!j.is_array()) return Status::InvalidArgument(where + " must be an array of stages");
  if (j.size() > kMaxPipelineStages) return Status::InvalidArgument(where + " has too many stages");
  for (size_t i = 0; i < j.size(); ++i) {
    const Json& stage = j[i];
    const std::string at = where + "[" + std::to_string(i) + "]";
    if (!stage.is_object() || stage.size() != 1) {
      return Status::InvalidArgument(at + " must be an object with one stage name");
    }
    const std::string& name = stage.begin().key();
    // The connector reads; a stage that writes or runs server-side code is refused.
    for (const char* refused : {"$out", "$merge", "$function", "$accumulator"}) {
      if (name == refused) {
        return Status::InvalidArgument(at + " uses " + name + ", which the connector refuses");
      }
    }
  }
  *out = j.dump();
  return Status::Ok();
}

Status ParseDataset(const Json& j, const std::string& where, NestedMode default_nested,
                    DatasetConfig* out) {
  if (!j.is_object()) return Status::InvalidArgument(where + " must be an object");
  AIRLOCK_RETURN_IF_ERROR(read::KnownKeys(
      j, {"name", "collection", "pipeline", "columns", "nested", "description", "tags"}, where));
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "name", &out->name, true, where));
  if (out->name.empty()) return Status::InvalidArgument(where + ".name must not be empty");
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "collection", &out->collection, false, where));
  if (out->collection.empty()) out->collection = out->name;
  if (out->collection.empty() || out->collection.size() > 255 || out->collection[0] == '$' ||
      out->collection.find('\0') != std::string::npos || out->collection.starts_with("system.")) {
    return Status::InvalidArgument(where + ".collection is not a valid collection name");
  }
  out->nested = default_nested;
  AIRLOCK_RETURN_IF_ERROR(ReadNested(j, where, &out->nested));
  if (auto it = j.find("pipeline"); it != j.end() && !it->is_null()) {
    AIRLOCK_RETURN_IF_ERROR(ParsePipeline(*it, where + ".pipeline", &out->pipeline_json));
  }
  if (auto it = j.find("columns"); it != j.end() && !it->is_null()) {
    AIRLOCK_RETURN_IF_ERROR(ParseColumns(*it, where + ".columns", out->nested, &out->columns));
  }
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "description", &out->description, false, where));
  AIRLOCK_RETURN_IF_ERROR(json_read::StringList(j, "tags", &out->tags, false, where));
  return Status::Ok();
}

}  // namespace

bool SafeName(std::string_view name) {
  if (name.empty() || name.size() > 255 || name.find('\0') != std::string_view::npos) {
    return false;
  }
  // Every path segment: not empty, not starting with '$'.
  size_t start = 0;
  for (;;) {
    const size_t dot = name.find('.', start);
    const std::string_view segment = name.substr(start, dot - start);
    if (segment.empty() || segment[0] == '$') return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

std::optional<Kind> ParseKindName(std::string_view name) {
  for (Kind k :
       {Kind::kObjectId, Kind::kInt32, Kind::kInt64, Kind::kDouble, Kind::kDecimal, Kind::kBool,
        Kind::kString, Kind::kDate, Kind::kBinary, Kind::kJson, Kind::kMixed}) {
    if (name == KindName(k)) return k;
  }
  if (name == "string") return Kind::kString;
  if (name == "double") return Kind::kDouble;
  if (name == "date") return Kind::kDate;
  return std::nullopt;
}

Result<MongoConfig> ParseConfig(const Json& config) {
  if (!config.is_object()) return Status::InvalidArgument("configuration must be a JSON object");
  AIRLOCK_RETURN_IF_ERROR(read::KnownKeys(
      config,
      {"uri", "uri_secret", "database", "username", "password_secret", "auth_source",
       "auth_mechanism", "tls", "batch_rows", "infer_documents", "nested", "datasets"},
      kWhere));
  MongoConfig c;
  AIRLOCK_RETURN_IF_ERROR(json_read::String(config, "uri", &c.uri, false, kWhere));
  AIRLOCK_RETURN_IF_ERROR(
      read::SecretReference(config, "uri_secret", &c.uri_secret, false, kWhere));
  if (c.uri.empty() == c.uri_secret.empty()) {
    return Status::InvalidArgument("exactly one of uri and uri_secret is required");
  }
  AIRLOCK_RETURN_IF_ERROR(json_read::String(config, "database", &c.database, false, kWhere));
  if (!c.database.empty() &&
      (!SafeName(c.database) || c.database.find_first_of("/\\. \"") != std::string::npos)) {
    return Status::InvalidArgument("database is not a valid database name");
  }
  AIRLOCK_RETURN_IF_ERROR(json_read::String(config, "username", &c.username, false, kWhere));
  AIRLOCK_RETURN_IF_ERROR(
      read::SecretReference(config, "password_secret", &c.password_secret, false, kWhere));
  if (!c.password_secret.empty() && c.username.empty()) {
    return Status::InvalidArgument("password_secret needs username");
  }
  AIRLOCK_RETURN_IF_ERROR(json_read::String(config, "auth_source", &c.auth_source, false, kWhere));
  AIRLOCK_RETURN_IF_ERROR(
      json_read::String(config, "auth_mechanism", &c.auth_mechanism, false, kWhere));
  if (auto it = config.find("tls"); it != config.end() && !it->is_null()) {
    if (!it->is_object()) return Status::InvalidArgument("tls must be an object");
    AIRLOCK_RETURN_IF_ERROR(
        read::KnownKeys(*it,
                        {"enabled", "ca_file", "certificate_key_file",
                         "certificate_key_password_secret", "allow_invalid_hostnames"},
                        "tls"));
    c.tls.enabled = true;
    AIRLOCK_RETURN_IF_ERROR(read::Bool(*it, "enabled", &c.tls.enabled, "tls"));
    AIRLOCK_RETURN_IF_ERROR(json_read::String(*it, "ca_file", &c.tls.ca_file, false, "tls"));
    AIRLOCK_RETURN_IF_ERROR(
        json_read::String(*it, "certificate_key_file", &c.tls.certificate_key_file, false, "tls"));
    AIRLOCK_RETURN_IF_ERROR(read::SecretReference(*it, "certificate_key_password_secret",
                                                  &c.tls.certificate_key_password_secret, false,
                                                  "tls"));
    AIRLOCK_RETURN_IF_ERROR(
        read::Bool(*it, "allow_invalid_hostnames", &c.tls.allow_invalid_hostnames, "tls"));
  }
  AIRLOCK_RETURN_IF_ERROR(read::Bounded(config, "batch_rows", 1, 1 << 20, &c.batch_rows, kWhere));
  AIRLOCK_RETURN_IF_ERROR(
      read::Bounded(config, "infer_documents", 1, 1000000, &c.infer_documents, kWhere));
  AIRLOCK_RETURN_IF_ERROR(ReadNested(config, "", &c.nested));
  if (auto it = config.find("datasets"); it != config.end() && !it->is_null()) {
    if (!it->is_array()) return Status::InvalidArgument("datasets must be an array");
    c.datasets_configured = true;
    for (size_t i = 0; i < it->size(); ++i) {
      DatasetConfig d;
      AIRLOCK_RETURN_IF_ERROR(
          ParseDataset((*it)[i], "datasets[" + std::to_string(i) + "]", c.nested, &d));
      for (const auto& other : c.datasets) {
        if (other.name == d.name) {
          return Status::InvalidArgument("datasets[" + std::to_string(i) + "].name '" + d.name +
                                         "' is configured twice");
        }
      }
      c.datasets.push_back(std::move(d));
    }
  }
  return c;
}

}  // namespace airlock::connectors::mongodb
