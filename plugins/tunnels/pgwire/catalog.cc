#include "catalog.h"

#include <cctype>
#include <cstring>
#include <regex>
#include <sstream>

#include "airlock/cpp/arrow.hpp"
#include "sql_text.h"
#include "types.h"

namespace airlock::tunnels::pgwire {
namespace {

// PostgreSQL's OIDs for what the catalog names.
constexpr int64_t kPgCatalogNamespace = 11;
constexpr int64_t kPublicNamespace = 2200;
constexpr int64_t kInformationSchemaNamespace = 13000;
constexpr int64_t kDatabaseOid = 16383;
constexpr int64_t kFirstGrantTableOid = 16384;
constexpr int64_t kHeapAccessMethod = 2;
constexpr int64_t kDefaultCollation = 100;
constexpr uint32_t kCharOid = 18;  // "char"

struct TypeInfo {
  uint32_t oid;
  const char* typname;
  int typlen;
  const char* formatted;  // format_type()
  char category;
  const char* input;
  const char* sql_name;  // information_schema.columns.data_type
};
constexpr TypeInfo kTypes[] = {
    {oid::kBool, "bool", 1, "boolean", 'B', "boolin", "boolean"},
    {oid::kBytea, "bytea", -1, "bytea", 'U', "byteain", "bytea"},
    {kCharOid, "char", 1, "\"char\"", 'S', "charin", "\"char\""},
    {oid::kName, "name", 64, "name", 'S', "namein", "name"},
    {oid::kInt8, "int8", 8, "bigint", 'N', "int8in", "bigint"},
    {oid::kInt2, "int2", 2, "smallint", 'N', "int2in", "smallint"},
    {oid::kInt4, "int4", 4, "integer", 'N', "int4in", "integer"},
    {oid::kText, "text", -1, "text", 'S', "textin", "text"},
    {oid::kOid, "oid", 4, "oid", 'N', "oidin", "oid"},
    {oid::kFloat4, "float4", 4, "real", 'N', "float4in", "real"},
    {oid::kFloat8, "float8", 8, "double precision", 'N', "float8in", "double precision"},
    {oid::kUnknown, "unknown", -2, "unknown", 'X', "unknownin", "unknown"},
    {oid::kBpchar, "bpchar", -1, "character", 'S', "bpcharin", "character"},
    {oid::kVarchar, "varchar", -1, "character varying", 'S', "varcharin", "character varying"},
    {oid::kDate, "date", 4, "date", 'D', "date_in", "date"},
    {oid::kTime, "time", 8, "time without time zone", 'D', "time_in", "time without time zone"},
    {oid::kTimestamp, "timestamp", 8, "timestamp without time zone", 'D', "timestamp_in",
     "timestamp without time zone"},
    {oid::kTimestamptz, "timestamptz", 8, "timestamp with time zone", 'D', "timestamptz_in",
     "timestamp with time zone"},
    {oid::kNumeric, "numeric", -1, "numeric", 'N', "numeric_in", "numeric"},
};

const TypeInfo* FindType(int64_t type_oid) {
  for (const TypeInfo& t : kTypes) {
    if (t.oid == type_oid) return &t;
  }
  return nullptr;
}

bool IsTextType(uint32_t type) {
  return type == oid::kText || type == oid::kVarchar || type == oid::kBpchar || type == oid::kName;
}

// Catalog relations: schema, table in the catalog database, its oid in
// pg_class, and columns (name, PostgreSQL type).
struct RelationSpec {
  const char* schema;
  const char* name;
  int64_t oid;
  std::vector<ColumnSchema> columns;
};

std::vector<ColumnSchema> Columns(std::initializer_list<std::pair<const char*, uint32_t>> list) {
  std::vector<ColumnSchema> out;
  for (const auto& [name, type] : list) out.push_back(ColumnSchema{name, type});
  return out;
}

const std::vector<RelationSpec>& Relations() {
  using namespace oid;
  constexpr uint32_t C = kCharOid;
  static const std::vector<RelationSpec> relations = {
      {"pg_catalog", "pg_namespace", 2615,
       Columns({{"oid", kOid}, {"nspname", kName}, {"nspowner", kOid}, {"nspacl", kText}})},
      {"pg_catalog", "pg_class", 1259,
       Columns({{"oid", kOid},
                {"relname", kName},
                {"relnamespace", kOid},
                {"reltype", kOid},
                {"reloftype", kOid},
                {"relowner", kOid},
                {"relam", kOid},
                {"relfilenode", kOid},
                {"reltablespace", kOid},
                {"relpages", kInt4},
                {"reltuples", kFloat4},
                {"relallvisible", kInt4},
                {"reltoastrelid", kOid},
                {"relhasindex", kBool},
                {"relisshared", kBool},
                {"relpersistence", C},
                {"relkind", C},
                {"relnatts", kInt2},
                {"relchecks", kInt2},
                {"relhasrules", kBool},
                {"relhastriggers", kBool},
                {"relhassubclass", kBool},
                {"relrowsecurity", kBool},
                {"relforcerowsecurity", kBool},
                {"relispopulated", kBool},
                {"relreplident", C},
                {"relispartition", kBool},
                {"relrewrite", kOid},
                {"relacl", kText},
                {"reloptions", kText},
                {"relpartbound", kText}})},
      {"pg_catalog", "pg_attribute", 1249,
       Columns({{"attrelid", kOid},       {"attname", kName},     {"atttypid", kOid},
                {"attstattarget", kInt4}, {"attlen", kInt2},      {"attnum", kInt2},
                {"attndims", kInt4},      {"attcacheoff", kInt4}, {"atttypmod", kInt4},
                {"attbyval", kBool},      {"attalign", C},        {"attstorage", C},
                {"attcompression", C},    {"attnotnull", kBool},  {"atthasdef", kBool},
                {"atthasmissing", kBool}, {"attidentity", C},     {"attgenerated", C},
                {"attisdropped", kBool},  {"attislocal", kBool},  {"attinhcount", kInt4},
                {"attcollation", kOid},   {"attacl", kText},      {"attoptions", kText},
                {"attfdwoptions", kText}})},
      {"pg_catalog", "pg_type", 1247,
       Columns({{"oid", kOid},           {"typname", kName},     {"typnamespace", kOid},
                {"typowner", kOid},      {"typlen", kInt2},      {"typbyval", kBool},
                {"typtype", C},          {"typcategory", C},     {"typispreferred", kBool},
                {"typisdefined", kBool}, {"typdelim", C},        {"typrelid", kOid},
                {"typsubscript", kText}, {"typelem", kOid},      {"typarray", kOid},
                {"typinput", kText},     {"typoutput", kText},   {"typreceive", kText},
                {"typsend", kText},      {"typmodin", kText},    {"typmodout", kText},
                {"typanalyze", kText},   {"typalign", C},        {"typstorage", C},
                {"typnotnull", kBool},   {"typbasetype", kOid},  {"typtypmod", kInt4},
                {"typndims", kInt4},     {"typcollation", kOid}, {"typdefault", kText},
                {"typacl", kText}})},
      {"pg_catalog", "pg_database", 1262,
       Columns({{"oid", kOid},
                {"datname", kName},
                {"datdba", kOid},
                {"encoding", kInt4},
                {"datlocprovider", C},
                {"datistemplate", kBool},
                {"datallowconn", kBool},
                {"datconnlimit", kInt4},
                {"dattablespace", kOid},
                {"datcollate", kText},
                {"datctype", kText},
                {"daticulocale", kText},
                {"datcollversion", kText},
                {"datacl", kText}})},
      {"pg_catalog", "pg_am", 2601,
       Columns({{"oid", kOid}, {"amname", kName}, {"amhandler", kText}, {"amtype", C}})},
      {"pg_catalog", "pg_roles", 12001,
       Columns({{"rolname", kName},
                {"rolsuper", kBool},
                {"rolinherit", kBool},
                {"rolcreaterole", kBool},
                {"rolcreatedb", kBool},
                {"rolcanlogin", kBool},
                {"rolreplication", kBool},
                {"rolconnlimit", kInt4},
                {"rolpassword", kText},
                {"rolvaliduntil", kText},
                {"rolbypassrls", kBool},
                {"rolconfig", kText},
                {"oid", kOid}})},
      {"pg_catalog", "pg_user", 12002,
       Columns({{"usename", kName},
                {"usesysid", kOid},
                {"usecreatedb", kBool},
                {"usesuper", kBool},
                {"userepl", kBool},
                {"usebypassrls", kBool},
                {"passwd", kText},
                {"valuntil", kText},
                {"useconfig", kText}})},
      {"pg_catalog", "pg_settings", 12003,
       Columns({{"name", kText},
                {"setting", kText},
                {"unit", kText},
                {"category", kText},
                {"short_desc", kText},
                {"extra_desc", kText},
                {"context", kText},
                {"vartype", kText},
                {"source", kText},
                {"min_val", kText},
                {"max_val", kText},
                {"enumvals", kText},
                {"boot_val", kText},
                {"reset_val", kText},
                {"sourcefile", kText},
                {"sourceline", kInt4},
                {"pending_restart", kBool}})},
      {"pg_catalog", "pg_tables", 12004,
       Columns({{"schemaname", kName},
                {"tablename", kName},
                {"tableowner", kName},
                {"tablespace", kName},
                {"hasindexes", kBool},
                {"hasrules", kBool},
                {"hastriggers", kBool},
                {"rowsecurity", kBool}})},
      {"pg_catalog", "pg_views", 12005,
       Columns({{"schemaname", kName},
                {"viewname", kName},
                {"viewowner", kName},
                {"definition", kText}})},
      {"pg_catalog", "pg_description", 2609,
       Columns(
           {{"objoid", kOid}, {"classoid", kOid}, {"objsubid", kInt4}, {"description", kText}})},
      {"pg_catalog", "pg_shdescription", 2396,
       Columns({{"objoid", kOid}, {"classoid", kOid}, {"description", kText}})},
      {"pg_catalog", "pg_attrdef", 2604,
       Columns({{"oid", kOid}, {"adrelid", kOid}, {"adnum", kInt2}, {"adbin", kText}})},
      {"pg_catalog", "pg_collation", 3456,
       Columns({{"oid", kOid},
                {"collname", kName},
                {"collnamespace", kOid},
                {"collowner", kOid},
                {"collprovider", C},
                {"collisdeterministic", kBool},
                {"collencoding", kInt4},
                {"collcollate", kText},
                {"collctype", kText}})},
      {"pg_catalog", "pg_policy", 3256,
       Columns({{"oid", kOid},
                {"polname", kName},
                {"polrelid", kOid},
                {"polcmd", C},
                {"polpermissive", kBool},
                {"polroles", kText},
                {"polqual", kText},
                {"polwithcheck", kText}})},
      {"pg_catalog", "pg_statistic_ext", 3381,
       Columns({{"oid", kOid},
                {"stxrelid", kOid},
                {"stxname", kName},
                {"stxnamespace", kOid},
                {"stxowner", kOid},
                {"stxstattarget", kInt4},
                {"stxkeys", kText},
                {"stxkind", kText},
                {"stxexprs", kText}})},
      {"pg_catalog", "pg_publication", 6104,
       Columns({{"oid", kOid},
                {"pubname", kName},
                {"pubowner", kOid},
                {"puballtables", kBool},
                {"pubinsert", kBool},
                {"pubupdate", kBool},
                {"pubdelete", kBool},
                {"pubtruncate", kBool},
                {"pubviaroot", kBool}})},
      {"pg_catalog", "pg_publication_namespace", 6237,
       Columns({{"oid", kOid}, {"pnpubid", kOid}, {"pnnspid", kOid}})},
      {"pg_catalog", "pg_publication_rel", 6106,
       Columns({{"oid", kOid},
                {"prpubid", kOid},
                {"prrelid", kOid},
                {"prqual", kText},
                {"prattrs", kText}})},
      {"pg_catalog", "pg_inherits", 2611,
       Columns({{"inhrelid", kOid},
                {"inhparent", kOid},
                {"inhseqno", kInt4},
                {"inhdetachpending", kBool}})},
      {"pg_catalog", "pg_index", 2610,
       Columns({{"indexrelid", kOid},      {"indrelid", kOid},        {"indnatts", kInt2},
                {"indnkeyatts", kInt2},    {"indisunique", kBool},    {"indisprimary", kBool},
                {"indisexclusion", kBool}, {"indimmediate", kBool},   {"indisclustered", kBool},
                {"indisvalid", kBool},     {"indcheckxmin", kBool},   {"indisready", kBool},
                {"indislive", kBool},      {"indisreplident", kBool}, {"indkey", kText},
                {"indcollation", kText},   {"indclass", kText},       {"indoption", kText},
                {"indexprs", kText},       {"indpred", kText}})},
      {"pg_catalog", "pg_constraint", 2606,
       Columns({{"oid", kOid},           {"conname", kName},       {"connamespace", kOid},
                {"contype", C},          {"condeferrable", kBool}, {"condeferred", kBool},
                {"convalidated", kBool}, {"conrelid", kOid},       {"contypid", kOid},
                {"conindid", kOid},      {"conparentid", kOid},    {"confrelid", kOid},
                {"confupdtype", C},      {"confdeltype", C},       {"confmatchtype", C},
                {"conislocal", kBool},   {"coninhcount", kInt4},   {"connoinherit", kBool},
                {"conkey", kText},       {"confkey", kText},       {"conbin", kText}})},
      {"pg_catalog", "pg_trigger", 2620,
       Columns({{"oid", kOid},
                {"tgrelid", kOid},
                {"tgparentid", kOid},
                {"tgname", kName},
                {"tgfoid", kOid},
                {"tgtype", kInt2},
                {"tgenabled", C},
                {"tgisinternal", kBool},
                {"tgconstrrelid", kOid},
                {"tgconstrindid", kOid},
                {"tgconstraint", kOid},
                {"tgdeferrable", kBool},
                {"tginitdeferred", kBool},
                {"tgnargs", kInt2},
                {"tgattr", kText},
                {"tgargs", kText},
                {"tgqual", kText}})},
      {"pg_catalog", "pg_rewrite", 2618,
       Columns({{"oid", kOid},
                {"rulename", kName},
                {"ev_class", kOid},
                {"ev_type", C},
                {"ev_enabled", C},
                {"is_instead", kBool}})},
      {"pg_catalog", "pg_proc", 1255,
       Columns({{"oid", kOid},
                {"proname", kName},
                {"pronamespace", kOid},
                {"proowner", kOid},
                {"prokind", C},
                {"prorettype", kOid},
                {"proargtypes", kText},
                {"proretset", kBool}})},
      {"pg_catalog", "pg_tablespace", 1213,
       Columns({{"oid", kOid},
                {"spcname", kName},
                {"spcowner", kOid},
                {"spcacl", kText},
                {"spcoptions", kText}})},
      {"pg_catalog", "pg_extension", 3079,
       Columns({{"oid", kOid},
                {"extname", kName},
                {"extowner", kOid},
                {"extnamespace", kOid},
                {"extrelocatable", kBool},
                {"extversion", kText}})},
      {"pg_catalog", "pg_depend", 2608,
       Columns({{"classid", kOid},
                {"objid", kOid},
                {"objsubid", kInt4},
                {"refclassid", kOid},
                {"refobjid", kOid},
                {"refobjsubid", kInt4},
                {"deptype", C}})},
      {"pg_catalog", "pg_enum", 3501,
       Columns(
           {{"oid", kOid}, {"enumtypid", kOid}, {"enumsortorder", kFloat4}, {"enumlabel", kName}})},
      {"information_schema", "schemata", 13001,
       Columns({{"catalog_name", kName},
                {"schema_name", kName},
                {"schema_owner", kName},
                {"sql_path", kText}})},
      {"information_schema", "tables", 13002,
       Columns({{"table_catalog", kName},
                {"table_schema", kName},
                {"table_name", kName},
                {"table_type", kText},
                {"self_referencing_column_name", kName},
                {"reference_generation", kText},
                {"user_defined_type_catalog", kName},
                {"user_defined_type_schema", kName},
                {"user_defined_type_name", kName},
                {"is_insertable_into", kText},
                {"is_typed", kText},
                {"commit_action", kText}})},
      {"information_schema", "columns", 13003,
       Columns({{"table_catalog", kName},
                {"table_schema", kName},
                {"table_name", kName},
                {"column_name", kName},
                {"ordinal_position", kInt4},
                {"column_default", kText},
                {"is_nullable", kText},
                {"data_type", kText},
                {"character_maximum_length", kInt4},
                {"character_octet_length", kInt4},
                {"numeric_precision", kInt4},
                {"numeric_precision_radix", kInt4},
                {"numeric_scale", kInt4},
                {"datetime_precision", kInt4},
                {"interval_type", kText},
                {"udt_catalog", kName},
                {"udt_schema", kName},
                {"udt_name", kName},
                {"dtd_identifier", kName},
                {"is_identity", kText},
                {"is_generated", kText},
                {"is_updatable", kText}})},
      {"information_schema", "views", 13004,
       Columns({{"table_catalog", kName},
                {"table_schema", kName},
                {"table_name", kName},
                {"view_definition", kText}})},
      {"information_schema", "table_constraints", 13005,
       Columns({{"constraint_catalog", kName},
                {"constraint_schema", kName},
                {"constraint_name", kName},
                {"table_catalog", kName},
                {"table_schema", kName},
                {"table_name", kName},
                {"constraint_type", kText}})},
      {"information_schema", "key_column_usage", 13006,
       Columns({{"constraint_catalog", kName},
                {"constraint_schema", kName},
                {"constraint_name", kName},
                {"table_catalog", kName},
                {"table_schema", kName},
                {"table_name", kName},
                {"column_name", kName},
                {"ordinal_position", kInt4}})},
  };
  return relations;
}

std::string TableName(const RelationSpec& r) {
  return std::string(r.schema) == "information_schema" ? "information_schema_" + std::string(r.name)
                                                       : std::string(r.name);
}

std::string Identifier(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  return out + "\"";
}

const char* DeclaredType(uint32_t type) {
  switch (type) {
    case oid::kBool:
      return "BOOLEAN";
    case oid::kInt2:
    case oid::kInt4:
    case oid::kInt8:
    case oid::kOid:
      return "BIGINT";
    case oid::kFloat4:
    case oid::kFloat8:
      return "DOUBLE";
    default:
      return "TEXT";
  }
}

// --- registered functions -----------------------------------------------------

CatalogDatabase& Self(sqlite3_context* ctx) {
  return *static_cast<CatalogDatabase*>(sqlite3_user_data(ctx));
}

std::string_view TextArg(sqlite3_value* v) {
  const unsigned char* text = sqlite3_value_text(v);
  return text == nullptr ? std::string_view()
                         : std::string_view(reinterpret_cast<const char*>(text),
                                            static_cast<size_t>(sqlite3_value_bytes(v)));
}

void ResultText(sqlite3_context* ctx, std::string_view text) {
  sqlite3_result_text(ctx, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
}

void ReturnTrue(sqlite3_context* ctx, int, sqlite3_value**) {
  sqlite3_result_int(ctx, 1);
}
void ReturnFalse(sqlite3_context* ctx, int, sqlite3_value**) {
  sqlite3_result_int(ctx, 0);
}
void ReturnNull(sqlite3_context* ctx, int, sqlite3_value**) {
  sqlite3_result_null(ctx);
}
void ReturnUser(sqlite3_context* ctx, int, sqlite3_value**) {
  ResultText(ctx, Self(ctx).user());
}
void ReturnUtf8(sqlite3_context* ctx, int, sqlite3_value**) {
  ResultText(ctx, "UTF8");
}

void FormatType(sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  if (argc < 1 || sqlite3_value_type(argv[0]) == SQLITE_NULL) return sqlite3_result_null(ctx);
  const TypeInfo* t = FindType(sqlite3_value_int64(argv[0]));
  ResultText(ctx, t != nullptr ? t->formatted : "???");
}

void RegtypeName(sqlite3_context* ctx, int, sqlite3_value** argv) {
  if (sqlite3_value_type(argv[0]) == SQLITE_NULL) return sqlite3_result_null(ctx);
  const int64_t type = sqlite3_value_int64(argv[0]);
  if (type == 0) return ResultText(ctx, "-");
  const TypeInfo* t = FindType(type);
  ResultText(ctx, t != nullptr ? t->formatted : std::to_string(type));
}

void RegclassName(sqlite3_context* ctx, int, sqlite3_value** argv) {
  if (sqlite3_value_type(argv[0]) == SQLITE_NULL) return sqlite3_result_null(ctx);
  ResultText(ctx, Self(ctx).RelationName(sqlite3_value_int64(argv[0])));
}

void RegclassOid(sqlite3_context* ctx, int, sqlite3_value** argv) {
  if (sqlite3_value_type(argv[0]) == SQLITE_NULL) return sqlite3_result_null(ctx);
  const auto found = Self(ctx).RelationOid(TextArg(argv[0]));
  if (!found.has_value()) return sqlite3_result_null(ctx);
  sqlite3_result_int64(ctx, *found);
}

void RegnamespaceName(sqlite3_context* ctx, int, sqlite3_value** argv) {
  if (sqlite3_value_type(argv[0]) == SQLITE_NULL) return sqlite3_result_null(ctx);
  switch (sqlite3_value_int64(argv[0])) {
    case kPgCatalogNamespace:
      return ResultText(ctx, "pg_catalog");
    case kPublicNamespace:
      return ResultText(ctx, "public");
    case kInformationSchemaNamespace:
      return ResultText(ctx, "information_schema");
    default:
      return ResultText(ctx, std::to_string(sqlite3_value_int64(argv[0])));
  }
}

// Arrays are kept as PostgreSQL writes them: {a,b,c} (no quoting is needed
// for the catalog's values).
std::vector<std::string> ArrayElements(std::string_view text) {
  std::vector<std::string> out;
  if (text.size() < 2 || text.front() != '{' || text.back() != '}') return out;
  text = text.substr(1, text.size() - 2);
  if (text.empty()) return out;
  size_t start = 0;
  for (;;) {
    const size_t comma = text.find(',', start);
    std::string element(text.substr(start, comma - start));
    if (element.size() >= 2 && element.front() == '"' && element.back() == '"') {
      element = element.substr(1, element.size() - 2);
    }
    out.push_back(std::move(element));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return out;
}

void ArrayContains(sqlite3_context* ctx, int, sqlite3_value** argv) {
  if (sqlite3_value_type(argv[0]) == SQLITE_NULL || sqlite3_value_type(argv[1]) == SQLITE_NULL) {
    return sqlite3_result_null(ctx);
  }
  const std::string needle(TextArg(argv[1]));
  for (const std::string& e : ArrayElements(TextArg(argv[0]))) {
    if (e == needle) return sqlite3_result_int(ctx, 1);
  }
  sqlite3_result_int(ctx, 0);
}

void ArrayElement(sqlite3_context* ctx, int, sqlite3_value** argv) {
  if (sqlite3_value_type(argv[0]) == SQLITE_NULL) return sqlite3_result_null(ctx);
  const auto elements = ArrayElements(TextArg(argv[0]));
  const int64_t index = sqlite3_value_int64(argv[1]);  // 1-based
  if (index < 1 || static_cast<size_t>(index) > elements.size()) return sqlite3_result_null(ctx);
  ResultText(ctx, elements[static_cast<size_t>(index) - 1]);
}

void ArrayUpper(sqlite3_context* ctx, int, sqlite3_value** argv) {
  if (sqlite3_value_type(argv[0]) == SQLITE_NULL) return sqlite3_result_null(ctx);
  const auto elements = ArrayElements(TextArg(argv[0]));
  if (elements.empty()) return sqlite3_result_null(ctx);
  sqlite3_result_int64(ctx, static_cast<int64_t>(elements.size()));
}

void ArrayToString(sqlite3_context* ctx, int, sqlite3_value** argv) {
  if (sqlite3_value_type(argv[0]) == SQLITE_NULL) return sqlite3_result_null(ctx);
  const std::string separator(TextArg(argv[1]));
  std::string out;
  bool first = true;
  for (const std::string& e : ArrayElements(TextArg(argv[0]))) {
    if (!first) out += separator;
    out += e;
    first = false;
  }
  ResultText(ctx, out);
}

void ArrayJson(sqlite3_context* ctx, int, sqlite3_value** argv) {
  if (sqlite3_value_type(argv[0]) == SQLITE_NULL) return ResultText(ctx, "[]");
  // Values are catalog names and numbers: each a JSON string.
  std::string out = "[";
  bool first = true;
  for (const std::string& e : ArrayElements(TextArg(argv[0]))) {
    if (!first) out += ",";
    first = false;
    out += "\"";
    for (char c : e) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += "\"";
  }
  out += "]";
  ResultText(ctx, out);
}

// generate_series(a, b) as a JSON array (for json_each); at most 100000.
void Series(sqlite3_context* ctx, int, sqlite3_value** argv) {
  if (sqlite3_value_type(argv[0]) == SQLITE_NULL || sqlite3_value_type(argv[1]) == SQLITE_NULL) {
    return ResultText(ctx, "[]");
  }
  const int64_t from = sqlite3_value_int64(argv[0]);
  const int64_t to = sqlite3_value_int64(argv[1]);
  if (to - from > 100000) {
    return sqlite3_result_error(ctx, "generate_series over the catalog is limited to 100000", -1);
  }
  std::string out = "[";
  for (int64_t i = from; i <= to; ++i) {
    if (i > from) out += ",";
    out += std::to_string(i);
  }
  out += "]";
  ResultText(ctx, out);
}

// PostgreSQL's ~ (contains a match) for the catalog: the patterns clients
// send are simple (psql: ^(name)$). Bounded, and compiled per call.
void RegexMatch(sqlite3_context* ctx, int, sqlite3_value** argv) {
  if (sqlite3_value_type(argv[0]) == SQLITE_NULL || sqlite3_value_type(argv[1]) == SQLITE_NULL) {
    return sqlite3_result_null(ctx);
  }
  const std::string pattern(TextArg(argv[1]));
  if (pattern.size() > 1024) return sqlite3_result_error(ctx, "regular expression too long", -1);
  const bool icase = sqlite3_value_int(argv[2]) != 0;
  try {
    const std::regex re(
        pattern, icase ? std::regex::ECMAScript | std::regex::icase : std::regex::ECMAScript);
    const std::string subject(TextArg(argv[0]));
    sqlite3_result_int(ctx, std::regex_search(subject, re) ? 1 : 0);
  } catch (const std::regex_error&) {
    sqlite3_result_error(ctx, "invalid regular expression", -1);
  }
}

struct FunctionSpec {
  const char* name;
  int args;  // -1: any
  void (*fn)(sqlite3_context*, int, sqlite3_value**);
};

constexpr FunctionSpec kFunctions[] = {
    {"pg_table_is_visible", 1, ReturnTrue},
    {"pg_type_is_visible", 1, ReturnTrue},
    {"pg_function_is_visible", 1, ReturnTrue},
    {"has_table_privilege", -1, ReturnTrue},
    {"has_schema_privilege", -1, ReturnTrue},
    {"has_database_privilege", -1, ReturnTrue},
    {"has_column_privilege", -1, ReturnTrue},
    {"pg_relation_is_publishable", 1, ReturnFalse},
    {"pg_get_userbyid", 1, ReturnUser},
    {"pg_encoding_to_char", 1, ReturnUtf8},
    {"format_type", 2, FormatType},
    {"pg_get_expr", -1, ReturnNull},
    {"pg_get_constraintdef", -1, ReturnNull},
    {"pg_get_indexdef", -1, ReturnNull},
    {"pg_get_triggerdef", -1, ReturnNull},
    {"pg_get_viewdef", -1, ReturnNull},
    {"pg_get_statisticsobjdef_columns", 1, ReturnNull},
    {"obj_description", -1, ReturnNull},
    {"col_description", 2, ReturnNull},
    {"shobj_description", 2, ReturnNull},
    {"pg_regclass_name", 1, RegclassName},
    {"pg_regclass_oid", 1, RegclassOid},
    {"pg_regtype_name", 1, RegtypeName},
    {"pg_regnamespace_name", 1, RegnamespaceName},
    {"pg_array_contains", 2, ArrayContains},
    {"pg_array_element", 2, ArrayElement},
    {"array_upper", 2, ArrayUpper},
    {"array_to_string", 2, ArrayToString},
    {"pg_array_json", 1, ArrayJson},
    {"pg_series", 2, Series},
    {"pg_regex_match", 3, RegexMatch},
};

}  // namespace

const GrantSchema& CatalogRelations() {
  static const GrantSchema relations = [] {
    GrantSchema s;
    for (const RelationSpec& r : Relations()) {
      s.tables.push_back(TableSchema{TableName(r), 0, r.columns});
    }
    return s;
  }();
  return relations;
}

std::string CatalogTableFor(std::string_view schema, std::string_view name) {
  for (const RelationSpec& r : Relations()) {
    if (name != r.name) continue;
    if (schema == r.schema || (schema.empty() && std::string_view(r.schema) == "pg_catalog")) {
      return TableName(r);
    }
  }
  return {};
}

bool IsCatalogFunction(std::string_view name) {
  for (const FunctionSpec& f : kFunctions) {
    if (name == f.name && std::string_view(f.name).rfind("pg_array_", 0) != 0 &&
        name != "pg_series" && name != "pg_regex_match") {
      return true;
    }
  }
  return false;
}

CatalogDatabase::~CatalogDatabase() {
  sqlite3_close_v2(db_);
}

std::string CatalogDatabase::RelationName(int64_t relation) const {
  const auto it = relation_names_.find(relation);
  return it != relation_names_.end() ? it->second : std::to_string(relation);
}

std::optional<int64_t> CatalogDatabase::RelationOid(std::string_view name) const {
  std::string key(name);
  if (key.rfind("public.", 0) == 0) key = key.substr(7);
  if (key.rfind("pg_catalog.", 0) == 0) key = key.substr(11);
  if (key.size() >= 2 && key.front() == '"' && key.back() == '"')
    key = key.substr(1, key.size() - 2);
  const auto it = relation_oids_.find(key);
  if (it != relation_oids_.end()) return it->second;
  return std::nullopt;
}

Result<std::unique_ptr<CatalogDatabase>> CatalogDatabase::Build(const GrantSchema& grant,
                                                                const SessionFacts& facts) {
  auto db = std::make_unique<CatalogDatabase>();
  AIRLOCK_RETURN_IF_ERROR(db->Load(grant, facts));
  return db;
}

Status CatalogDatabase::Load(const GrantSchema& grant, const SessionFacts& facts) {
  if (sqlite3_open_v2(":memory:", &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr) !=
      SQLITE_OK) {
    return Status::Internal("the catalog database cannot be opened");
  }
  sqlite3_db_config(db_, SQLITE_DBCONFIG_DQS_DML, 0, nullptr);
  sqlite3_db_config(db_, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, nullptr);
  user_ = facts.user;
  std::string sql = "BEGIN;";
  for (const RelationSpec& r : Relations()) {
    sql += "CREATE TABLE " + Identifier(TableName(r)) + " (";
    for (size_t i = 0; i < r.columns.size(); ++i) {
      sql += (i > 0 ? ", " : "") + Identifier(r.columns[i].name) + " " +
             DeclaredType(r.columns[i].type);
    }
    sql += ");";
  }
  const auto q = [](std::string_view text) { return QuoteLiteral(text); };
  const std::string user = q(facts.user);
  const std::string database = q(facts.database);
  const auto n = [](int64_t v) { return std::to_string(v); };

  sql +=
      "INSERT INTO pg_namespace VALUES (11, 'pg_catalog', 10, NULL), (2200, 'public', 10, NULL),"
      " (13000, 'information_schema', 10, NULL);";
  sql += "INSERT INTO pg_am VALUES (2, 'heap', 'heap_tableam_handler', 't');";
  sql += "INSERT INTO pg_database VALUES (" + n(kDatabaseOid) + ", " + database +
         ", 10, 6, 'c', 0, 1, -1, 1663, 'C.UTF-8', 'C.UTF-8', NULL, NULL, NULL);";
  sql += "INSERT INTO pg_roles VALUES (" + user +
         ", 0, 1, 0, 0, 1, 0, -1, '********', NULL, 0, NULL, 10);";
  sql += "INSERT INTO pg_user VALUES (" + user + ", 10, 0, 0, 0, 0, '********', NULL, NULL);";
  sql += "INSERT INTO information_schema_schemata VALUES (" + database + ", 'public', " + user +
         ", NULL), (" + database + ", 'pg_catalog', " + user + ", NULL), (" + database +
         ", 'information_schema', " + user + ", NULL);";
  for (const TypeInfo& t : kTypes) {
    const bool by_value = t.typlen > 0 && t.typlen <= 8;
    sql +=
        "INSERT INTO pg_type (oid, typname, typnamespace, typowner, typlen, typbyval, typtype,"
        " typcategory, typispreferred, typisdefined, typdelim, typrelid, typelem, typarray,"
        " typinput, typoutput, typalign, typstorage, typnotnull, typbasetype, typtypmod,"
        " typndims, typcollation) VALUES (" +
        n(t.oid) + ", " + q(t.typname) + ", 11, 10, " + n(t.typlen) + ", " +
        (by_value ? "1" : "0") + ", 'b', " + q(std::string(1, t.category)) +
        ", 0, 1, ',', 0, 0, 0, " + q(t.input) + ", " + q(t.input) + ", 'i', " +
        (by_value ? "'p'" : "'x'") + ", 0, 0, -1, 0, " +
        n(IsTextType(t.oid) ? kDefaultCollation : 0) + ");";
  }
  sql += "INSERT INTO pg_collation VALUES (100, 'default', 11, 10, 'd', 1, -1, NULL, NULL);";
  const auto settings = {std::pair{"server_version", "15.0 (airlock)"},
                         std::pair{"server_version_num", "150000"},
                         std::pair{"server_encoding", "UTF8"},
                         std::pair{"client_encoding", "UTF8"},
                         std::pair{"DateStyle", "ISO, MDY"},
                         std::pair{"TimeZone", "UTC"},
                         std::pair{"standard_conforming_strings", "on"},
                         std::pair{"default_transaction_read_only", "on"},
                         std::pair{"max_identifier_length", "63"},
                         std::pair{"search_path", "\"$user\", public"}};
  for (const auto& [name, value] : settings) {
    sql +=
        "INSERT INTO pg_settings (name, setting, context, vartype, source, boot_val, reset_val,"
        " pending_restart) VALUES (" +
        q(name) + ", " + q(value) + ", 'user', 'string', 'default', " + q(value) + ", " + q(value) +
        ", 0);";
  }

  // The catalog's own relations, then the grant's tables.
  const auto add_relation = [&](int64_t relation, const std::string& name, int64_t ns, char kind,
                                double tuples, size_t natts) {
    sql += "INSERT INTO pg_class VALUES (" + n(relation) + ", " + q(name) + ", " + n(ns) +
           ", 0, 0, 10, " + n(kind == 'r' ? kHeapAccessMethod : 0) + ", " + n(relation) +
           ", 0, 1, " + std::to_string(tuples) + ", 0, 0, 0, 0, 'p', " + q(std::string(1, kind)) +
           ", " + n(static_cast<int64_t>(natts)) +
           ", 0, 0, 0, 0, 0, 0, 1, 'd', 0, 0, NULL, NULL, NULL);";
    relation_names_[relation] = name;
    relation_oids_[name] = relation;
  };
  const auto add_column = [&](int64_t relation, const std::string& name, uint32_t type,
                              size_t number) {
    const TypeInfo* t = FindType(type);
    const int len = t != nullptr ? t->typlen : -1;
    sql += "INSERT INTO pg_attribute VALUES (" + n(relation) + ", " + q(name) + ", " + n(type) +
           ", -1, " + n(len) + ", " + n(static_cast<int64_t>(number)) + ", 0, -1, -1, " +
           (len > 0 && len <= 8 ? "1" : "0") + ", 'i', " + (len > 0 ? "'p'" : "'x'") +
           ", '', 0, 0, 0, '', '', 0, 1, 0, " + n(IsTextType(type) ? kDefaultCollation : 0) +
           ", NULL, NULL, NULL);";
  };
  for (const RelationSpec& r : Relations()) {
    const int64_t ns = std::string_view(r.schema) == "pg_catalog" ? kPgCatalogNamespace
                                                                  : kInformationSchemaNamespace;
    add_relation(r.oid, r.name, ns, std::string_view(r.schema) == "pg_catalog" ? 'r' : 'v', 0,
                 r.columns.size());
    for (size_t i = 0; i < r.columns.size(); ++i) {
      add_column(r.oid, r.columns[i].name, r.columns[i].type, i + 1);
    }
  }
  int64_t next = kFirstGrantTableOid;
  for (const TableSchema& table : grant.tables) {
    const int64_t relation = next++;
    add_relation(relation, table.name, kPublicNamespace, 'r', static_cast<double>(table.rows),
                 table.columns.size());
    sql += "INSERT INTO pg_tables VALUES ('public', " + q(table.name) + ", " + user +
           ", NULL, 0, 0, 0, 0);";
    sql += "INSERT INTO information_schema_tables VALUES (" + database + ", 'public', " +
           q(table.name) + ", 'BASE TABLE', NULL, NULL, NULL, NULL, NULL, 'NO', 'NO', NULL);";
    for (size_t i = 0; i < table.columns.size(); ++i) {
      const ColumnSchema& column = table.columns[i];
      add_column(relation, column.name, column.type, i + 1);
      const TypeInfo* t = FindType(column.type);
      const bool number = column.type == oid::kInt2 || column.type == oid::kInt4 ||
                          column.type == oid::kInt8 || column.type == oid::kFloat8;
      sql += "INSERT INTO information_schema_columns VALUES (" + database + ", 'public', " +
             q(table.name) + ", " + q(column.name) + ", " + n(static_cast<int64_t>(i + 1)) +
             ", NULL, 'YES', " + q(t != nullptr ? t->sql_name : "text") + ", NULL, " +
             (IsTextType(column.type) ? "1073741824" : "NULL") + ", " +
             (column.type == oid::kInt8     ? "64"
              : column.type == oid::kInt4   ? "32"
              : column.type == oid::kInt2   ? "16"
              : column.type == oid::kFloat8 ? "53"
                                            : "NULL") +
             ", " + (number ? "2" : "NULL") + ", " +
             (column.type == oid::kInt2 || column.type == oid::kInt4 || column.type == oid::kInt8
                  ? "0"
                  : "NULL") +
             ", " +
             (column.type == oid::kTimestamp || column.type == oid::kTimestamptz ||
                      column.type == oid::kTime
                  ? "6"
              : column.type == oid::kDate ? "0"
                                          : "NULL") +
             ", NULL, " + database + ", 'pg_catalog', " + q(t != nullptr ? t->typname : "text") +
             ", " + q(std::to_string(i + 1)) + ", 'NO', 'NEVER', 'NO');";
    }
  }
  sql += "COMMIT;";
  char* message = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
    std::string text = message != nullptr ? message : "error";
    sqlite3_free(message);
    return Status::Internal("the catalog database cannot be built: " + text);
  }
  for (const FunctionSpec& f : kFunctions) {
    if (sqlite3_create_function_v2(db_, f.name, f.args, SQLITE_UTF8 | SQLITE_DETERMINISTIC, this,
                                   f.fn, nullptr, nullptr, nullptr) != SQLITE_OK) {
      return Status::Internal(std::string("the catalog function ") + f.name +
                              " cannot be registered");
    }
  }
  // Read-only from here on: a statement cannot change what the next one sees.
  sqlite3_exec(db_, "PRAGMA query_only = 1", nullptr, nullptr, nullptr);
  return Status::Ok();
}

Status CatalogDatabase::Query(const std::string& sql, sdk::BatchConsumer& consumer) {
  // A join of catalog relations can still be made large: the statement
  // stops when its consumer is cancelled (a CancelRequest, the timeout).
  sqlite3_progress_handler(
      db_, 10000,
      [](void* data) { return static_cast<sdk::BatchConsumer*>(data)->IsCancelled() ? 1 : 0; },
      &consumer);
  struct ClearHandler {
    sqlite3* db;
    ~ClearHandler() { sqlite3_progress_handler(db, 0, nullptr, nullptr); }
  } clear_handler{db_};
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db_, sql.c_str(), static_cast<int>(sql.size()), &raw, nullptr) !=
      SQLITE_OK) {
    return Status::InvalidArgument(sqlite3_errmsg(db_));
  }
  std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> stmt(raw, sqlite3_finalize);
  if (stmt == nullptr) return Status::InvalidArgument("query is empty");
  if (!sqlite3_stmt_readonly(stmt.get()))
    return Status::PermissionDenied("the catalog is read-only");
  int rc = sqlite3_step(stmt.get());
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return Status::InvalidArgument(sqlite3_errmsg(db_));
  const int ncols = sqlite3_column_count(stmt.get());
  std::vector<arrow::Field> fields;
  for (int i = 0; i < ncols; ++i) {
    arrow::Field field;
    field.name = sqlite3_column_name(stmt.get(), i);
    field.nullable = true;
    const char* decl = sqlite3_column_decltype(stmt.get(), i);
    const int storage = rc == SQLITE_ROW ? sqlite3_column_type(stmt.get(), i) : SQLITE_NULL;
    if (decl != nullptr && std::strcmp(decl, "BOOLEAN") == 0) {
      field.type = arrow::Type::kBool;
    } else if (decl != nullptr && std::strcmp(decl, "BIGINT") == 0) {
      field.type = arrow::Type::kInt64;
    } else if (decl != nullptr && std::strcmp(decl, "DOUBLE") == 0) {
      field.type = arrow::Type::kFloat64;
    } else if (decl != nullptr) {
      field.type = arrow::Type::kUtf8;
    } else {
      field.type = storage == SQLITE_INTEGER ? arrow::Type::kInt64
                   : storage == SQLITE_FLOAT ? arrow::Type::kFloat64
                                             : arrow::Type::kUtf8;
    }
    fields.push_back(std::move(field));
  }
  constexpr size_t kBatchRows = 1024;
  arrow::RecordBatchBuilder builder(fields, kBatchRows);
  AIRLOCK_RETURN_IF_ERROR(consumer.OnSchema(builder.MakeSchema()));
  while (rc == SQLITE_ROW) {
    for (int i = 0; i < ncols; ++i) {
      const size_t c = static_cast<size_t>(i);
      const int storage = sqlite3_column_type(stmt.get(), i);
      if (storage == SQLITE_NULL) {
        builder.AppendNull(c);
        continue;
      }
      switch (fields[c].type) {
        case arrow::Type::kBool:
          builder.AppendBool(c, sqlite3_column_int64(stmt.get(), i) != 0);
          break;
        case arrow::Type::kInt64:
          if (storage == SQLITE_INTEGER || storage == SQLITE_FLOAT) {
            builder.AppendInt64(c, sqlite3_column_int64(stmt.get(), i));
          } else {
            builder.AppendNull(c);
          }
          break;
        case arrow::Type::kFloat64:
          builder.AppendDouble(c, sqlite3_column_double(stmt.get(), i));
          break;
        default: {
          const unsigned char* text = sqlite3_column_text(stmt.get(), i);
          builder.AppendString(
              c, std::string_view(reinterpret_cast<const char*>(text),
                                  static_cast<size_t>(sqlite3_column_bytes(stmt.get(), i))));
        }
      }
    }
    if (builder.rows() >= kBatchRows) {
      if (consumer.IsCancelled()) return Status::Cancelled("cancelled");
      AIRLOCK_RETURN_IF_ERROR(consumer.OnBatch(builder.Finish()));
    }
    rc = sqlite3_step(stmt.get());
  }
  if (rc == SQLITE_INTERRUPT) return Status::Cancelled("the catalog statement was cancelled");
  if (rc != SQLITE_DONE) return Status::InvalidArgument(sqlite3_errmsg(db_));
  if (builder.rows() > 0) AIRLOCK_RETURN_IF_ERROR(consumer.OnBatch(builder.Finish()));
  return Status::Ok();
}

}  // namespace airlock::tunnels::pgwire
