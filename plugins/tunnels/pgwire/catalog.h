// What PostgreSQL clients read about the grant: pg_catalog and
// information_schema relations describing its tables and columns (with
// PostgreSQL's type OIDs), the database, the schema and the role, and the
// catalog functions psql's \d commands and JDBC's DatabaseMetaData call
// (format_type, pg_table_is_visible, pg_get_userbyid ...). They live in a
// small in-memory SQLite database of the connection's own, built from the
// grant's tables document: catalog statements never reach the enclave, and
// show nothing the grant does not already show.
#pragma once

#include <sqlite3.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "airlock/cpp/batch.hpp"
#include "airlock/cpp/status.hpp"
#include "grant_schema.h"
#include "translator.h"

namespace airlock::tunnels::pgwire {

// The catalog relations as the translator sees them: named by their table
// in the catalog database ("pg_class", "information_schema_tables").
const GrantSchema& CatalogRelations();
// The catalog database's table for `schema`.`name` ("" schema: the
// search path, pg_catalog first); empty when there is none.
std::string CatalogTableFor(std::string_view schema, std::string_view name);
// Functions only the catalog database has (pg_table_is_visible, ...).
bool IsCatalogFunction(std::string_view name);

class CatalogDatabase {
 public:
  static Result<std::unique_ptr<CatalogDatabase>> Build(const GrantSchema& grant,
                                                        const SessionFacts& facts);
  ~CatalogDatabase();
  CatalogDatabase(const CatalogDatabase&) = delete;
  CatalogDatabase& operator=(const CatalogDatabase&) = delete;

  // Runs a translated catalog statement, delivering its rows as a channel
  // does. InvalidArgument with the engine's message for SQL it refuses.
  Status Query(const std::string& sql, sdk::BatchConsumer& consumer);

  // For the registered functions.
  const std::string& user() const { return user_; }
  std::string RelationName(int64_t oid) const;
  std::optional<int64_t> RelationOid(std::string_view name) const;

  CatalogDatabase() = default;  // use Build()

 private:
  Status Load(const GrantSchema& grant, const SessionFacts& facts);

  sqlite3* db_ = nullptr;
  std::string user_;
  std::unordered_map<int64_t, std::string> relation_names_;
  std::unordered_map<std::string, int64_t> relation_oids_;
};

}  // namespace airlock::tunnels::pgwire
