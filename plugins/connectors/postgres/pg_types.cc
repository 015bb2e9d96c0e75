#include "pg_types.h"

#include <map>
#include <set>

namespace airlock::connectors::postgres {
namespace {

struct TypeRow {
  std::string name;
  char typtype = 'b';     // b base, d domain, e enum, c composite, r range, p pseudo
  char category = 'U';    // pg_type.typcategory
  uint32_t base_oid = 0;  // domains: the underlying type
};

// Built-in types with a fixed oid (pg_type.dat); everything else is looked up.
bool BuiltinKind(uint32_t oid, Kind* kind) {
  switch (oid) {
    case 16:
      *kind = Kind::kBool;
      return true;
    case 17:
      *kind = Kind::kBytea;
      return true;
    case 19:
    case 25:
    case 1042:
    case 1043:
      *kind = Kind::kText;
      return true;
    case 20:
      *kind = Kind::kInt64;
      return true;
    case 21:
      *kind = Kind::kInt16;
      return true;
    case 23:
      *kind = Kind::kInt32;
      return true;
    case 26:
      *kind = Kind::kOid;
      return true;
    case 700:
      *kind = Kind::kFloat32;
      return true;
    case 701:
      *kind = Kind::kFloat64;
      return true;
    case 1082:
      *kind = Kind::kDate;
      return true;
    case 1083:
      *kind = Kind::kTime;
      return true;
    case 1114:
      *kind = Kind::kTimestamp;
      return true;
    case 1184:
      *kind = Kind::kTimestampTz;
      return true;
    case 2950:
      *kind = Kind::kUuid;
      return true;
    // Exact or structured values whose text form is the faithful one.
    case 18:
    case 114:
    case 142:
    case 650:
    case 829:
    case 869:
    case 1186:
    case 1266:
    case 1700:
    case 3802:
      *kind = Kind::kServerText;
      return true;
    default:
      return false;
  }
}

Kind KindOf(uint32_t oid, const std::map<uint32_t, TypeRow>& types) {
  for (int depth = 0; depth < 16; ++depth) {
    Kind kind;
    if (BuiltinKind(oid, &kind)) return kind;
    auto it = types.find(oid);
    if (it == types.end()) return Kind::kUnsupported;
    const TypeRow& row = it->second;
    if (row.typtype == 'd') {
      oid = row.base_oid;
      continue;
    }
    if (row.typtype == 'e') return Kind::kServerText;
    if (row.category == 'A') return Kind::kArrayJson;
    if (row.category == 'S') return Kind::kServerText;  // string types (citext, ...)
    return Kind::kUnsupported;
  }
  return Kind::kUnsupported;
}

arrow::Field FieldOf(const std::string& name, Kind kind) {
  arrow::Field field;
  field.name = name;
  field.nullable = true;
  switch (kind) {
    case Kind::kInt16:
    case Kind::kInt32:
      field.type = arrow::Type::kInt32;
      break;
    case Kind::kInt64:
    case Kind::kOid:
      field.type = arrow::Type::kInt64;
      break;
    case Kind::kFloat32:
    case Kind::kFloat64:
      field.type = arrow::Type::kFloat64;
      break;
    case Kind::kBool:
      field.type = arrow::Type::kBool;
      break;
    case Kind::kBytea:
      field.type = arrow::Type::kBinary;
      break;
    case Kind::kDate:
      field.type = arrow::Type::kDate32;
      break;
    case Kind::kTime:
      field.type = arrow::Type::kTime64Micros;
      break;
    case Kind::kTimestamp:
      field.type = arrow::Type::kTimestampMicros;
      break;
    case Kind::kTimestampTz:
      field.type = arrow::Type::kTimestampMicros;
      field.timezone = "UTC";
      break;
    case Kind::kText:
    case Kind::kUuid:
    case Kind::kServerText:
    case Kind::kArrayJson:
      field.type = arrow::Type::kUtf8;
      break;
    case Kind::kUnsupported:
      field.type = arrow::Type::kNull;
      break;
  }
  return field;
}

// Looks up `oids` in pg_type (one round trip, parameterised) into `types`.
Status LookUp(PgConnection& connection, const std::set<uint32_t>& oids,
              std::map<uint32_t, TypeRow>* types, const Interrupt& interrupt) {
  std::string list = "{";
  for (uint32_t oid : oids) {
    if (list.size() > 1) list.push_back(',');
    list += std::to_string(oid);
  }
  list.push_back('}');
  AIRLOCK_ASSIGN_OR_RETURN(
      PgResult result,
      connection.Run("SELECT oid::int8, typname::text, typtype::text, typcategory::text, "
                     "typbasetype::int8 FROM pg_catalog.pg_type WHERE oid = ANY($1::oid[])",
                     {Param{list, 0, false}}, false, interrupt));
  for (int r = 0; r < PQntuples(result.get()); ++r) {
    TypeRow row;
    const uint32_t oid = static_cast<uint32_t>(std::stoll(PQgetvalue(result.get(), r, 0)));
    row.name = PQgetvalue(result.get(), r, 1);
    row.typtype = PQgetvalue(result.get(), r, 2)[0];
    row.category = PQgetvalue(result.get(), r, 3)[0];
    row.base_oid = static_cast<uint32_t>(std::stoll(PQgetvalue(result.get(), r, 4)));
    (*types)[oid] = std::move(row);
  }
  return Status::Ok();
}

}  // namespace

Result<std::vector<SourceColumn>> ResolveColumns(PgConnection& connection,
                                                 const PGresult* described,
                                                 const Interrupt& interrupt) {
  std::vector<SourceColumn> columns;
  std::set<uint32_t> wanted;
  for (int i = 0; i < PQnfields(described); ++i) {
    SourceColumn column;
    column.name = PQfname(described, i);
    column.type_oid = PQftype(described, i);
    for (const auto& other : columns) {
      if (other.name == column.name) {
        return Status::InvalidArgument("the source has two columns named '" + column.name +
                                       "' (alias them in the query)");
      }
    }
    wanted.insert(column.type_oid);
    columns.push_back(std::move(column));
  }
  // Names for every type, and base types of domains (a domain may sit on a
  // domain: a few rounds at most).
  std::map<uint32_t, TypeRow> types;
  for (int round = 0; round < 8 && !wanted.empty(); ++round) {
    AIRLOCK_RETURN_IF_ERROR(LookUp(connection, wanted, &types, interrupt));
    std::set<uint32_t> next;
    for (uint32_t oid : wanted) {
      auto it = types.find(oid);
      if (it != types.end() && it->second.typtype == 'd' && !types.contains(it->second.base_oid)) {
        next.insert(it->second.base_oid);
      }
    }
    wanted = std::move(next);
  }
  for (SourceColumn& column : columns) {
    auto it = types.find(column.type_oid);
    column.type_name = it != types.end() ? it->second.name : std::to_string(column.type_oid);
    column.kind = KindOf(column.type_oid, types);
    column.field = FieldOf(column.name, column.kind);
  }
  return columns;
}

std::string CatalogTypeName(const SourceColumn& column) {
  if (column.kind == Kind::kUnsupported) return "unsupported:" + column.type_name;
  if (column.field.type == arrow::Type::kTimestampMicros && !column.field.timezone.empty()) {
    return "timestamp[us, tz=" + column.field.timezone + "]";
  }
  return arrow::TypeName(column.field.type);
}

}  // namespace airlock::connectors::postgres
