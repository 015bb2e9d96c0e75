// What every end-to-end suite stands on: the sources (a throwaway PostgreSQL
// cluster, the MongoDB wire-protocol server, CSV files) filled with
// deterministic data, a kernel configuration over them, and the user's side
// of a request's lifecycle through the v1 API.
//
// The data (scale = customers / orders / regions rows):
//   PostgreSQL customers_<tag> (id int8 PK, name text, region_id int8, segment text)
//     region_id = (id * 7919) % regions + 1, segment cycles retail/smb/enterprise
//   MongoDB   shop.orders_<tag> {_id, order_id, customer_id, amount, status}
//     customer_id = (i * 104729) % customers + 1, amount = ((i * 37) % 10000) / 100
//   CSV       regions_<tag>.csv (region_id, region, country), region = region-(i % 50)
// The same formulas build the sqlite3 and PostgreSQL-local baselines
// (BaselineSql), so every engine joins exactly the same rows.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/kernel/e2e/kernel_process.h"
#include "tests/support/http_client.h"
#include "tests/support/mongodb/mongo_test_server.h"
#include "tests/support/postgres/pg_cluster.h"
#include "tests/support/test_pki.h"

namespace airlock::bench {

struct Scale {
  int64_t customers = 10'000;
  int64_t orders = 10'000;
  int64_t regions = 10'000;
  std::string tag;  // table / collection / file suffix
};

inline constexpr const char* kRequesterToken = "alk_bench_alice_requester";
inline constexpr const char* kApproverToken = "alk_bench_bob_approver";

// The query set every user runs: point lookups, aggregates, a three-source join.
std::vector<std::string> QuerySet();
// The join alone (the suites' headline query).
std::string JoinSql();
// The same three sources joined without a LIMIT, grouped by text columns too:
// every group's answer, for comparing engines row for row.
std::string FullJoinSql();

class Sources {
 public:
  // Starts PostgreSQL and the MongoDB server; `dir` holds CSVs and copies.
  explicit Sources(std::string dir);
  ~Sources();
  // Creates customers_<tag>, orders_<tag> and regions_<tag>.csv (once per tag).
  void Load(const Scale& scale);
  // Creates the PostgreSQL table `name` (once) with `rows` rows of about 100
  // bytes each (id int8 PK, name, region_id, segment, a 64-character note),
  // readable by the connector's role: the scale suite's data.
  void LoadWide(const std::string& name, int64_t rows);

  test::PgCluster& pg() { return *pg_; }
  testing::mongodb::MongoTestServer& mongo() { return *mongo_; }
  const std::string& dir() const { return dir_; }
  const std::string& pg_ca_file() const { return pg_ca_file_; }

 private:
  std::string dir_;
  std::unique_ptr<test::PgCluster> pg_;
  std::unique_ptr<testing::mongodb::MongoTestServer> mongo_;
  std::string pg_ca_file_;
  std::set<std::string> loaded_;
};

// SQL (sqlite3 and PostgreSQL share it) that creates and fills customers,
// orders and regions with exactly the data Sources::Load makes.
std::string BaselineSql(const Scale& scale, bool postgres);

struct KernelOptions {
  std::string tunnel = "https";      // or "pgwire"
  std::string isolator = "process";  // or "inprocess"
  bool auto_approve = false;         // policy allows without an approver
  bool api_tls = false;              // the v1 API over TLS
  int max_users = 1100;              // tunnel connection limits
};

nlohmann::json KernelConfig(Sources& sources, const Scale& scale, const std::string& dir,
                            const test::TestPki& pki, const KernelOptions& options);
// A kernel whose only datasets are PostgreSQL tables: dataset name → table
// (in schema public). Catalog describes are off, so the kernel starts no
// enclave of its own; `enclave_memory_bytes` > 0 overrides the default bound.
nlohmann::json PostgresOnlyKernelConfig(
    Sources& sources, const std::vector<std::pair<std::string, std::string>>& datasets,
    const std::string& dir, const test::TestPki& pki, const KernelOptions& options,
    int64_t enclave_memory_bytes);

// Seconds since the epoch of an audit "ts" (RFC 3339, microseconds, Z).
double ParseAuditTs(const std::string& ts);
double NowEpochSeconds();

// One request, seen from the requester and the approver.
struct Grant {
  std::string id;
  std::string url;
  std::string credential;
  nlohmann::json raw;
};

class Api {
 public:
  Api(uint16_t port, const std::string& ca_file = "");
  // POST /v1/requests over the join suite's three datasets; the id or ""
  // (error set).
  std::string Create(std::string* error);
  // POST /v1/requests over `datasets`.
  std::string Create(const std::vector<std::string>& datasets, std::string* error);
  bool Approve(const std::string& id, std::string* error);
  // Polls GET /v1/requests/{id} every `poll_ms` until ready; false on failed/timeout.
  bool WaitReady(const std::string& id, double timeout_s, int poll_ms, std::string* error);
  bool Credentials(const std::string& id, Grant* grant, std::string* error);
  void Revoke(const std::string& id);
  nlohmann::json Audit(const std::string& id);
  nlohmann::json Get(const std::string& id);

 private:
  test::HttpClient http_;
};

// Runs one SQL text through a tunnel grant, synchronously.
class TunnelClient {
 public:
  TunnelClient(const Grant& grant, const std::string& transport, const std::string& ca_file);
  ~TunnelClient();
  // True when the query succeeded; *rows gets the row count and, when asked
  // for, *all_rows every row normalized for comparison (join_check.h).
  bool Query(const std::string& sql, int64_t* rows, nlohmann::json* all_rows, std::string* error);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The live airlock-enclave processes descending from `kernel_pid` (other
// kernels' enclaves are left out).
std::vector<int> EnclavePids(int kernel_pid);
// Peak resident set (VmHWM, bytes) of those enclaves (the largest).
int64_t EnclavePeakRss(int kernel_pid);
// A status field of a process in bytes (VmRSS, VmHWM); 0 when it is gone.
int64_t ProcessMemory(int pid, const char* field);

}  // namespace airlock::bench
