// The document the kernel sends an enclave first (the Spec frame):
//
// {
//   "request_id": "r-123",
//   "mode": "interactive" | "job" | "describe",
//   "datasets": [
//     {"name": "orders",                           // table name: [A-Za-z_][A-Za-z0-9_]*
//      "connector": {"name": "pg-main", "path": "/abs/connector.so",
//                    "sha256": "<hex pin>"?, "config": {...}},   // secret references only
//      "pull": {"dataset": "orders", "object": "public.orders", "scope": {...}}}
//   ],
//   "limits": {"query_timeout_ms": 30000, "max_result_rows": 1000000,
//              "max_memory_bytes": 1073741824, "max_sql_bytes": 100000},
//   "queries": ["SELECT ..."],                     // job mode only
//   "egress": [{"endpoint": "db.internal:5432",    // approved source endpoints
//               "address": "127.0.0.2", "port": 5432}]   // where to listen inside
// }
// `egress` is present only when the enclave has a network namespace of its
// own (egress_forwarder.h); without it connectors reach sources directly.
//
// Unknown members are ignored; missing limits take the defaults below.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"
#include "kernel/enclave/egress_forwarder.h"

namespace airlock::enclave {

// kDescribe: no pull; each dataset's connector describes it (columns,
// description), the enclave reports that as its "described" state and
// serves nothing else.
enum class EnclaveMode { kInteractive, kJob, kDescribe };

struct EnclaveLimits {
  int64_t query_timeout_ms = 30000;
  int64_t max_result_rows = 1000000;
  int64_t max_memory_bytes = int64_t{1} << 30;
  int64_t max_sql_bytes = 100000;
};

struct ConnectorRef {
  std::string name;    // the connector instance's name in the configuration
  std::string path;    // absolute path of the connector shared object
  std::string sha256;  // pin; empty when the configuration sets none
  nlohmann::json config = nlohmann::json::object();
};

struct DatasetSpec {
  std::string name;  // the table name once sealed
  ConnectorRef connector;
  PullSpec pull;
  // The key columns the operator declared (datasets[].key), in key order;
  // empty when none. The table is stored in this key's order.
  std::vector<std::string> key;
};

struct EnclaveSpec {
  std::string request_id;
  EnclaveMode mode = EnclaveMode::kInteractive;
  std::vector<DatasetSpec> datasets;
  EnclaveLimits limits;
  std::vector<std::string> queries;
  std::vector<EgressRoute> egress;

  // Strict parse: InvalidArgument naming the member at fault. Rejects table
  // names that are not safe identifiers or that collide (SQLite compares
  // identifiers case-insensitively), and non-positive limits.
  static Result<EnclaveSpec> FromJson(const nlohmann::json& j);
};

// Bounds on the spec itself.
inline constexpr size_t kMaxDatasets = 64;
inline constexpr size_t kMaxJobQueries = 256;
inline constexpr size_t kMaxEgressRoutes = 64;

// [A-Za-z_][A-Za-z0-9_]{0,127}, not starting with "sqlite_" (reserved by SQLite)
// nor "_airlock_" (the enclave's staging tables), in any case.
bool IsSafeTableName(std::string_view name);

}  // namespace airlock::enclave
