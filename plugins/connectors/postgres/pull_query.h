// The one statement a pull runs: the approved scope compiled to SQL.
//
//  - Columns: only the scope's columns, in source order.
//  - Masks run in the source: a masked column is selected as the mask's
//    output (redact, last4, hash over the column's canonical text), so its
//    raw value never leaves the database.
//  - Row filter: every condition becomes a predicate on a quoted identifier
//    with a bound parameter ($1, $2, ...); request values are never part of
//    the SQL text. Column names must be columns the source reported
//    (InvalidArgument otherwise), and are quoted.
//  - Semantics follow scope.hpp: a NULL cell satisfies only is_null; text
//    ordering and like compare bytes (COLLATE "C"); a NaN float satisfies
//    only ne and not_in.
#pragma once

#include <string>
#include <vector>

#include "airlock/cpp/arrow.hpp"
#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"
#include "config.h"
#include "pg_connection.h"
#include "pg_types.h"

namespace airlock::connectors::postgres {

inline constexpr size_t kMaxFilterParams = 10000;

struct PullQuery {
  std::string select;                // SELECT ... FROM ... [WHERE ...]
  std::vector<Param> params;         // bound to $1..$n
  std::vector<Kind> decode;          // per output column: how its binary value decodes
  std::vector<arrow::Field> fields;  // per output column: what is delivered
};

// The relation a dataset reads: "schema"."table", or (<query>) AS "airlock_source".
std::string SourceRelation(const DatasetConfig& dataset);

// Compiles `scope` against the dataset's source columns. InvalidArgument for
// unknown columns, mask names, ops or literals that do not fit a column;
// TypeNotRepresentable for an unmasked (or filtered) column without mapping.
Result<PullQuery> BuildPullQuery(const DatasetConfig& dataset,
                                 const std::vector<SourceColumn>& columns,
                                 const DatasetScope& scope);

}  // namespace airlock::connectors::postgres
