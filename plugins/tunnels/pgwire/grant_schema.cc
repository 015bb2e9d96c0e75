#include "grant_schema.h"

#include <strings.h>

#include "types.h"

namespace airlock::tunnels::pgwire {

const TableSchema* GrantSchema::Find(std::string_view name) const {
  for (const TableSchema& table : tables) {
    if (table.name.size() == name.size() &&
        ::strncasecmp(table.name.data(), name.data(), name.size()) == 0) {
      return &table;
    }
  }
  return nullptr;
}

uint32_t OidForTypeName(std::string_view arrow_type, bool with_timezone) {
  if (arrow_type == "bool") return oid::kBool;
  if (arrow_type == "int32") return oid::kInt4;
  if (arrow_type == "int64") return oid::kInt8;
  if (arrow_type == "float64") return oid::kFloat8;
  if (arrow_type == "binary") return oid::kBytea;
  if (arrow_type == "date32") return oid::kDate;
  if (arrow_type.starts_with("timestamp")) {
    return with_timezone ? oid::kTimestamptz : oid::kTimestamp;
  }
  if (arrow_type.starts_with("time64")) return oid::kTime;
  return oid::kText;
}

Result<GrantSchema> SchemaFromTables(const Json& document) {
  const auto tables = document.find("tables");
  if (tables == document.end() || !tables->is_array()) {
    return Status::Internal("the tables document has no \"tables\" list");
  }
  GrantSchema schema;
  for (const Json& table : *tables) {
    if (!table.is_object() || !table.contains("name") || !table["name"].is_string()) {
      return Status::Internal("the tables document names a table without a name");
    }
    TableSchema out;
    out.name = table["name"].get<std::string>();
    if (const auto rows = table.find("rows"); rows != table.end() && rows->is_number_unsigned()) {
      out.rows = rows->get<uint64_t>();
    }
    if (const auto columns = table.find("columns"); columns != table.end() && columns->is_array()) {
      for (const Json& column : *columns) {
        if (!column.is_object() || !column.contains("name") || !column["name"].is_string()) {
          continue;
        }
        ColumnSchema c;
        c.name = column["name"].get<std::string>();
        const auto type = column.find("type");
        const auto zone = column.find("timezone");
        const bool with_tz =
            zone != column.end() && zone->is_string() && !zone->get<std::string>().empty();
        c.type = type != column.end() && type->is_string()
                     ? OidForTypeName(type->get<std::string>(), with_tz)
                     : oid::kText;
        out.columns.push_back(std::move(c));
      }
    }
    schema.tables.push_back(std::move(out));
  }
  return schema;
}

}  // namespace airlock::tunnels::pgwire
