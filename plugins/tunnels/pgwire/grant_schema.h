// The grant's tables as the tunnel shows them to PostgreSQL clients: names,
// columns and their PostgreSQL types, read once from the query channel's
// tables document (the enclave is sealed: the schema cannot change).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"

namespace airlock::tunnels::pgwire {

struct ColumnSchema {
  std::string name;
  uint32_t type = 0;  // a PostgreSQL type OID (types.h)
};

struct TableSchema {
  std::string name;
  uint64_t rows = 0;
  std::vector<ColumnSchema> columns;
};

struct GrantSchema {
  std::vector<TableSchema> tables;

  // By name, case-insensitively as the engine resolves names; null if none.
  const TableSchema* Find(std::string_view name) const;
};

// From the channel's {"tables": [{"name", "rows", "columns": [{"name",
// "type", "timezone"?}]}]}; unknown column types read as text.
Result<GrantSchema> SchemaFromTables(const Json& document);

// The type OID for an Arrow type name of the tables document.
uint32_t OidForTypeName(std::string_view arrow_type, bool with_timezone);

}  // namespace airlock::tunnels::pgwire
