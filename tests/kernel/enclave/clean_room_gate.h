// A query gate over the tables the gate's tests and fuzz target use:
// "sales", a clean room (count and sum of amount by region, groups of at
// least `min_group_size` rows), and "plain", without the obligation.
#pragma once

#include <cstdint>
#include <vector>

#include "kernel/enclave/query_gate.h"

namespace airlock::enclave {

inline QueryGate SalesCleanRoomGate(int64_t min_group_size) {
  std::vector<DatasetSpec> datasets(2);
  datasets[0].name = "sales";
  AggregateOnly room;
  room.min_group_size = min_group_size;
  room.allowed_functions = {"count", "sum"};
  room.dimensions = {"region"};
  room.metrics = {"amount"};
  datasets[0].pull.scope.aggregate_only = room;
  datasets[1].name = "plain";
  return QueryGate(datasets);
}

}  // namespace airlock::enclave
