// Shared pieces of the postgres connector tests: the cluster with its test
// roles and tables, a host that resolves env: secrets (and counts how many it
// lent and got back), the loaded plugin, and a sink that decodes batches.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "airlock/c/airlock_plugin.h"
#include "airlock/cpp/arrow.hpp"
#include "airlock/cpp/batch.hpp"
#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"
#include "tests/support/dl_plugin.h"
#include "tests/support/postgres/pg_cluster.h"

namespace airlock::pgtest {

inline constexpr char kReaderPassword[] = "reader-Pw-7f3a9c";
inline constexpr char kNoRightsPassword[] = "norights-Pw-2b8e41";
inline constexpr char kReaderPasswordEnv[] = "AIRLOCK_PGTEST_READER_PW";
inline constexpr char kNoRightsPasswordEnv[] = "AIRLOCK_PGTEST_NORIGHTS_PW";
inline constexpr char kWrongPasswordEnv[] = "AIRLOCK_PGTEST_WRONG_PW";
inline constexpr char kWrongPassword[] = "wrong-Pw-d41d8cd9";

// A host whose secret_resolve reads env: references; logs are kept.
class SecretHost {
 public:
  SecretHost();
  const airlock_host_services* services() const { return &services_; }
  int resolved() const { return resolved_.load(); }
  int released() const { return released_.load(); }
  std::vector<std::string> logs() const;

 private:
  airlock_host_services services_;
  std::atomic<int> resolved_{0};
  std::atomic<int> released_{0};
  mutable std::mutex mutex_;
  std::vector<std::string> logs_;
};

// The cluster (log_statement=all), its roles and tables, the host and the
// plugin: made once per test binary.
struct Env {
  std::unique_ptr<test::PgCluster> cluster;
  SecretHost host;
  std::unique_ptr<testing::DlPlugin> plugin;
};
Env& Shared();

// A connector configuration for the test cluster: user "reader" over TLS
// verify-full; `datasets` and any `overrides` merged in.
Json Config(const Json& datasets, const Json& overrides = Json::object());

// Everything a pull delivered.
class Collector : public sdk::BatchConsumer {
 public:
  Status OnSchema(arrow::OwnedSchema schema) override;
  Status OnBatch(arrow::OwnedArray batch) override;
  bool IsCancelled() override { return cancel_when && cancel_when(); }

  std::vector<arrow::Field> fields;
  // The schema's "airlock.key" metadata, verbatim; nullopt when absent.
  std::optional<std::string> key_metadata;
  // Cells as JSON: null, bool, integer, double (NaN/inf kept as strings
  // "nan"/"inf"/"-inf"), strings; binary as "\\x<hex>"; date32 as its day
  // number, timestamps/times as micro counts.
  std::vector<std::vector<Json>> rows;
  std::vector<size_t> batch_rows;
  std::function<bool()> cancel_when;
  size_t Column(const std::string& name) const;

 private:
  arrow::OwnedSchema schema_;
};

struct PullOutcome {
  airlock_type_status status = AIRLOCK_ERR_UNKNOWN;
  std::string message;
};

// Creates a connector from `config` and pulls `pull` (a pull JSON document).
PullOutcome Pull(const Json& config, const Json& pull, Collector& collector);
// Describe on a connector made from `config`.
PullOutcome Describe(const Json& config, Json* catalog);

}  // namespace airlock::pgtest
