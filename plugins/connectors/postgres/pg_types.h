// How PostgreSQL column types become Arrow columns (the table is in README.md).
//
// Each source column gets a Kind: how the connector selects it (as is, cast
// to text on the server, or as JSON text for arrays), how it decodes the
// binary wire value, and which Arrow field it becomes. Types without a
// mapping are kUnsupported: such a column can be delivered only masked
// (TypeNotRepresentable otherwise).
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <string>
#include <vector>

#include "airlock/cpp/arrow.hpp"
#include "airlock/cpp/status.hpp"
#include "pg_connection.h"

namespace airlock::connectors::postgres {

enum class Kind : uint8_t {
  kInt16,        // int2 -> int32
  kInt32,        // int4 -> int32
  kInt64,        // int8 -> int64
  kOid,          // oid (uint32) -> int64
  kFloat32,      // float4 -> float64
  kFloat64,      // float8 -> float64
  kBool,         // bool -> bool
  kText,         // text, varchar, char(n), name: UTF-8 bytes as stored -> utf8
  kBytea,        // bytea -> binary
  kDate,         // date -> date32
  kTime,         // time -> time64[us]
  kTimestamp,    // timestamp -> timestamp[us] (naive)
  kTimestampTz,  // timestamptz -> timestamp[us, UTC]
  kUuid,         // uuid -> utf8, canonical lowercase form
  kServerText,   // numeric, interval, json, jsonb, enums, timetz, xml, citext...:
                 // cast to text on the server -> utf8
  kArrayJson,    // any array: array_to_json(...)::text -> utf8
  kUnsupported,  // no mapping
};

struct SourceColumn {
  std::string name;
  uint32_t type_oid = 0;  // as the source reports it (a domain keeps its own oid)
  std::string type_name;  // e.g. "int4", "mood" (an enum), "_int4" (an array)
  Kind kind = Kind::kUnsupported;
  arrow::Field field;  // kNull for kUnsupported
};

// The columns of a described statement (PQdescribePrepared result), with
// domains resolved to their base types and unknown oids looked up in
// pg_type on `connection`.
Result<std::vector<SourceColumn>> ResolveColumns(PgConnection& connection,
                                                 const PGresult* described,
                                                 const Interrupt& interrupt);

// The catalog's type name for a column ("int64", "timestamp[us, tz=UTC]",
// "unsupported:point").
std::string CatalogTypeName(const SourceColumn& column);

}  // namespace airlock::connectors::postgres
