// The catalog people and agents browse (GET /v1/catalog, the MCP tools):
// the configured datasets, without where their data lives, completed with
// what their connectors described of them (EnclaveSupervisor::
// DescribeDatasets): the columns and description a dataset's configuration
// does not give. Each dataset says where its columns come from:
//   "schema": {"source": "configuration" | "connector" | "none",
//              "described_at_us": N?, "error": "..."?}
//
// Thread-safety: Get and Merge from any thread.
#pragma once

#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "kernel/core/config.h"

namespace airlock {

class CatalogDocument {
 public:
  explicit CatalogDocument(const KernelConfig& config);

  // {"datasets": [...]}
  nlohmann::json Get() const;

  // Takes what a describe found ({"datasets": {name: {...}}, "errors":
  // {name: reason}}) at `at_us` (Unix microseconds). Configured columns and
  // descriptions stay; a dataset the describe failed for keeps the columns
  // an earlier describe gave, with the error.
  void Merge(const nlohmann::json& described, int64_t at_us);

 private:
  mutable std::mutex mu_;
  nlohmann::json document_;  // guarded by mu_
};

}  // namespace airlock
