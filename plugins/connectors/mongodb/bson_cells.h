// BSON values as Arrow cells: the column kinds, the type mapping, schema
// inference from a sample and Extended JSON text for nested values.
//
// Type mapping (kind -> Arrow type; what a document value becomes):
//   objectid -> utf8           24 lowercase hex digits
//   int32    -> int32          int32 (an int64 that fits)
//   int64    -> int64          int32, int64
//   float64  -> float64        double, int32, int64 if |v| <= 2^53 (exact)
//   decimal  -> utf8           Decimal128 as its exact text ("1.10", "-0",
//                              "1.23E+6144", "NaN"), int32/int64 in decimal
//   bool     -> bool
//   utf8     -> utf8           string (and the deprecated symbol)
//   timestamp-> timestamp[us, UTC]  date (milliseconds) * 1000; a date whose
//                              microseconds overflow int64 is not representable
//   binary   -> binary         the bytes of any subtype
//   json     -> utf8           relaxed Extended JSON v2, compact (documents,
//                              arrays, or any value)
//   mixed    -> utf8           text of any scalar (strings as they are,
//                              numbers in decimal, dates ISO 8601), JSON for
//                              documents and arrays
// null and undefined are NULL in every kind; a missing field is NULL.
// Anything else (a string in an int64 column, an int64 beyond 2^53 in a
// float64 column, a BSON regex or timestamp outside json/mixed columns)
// is TypeNotRepresentable naming the column and the BSON type, never the value.
//
// Thread-safety: free functions are thread-safe; SchemaInferer is not.
#pragma once

#include <bson/bson.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "airlock/cpp/arrow.hpp"
#include "airlock/cpp/scope.hpp"
#include "airlock/cpp/status.hpp"

namespace airlock::connectors::mongodb {

enum class Kind : uint8_t {
  kObjectId,
  kInt32,
  kInt64,
  kDouble,
  kDecimal,
  kBool,
  kString,
  kDate,
  kBinary,
  kJson,
  kMixed,
};

// Nested documents as one JSON text column, or as one column per leaf path
// ("address.city"; arrays stay JSON text).
enum class NestedMode : uint8_t { kJson, kFlatten };

const char* KindName(Kind kind);
arrow::Type ArrowTypeOf(Kind kind);
// The delivered field: timestamps carry the "UTC" zone; every column is nullable.
arrow::Field FieldOf(const std::string& name, Kind kind);
// Human name of a BSON type ("int64", "regex", ...), for messages.
const char* BsonTypeName(bson_type_t type);

struct SourceColumn {
  std::string name;  // a top-level field, or a dotted path in flatten mode
  Kind kind = Kind::kMixed;
};

// Infers columns from sample documents. Widening: int32+int64 -> int64;
// int32/int64+double -> float64; documents+arrays -> json; any other mix of
// types -> mixed (utf8 text); null-only fields -> mixed. Field names that
// cannot be queried safely (empty, starting with '$', containing NUL, or '.'
// in json mode) are skipped and reported.
class SchemaInferer {
 public:
  explicit SchemaInferer(NestedMode mode) : mode_(mode) {}

  void Add(const bson_t* document);

  // The columns in first-seen order; TypeNotRepresentable when a field holds
  // a BSON type with no mapping (regex, timestamp, code, DBPointer, min/max
  // key). `skipped` receives the names that were left out.
  Result<std::vector<SourceColumn>> Finish(std::vector<std::string>* skipped) const;

 private:
  struct PathStats {
    uint32_t seen = 0;  // bit per Seen value
    bson_type_t unsupported = BSON_TYPE_EOD;
    size_t order = 0;
  };
  void AddDocument(const bson_t* document, const std::string& prefix);

  NestedMode mode_;
  std::map<std::string, PathStats> paths_;
  std::vector<std::string> skipped_;
};

// Appends relaxed Extended JSON v2 (compact) of the value at `it`. False for
// the two types with no JSON form worth delivering (DBPointer, code with scope).
bool AppendJson(const bson_iter_t* it, std::string* out);

// Converts the value at `it` for a column of `kind`. On success `*out` is the
// cell (NULL for null/undefined); strings borrow from the document or from
// `scratch`, which must outlive the use of `*out`. False when the value is not
// representable in that kind.
bool ToValue(Kind kind, const bson_iter_t* it, std::string* scratch, scope::Value* out);

}  // namespace airlock::connectors::mongodb
