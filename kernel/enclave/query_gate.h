// What a sealed enclave agrees to run: the clean-room obligation
// (AggregateOnly) enforced where the data is, whatever the transport.
//
// A query is either free SQL or an aggregate call, the statement
//   AGGREGATE {"dataset": "orders", "dimensions": ["region"],
//              "metrics": [{"function": "sum", "column": "amount"},
//                          {"function": "count"}],
//              "filters": [{"column": "region", "op": "eq", "value": "EU"}]}
// for which the enclave writes the SQL itself: GROUP BY the dimensions, the
// functions over their columns, the filters as literals it renders, and
// HAVING COUNT(*) >= the clean room's minimum group size, so that a group of
// fewer source rows never leaves the enclave. Answer columns: the
// dimensions, then each metric as "<function>_<column>" ("count" for rows).
//
// When any table of the enclave is a clean room, free SQL is refused with a
// message that names the obligation; an aggregate of a clean-room table
// must keep to its dimensions, metrics and functions (filters on dimensions
// only). An aggregate of a table without the obligation may use any column
// and function, with groups of any size.
//
// Thread-safety: immutable after construction.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"
#include "kernel/enclave/enclave_spec.h"

namespace airlock::enclave {

inline constexpr std::string_view kAggregateKeyword = "AGGREGATE";

// True when `text` is an aggregate call: the keyword (any case) after
// optional blanks, then a blank or "{".
bool IsAggregateCall(std::string_view text);

class QueryGate {
 public:
  explicit QueryGate(const std::vector<DatasetSpec>& datasets);

  // The SQL to run for `text`, or why it may not run (InvalidArgument for a
  // malformed aggregate call, PermissionDenied for what a clean room
  // forbids).
  Result<std::string> Admit(std::string_view text) const;

  // Adds "aggregate_only" (the rules) to each clean-room table's entry of
  // `tables` ([{"name", ...}], as the enclave lists its tables).
  void Describe(nlohmann::json& tables) const;

  bool has_clean_room() const { return !clean_rooms_.empty(); }

 private:
  Result<std::string> BuildAggregate(std::string_view call) const;

  std::vector<std::string> tables_;
  std::map<std::string, AggregateOnly> clean_rooms_;  // by table name
};

}  // namespace airlock::enclave
