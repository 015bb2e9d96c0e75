// Turns an approved scope into an aggregation pipeline built as BSON, value
// by value (no JSON text is ever assembled from scope values):
//
//   [<the dataset's configured stages>...,
//    {$match: {$and: [<one clause per row condition>]}},   (when filtered)
//    {$project: {<delivered columns>, _id: 0 unless delivered}}]
//
// Row conditions keep SQL semantics: `ne` and `not_in` also exclude NULL and
// missing fields ($nin [..., null]), `is_null` matches null and missing,
// `like` becomes an anchored regular expression with every other character
// escaped. Literals are typed by the column (int64/double for numbers,
// ObjectId for objectid columns, Decimal128 for decimal columns, dates at
// millisecond precision); a literal that cannot be typed is InvalidArgument.
// Columns whose text the server cannot compare as delivered (json, mixed,
// binary) accept only is_null / not_null.
//
// Masks are pushed into $project so raw values stay on the server:
//   redact -> {$cond: [{$eq: [{$ifNull: ["$c", null]}, null]}, null, {$literal: "***"}]}
//   last4  -> strings: "****" + last 4 code points ($strLenCP/$substrCP), or
//             "****" when 4 or fewer; other BSON types pass unchanged and the
//             connector masks their canonical text (row_writer.h)
//   hash   -> the raw value is read and hashed in the connector (MongoDB has
//             no SHA-256 expression).
#pragma once

#include <bson/bson.h>

#include <memory>
#include <string>
#include <vector>

#include "airlock/cpp/scope.hpp"
#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"
#include "bson_cells.h"

namespace airlock::connectors::mongodb {

struct BsonDeleter {
  void operator()(bson_t* b) const { bson_destroy(b); }
};
using BsonPtr = std::unique_ptr<bson_t, BsonDeleter>;

// The configured stages (a JSON array) as a BSON array document; empty text
// gives an empty array. InvalidArgument when the text is not Extended JSON.
Result<BsonPtr> ParsePipeline(const std::string& pipeline_json);

// The full pipeline for a scoped pull. `columns` are the dataset's source
// columns; `plan` was made from them and `scope` by scope::ScopePlan::Make.
Result<BsonPtr> BuildPullPipeline(const std::string& pipeline_json,
                                  const std::vector<SourceColumn>& columns,
                                  const scope::ScopePlan& plan, const DatasetScope& scope);

// The anchored regular expression for a LIKE pattern ('%' any run, '_' one
// character, '\' escapes).
std::string LikeToRegex(std::string_view pattern);

}  // namespace airlock::connectors::mongodb
