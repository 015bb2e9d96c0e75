#include "kernel/enclave/enclave_spec.h"

#include <algorithm>
#include <cctype>
#include <set>

#include "airlock/cpp/batch.hpp"

namespace airlock::enclave {
namespace {

std::string Lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

Status ReadLimit(const nlohmann::json& limits, std::string_view key, int64_t* out) {
  AIRLOCK_RETURN_IF_ERROR(json_read::Int(limits, key, out, false, "spec.limits"));
  if (*out <= 0) {
    return Status::InvalidArgument("spec.limits." + std::string(key) + " must be positive");
  }
  return Status::Ok();
}

Result<DatasetSpec> ParseDataset(const nlohmann::json& j, size_t index) {
  const std::string where = "spec.datasets[" + std::to_string(index) + "]";
  if (!j.is_object()) return Status::InvalidArgument(where + " must be an object");
  DatasetSpec d;
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "name", &d.name, true, where));
  if (!IsSafeTableName(d.name)) {
    return Status::InvalidArgument(where + ".name '" + d.name.substr(0, 128) +
                                   "' is not a safe table name ([A-Za-z_][A-Za-z0-9_]*)");
  }
  auto connector = j.find("connector");
  if (connector == j.end() || !connector->is_object()) {
    return Status::InvalidArgument(where + ".connector must be an object");
  }
  const std::string cwhere = where + ".connector";
  AIRLOCK_RETURN_IF_ERROR(json_read::String(*connector, "name", &d.connector.name, false, cwhere));
  AIRLOCK_RETURN_IF_ERROR(json_read::String(*connector, "path", &d.connector.path, true, cwhere));
  AIRLOCK_RETURN_IF_ERROR(
      json_read::String(*connector, "sha256", &d.connector.sha256, false, cwhere));
  if (auto config = connector->find("config"); config != connector->end() && !config->is_null()) {
    if (!config->is_object()) return Status::InvalidArgument(cwhere + ".config must be an object");
    d.connector.config = *config;
  }
  nlohmann::json pull = j.value("pull", nlohmann::json::object());
  if (!pull.is_object()) return Status::InvalidArgument(where + ".pull must be an object");
  if (!pull.contains("dataset")) pull["dataset"] = d.name;
  auto parsed = PullSpec::FromJson(pull);
  if (!parsed.ok()) return parsed.status().WithContext(where);
  d.pull = std::move(parsed).value();
  if (auto key = j.find("key"); key != j.end() && !key->is_null()) {
    AIRLOCK_ASSIGN_OR_RETURN(d.key, sdk::KeyColumnsFromJson(*key, where + ".key"));
  }
  return d;
}

}  // namespace

bool IsSafeTableName(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  const auto c0 = static_cast<unsigned char>(name[0]);
  if (!(std::isalpha(c0) || c0 == '_') || c0 >= 0x80) return false;
  for (char ch : name) {
    const auto c = static_cast<unsigned char>(ch);
    if (c >= 0x80 || !(std::isalnum(c) || c == '_')) return false;
  }
  const std::string lower = Lower(name);
  return lower.rfind("sqlite_", 0) != 0 && lower.rfind("_airlock_", 0) != 0;
}

Result<EnclaveSpec> EnclaveSpec::FromJson(const nlohmann::json& j) {
  if (!j.is_object()) return Status::InvalidArgument("spec must be a JSON object");
  EnclaveSpec spec;
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "request_id", &spec.request_id, false, "spec"));
  std::string mode = "interactive";
  AIRLOCK_RETURN_IF_ERROR(json_read::String(j, "mode", &mode, false, "spec"));
  if (mode == "interactive") {
    spec.mode = EnclaveMode::kInteractive;
  } else if (mode == "job") {
    spec.mode = EnclaveMode::kJob;
  } else if (mode == "describe") {
    spec.mode = EnclaveMode::kDescribe;
  } else {
    return Status::InvalidArgument("spec.mode must be interactive, job or describe");
  }

  auto datasets = j.find("datasets");
  if (datasets == j.end() || !datasets->is_array() || datasets->empty()) {
    return Status::InvalidArgument("spec.datasets must be a non-empty array");
  }
  if (datasets->size() > kMaxDatasets) {
    return Status::InvalidArgument("spec.datasets has more than " + std::to_string(kMaxDatasets) +
                                   " entries");
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < datasets->size(); ++i) {
    AIRLOCK_ASSIGN_OR_RETURN(DatasetSpec dataset, ParseDataset((*datasets)[i], i));
    if (!seen.insert(Lower(dataset.name)).second) {
      return Status::InvalidArgument("spec.datasets names '" + dataset.name + "' twice");
    }
    spec.datasets.push_back(std::move(dataset));
  }

  if (auto limits = j.find("limits"); limits != j.end() && !limits->is_null()) {
    if (!limits->is_object()) return Status::InvalidArgument("spec.limits must be an object");
    AIRLOCK_RETURN_IF_ERROR(ReadLimit(*limits, "query_timeout_ms", &spec.limits.query_timeout_ms));
    AIRLOCK_RETURN_IF_ERROR(ReadLimit(*limits, "max_result_rows", &spec.limits.max_result_rows));
    AIRLOCK_RETURN_IF_ERROR(ReadLimit(*limits, "max_memory_bytes", &spec.limits.max_memory_bytes));
    AIRLOCK_RETURN_IF_ERROR(ReadLimit(*limits, "max_sql_bytes", &spec.limits.max_sql_bytes));
  }

  AIRLOCK_RETURN_IF_ERROR(json_read::StringList(j, "queries", &spec.queries, false, "spec"));
  if (spec.queries.size() > kMaxJobQueries) {
    return Status::InvalidArgument("spec.queries has more than " + std::to_string(kMaxJobQueries) +
                                   " entries");
  }
  for (const std::string& sql : spec.queries) {
    if (static_cast<int64_t>(sql.size()) > spec.limits.max_sql_bytes) {
      return Status::InvalidArgument("a job query exceeds limits.max_sql_bytes");
    }
  }
  if (auto egress = j.find("egress"); egress != j.end() && !egress->is_null()) {
    if (!egress->is_array() || egress->size() > kMaxEgressRoutes) {
      return Status::InvalidArgument("spec.egress must be an array of at most " +
                                     std::to_string(kMaxEgressRoutes) + " routes");
    }
    for (size_t i = 0; i < egress->size(); ++i) {
      const std::string where = "spec.egress[" + std::to_string(i) + "]";
      const nlohmann::json& r = (*egress)[i];
      if (!r.is_object()) return Status::InvalidArgument(where + " must be an object");
      EgressRoute route;
      int64_t port = 0;
      AIRLOCK_RETURN_IF_ERROR(json_read::String(r, "endpoint", &route.endpoint, true, where));
      AIRLOCK_RETURN_IF_ERROR(json_read::String(r, "address", &route.address, true, where));
      AIRLOCK_RETURN_IF_ERROR(json_read::Int(r, "port", &port, true, where));
      if (port < 1 || port > 65535) return Status::InvalidArgument(where + ".port out of range");
      route.port = static_cast<uint16_t>(port);
      spec.egress.push_back(std::move(route));
    }
  }
  if (spec.mode == EnclaveMode::kJob && spec.queries.empty()) {
    return Status::InvalidArgument("spec.queries must not be empty in job mode");
  }
  return spec;
}

}  // namespace airlock::enclave
