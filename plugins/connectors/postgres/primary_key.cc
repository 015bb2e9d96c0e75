#include "primary_key.h"

#include <algorithm>

namespace airlock::connectors::postgres {
namespace {

// Qualified with pg_catalog so that nothing on the role's search_path can
// stand in for the catalog; to_regclass is NULL for a missing relation.
constexpr char kPrimaryKeySql[] =
    "SELECT a.attname FROM pg_catalog.pg_index i"
    " CROSS JOIN LATERAL pg_catalog.unnest(i.indkey::pg_catalog.int2[]) WITH ORDINALITY"
    " AS k(attnum, ord)"
    " JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum"
    " WHERE i.indrelid = pg_catalog.to_regclass($1) AND i.indisprimary"
    " ORDER BY k.ord";

Result<std::vector<std::string>> LookUp(PgConnection& connection, const DatasetConfig& dataset,
                                        int64_t timeout_ms, const Interrupt& interrupt) {
  AIRLOCK_RETURN_IF_ERROR(
      connection
          .Run("SET LOCAL statement_timeout = " + std::to_string(timeout_ms), {}, false, interrupt)
          .status());
  AIRLOCK_ASSIGN_OR_RETURN(
      PgResult result,
      connection.Run(kPrimaryKeySql, {Param{SourceRelation(dataset)}}, false, interrupt));
  std::vector<std::string> key;
  for (int row = 0; row < PQntuples(result.get()); ++row) {
    key.emplace_back(PQgetvalue(result.get(), row, 0));
  }
  return key;
}

}  // namespace

Result<std::vector<std::string>> PrimaryKey(PgConnection& connection, const DatasetConfig& dataset,
                                            const PostgresConfig& config, const sdk::Host& host,
                                            const Interrupt& interrupt) {
  if (dataset.is_query()) return std::vector<std::string>();
  const int64_t timeout_ms = config.statement_timeout_ms > 0
                                 ? std::min(config.statement_timeout_ms, kMaxKeyLookupMillis)
                                 : kMaxKeyLookupMillis;
  AIRLOCK_RETURN_IF_ERROR(connection.Run("BEGIN READ ONLY", {}, false, interrupt).status());
  Result<std::vector<std::string>> key = LookUp(connection, dataset, timeout_ms, interrupt);
  const Status ended = connection.Run("ROLLBACK", {}, false, interrupt).status();
  AIRLOCK_RETURN_IF_ERROR(interrupt());
  if (!key.ok()) {
    if (key.status().code() == StatusCode::kUnavailable) return key.status();
    host.Warn("pull: key of dataset '" + dataset.name + "' unknown: " + key.status().message());
    key = std::vector<std::string>();
  }
  AIRLOCK_RETURN_IF_ERROR(ended);
  return key;
}

std::vector<std::string> DeliveredKey(const std::vector<std::string>& key, const PullQuery& query,
                                      const DatasetScope& scope) {
  for (const std::string& column : key) {
    const bool delivered =
        std::any_of(query.fields.begin(), query.fields.end(),
                    [&](const arrow::Field& field) { return field.name == column; });
    if (!delivered || scope.masks.count(column) != 0) return {};
  }
  return key;
}

}  // namespace airlock::connectors::postgres
