#include "bench/e2e/fixture.h"

#include <dirent.h>
#include <libpq-fe.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "bench/e2e/join_check.h"

namespace airlock::bench {
namespace {

using nlohmann::json;

constexpr const char* kPgPassword = "bench-reader-pw-31c9";
const char* const kSegments[] = {"retail", "smb", "enterprise"};
const char* const kStatuses[] = {"open", "paid", "shipped", "returned"};
const char* const kCountries[] = {"GB", "US", "NL", "DE", "FR", "JP", "BR", "IN"};

int64_t RegionOf(int64_t id, const Scale& s) {
  return (id * 7919) % s.regions + 1;
}
int64_t CustomerOf(int64_t i, const Scale& s) {
  return (i * 104729) % s.customers + 1;
}
double AmountOf(int64_t i) {
  return static_cast<double>((i * 37) % 10000) / 100.0;
}

test::Headers Auth(const char* token) {
  return {{"Authorization", std::string("Bearer ") + token}, {"Content-Type", "application/json"}};
}

std::string Describe(const test::ClientResponse& r) {
  return r.status == 0 ? r.error : std::to_string(r.status) + " " + r.body.substr(0, 300);
}

}  // namespace

std::string JoinSql() {
  return "SELECT r.region, COUNT(*) AS orders, SUM(o.amount) AS revenue "
         "FROM orders o JOIN customers c ON c.id = o.customer_id "
         "JOIN regions r ON r.region_id = c.region_id "
         "GROUP BY r.region ORDER BY revenue DESC, r.region LIMIT 10";
}

std::string FullJoinSql() {
  return "SELECT r.region, r.country, c.segment, COUNT(*) AS orders, SUM(o.amount) AS revenue, "
         "MIN(o.order_id) AS first_order, MAX(c.name) AS last_name "
         "FROM orders o JOIN customers c ON c.id = o.customer_id "
         "JOIN regions r ON r.region_id = c.region_id "
         "GROUP BY r.region, r.country, c.segment ORDER BY r.region, r.country, c.segment";
}

std::vector<std::string> QuerySet() {
  return {"SELECT id, name, region_id, segment FROM customers WHERE id = 4242",
          "SELECT order_id, customer_id, amount, status FROM orders WHERE order_id = 777",
          "SELECT segment, COUNT(*), MIN(id), MAX(id) FROM customers GROUP BY segment",
          "SELECT status, COUNT(*), SUM(amount), AVG(amount) FROM orders GROUP BY status",
          JoinSql()};
}

Sources::Sources(std::string dir) : dir_(std::move(dir)) {
  std::filesystem::create_directories(dir_ + "/data");
  pg_ = test::PgCluster::Start();
  pg_->Exec(std::string("CREATE ROLE reader LOGIN PASSWORD '") + kPgPassword + "'");
  ::setenv("AIRLOCK_BENCH_PG_PASSWORD", kPgPassword, 1);
  // The cluster's directory belongs to the postgres user: an enclave in its
  // own user namespace cannot read the CA there.
  pg_ca_file_ = dir_ + "/pg-ca.crt";
  std::filesystem::copy_file(pg_->ca_file(), pg_ca_file_,
                             std::filesystem::copy_options::overwrite_existing);
  std::string error;
  mongo_ = testing::mongodb::MongoTestServer::Start({}, &error);
  if (!mongo_) throw std::runtime_error("MongoDB test server: " + error);
}

Sources::~Sources() = default;

void Sources::Load(const Scale& s) {
  if (!loaded_.insert(s.tag).second) return;
  const std::string table = "customers_" + s.tag;
  pg_->Exec("DROP TABLE IF EXISTS " + table + "; CREATE TABLE " + table +
            " (id int8 PRIMARY KEY, name text, region_id int8, segment text);"
            "INSERT INTO " +
            table + " SELECT g, 'customer-' || g, (g * 7919) % " + std::to_string(s.regions) +
            " + 1, (ARRAY['retail','smb','enterprise'])[g % 3 + 1] FROM generate_series(1::int8, " +
            std::to_string(s.customers) + ") g; GRANT SELECT ON " + table + " TO reader");
  pg_->Exec("VACUUM ANALYZE " + table);

  std::vector<bson_t*> docs;
  docs.reserve(static_cast<size_t>(s.orders));
  for (int64_t i = 1; i <= s.orders; ++i) {
    bson_t* d = bson_new();
    BSON_APPEND_INT64(d, "_id", i);
    BSON_APPEND_INT64(d, "order_id", i);
    BSON_APPEND_INT64(d, "customer_id", CustomerOf(i, s));
    BSON_APPEND_DOUBLE(d, "amount", AmountOf(i));
    BSON_APPEND_UTF8(d, "status", kStatuses[i % 4]);
    docs.push_back(d);
  }
  mongo_->Insert("shop", "orders_" + s.tag, std::vector<const bson_t*>(docs.begin(), docs.end()));
  for (bson_t* d : docs) bson_destroy(d);

  std::ofstream csv(dir_ + "/data/regions_" + s.tag + ".csv");
  csv << "region_id,region,country\n";
  for (int64_t i = 1; i <= s.regions; ++i) {
    csv << i << ",region-" << (i % 50) << "," << kCountries[i % 8] << "\n";
  }
  (void)RegionOf;
  (void)kSegments;
}

void Sources::LoadWide(const std::string& name, int64_t rows) {
  if (!loaded_.insert("wide:" + name).second) return;
  pg_->Exec("DROP TABLE IF EXISTS " + name + "; CREATE TABLE " + name +
            " (id int8 PRIMARY KEY, name text, region_id int8, segment text, note text);"
            "INSERT INTO " +
            name +
            " SELECT g, 'customer-' || g, (g * 7919) % 10000 + 1,"
            " (ARRAY['retail','smb','enterprise'])[g % 3 + 1], md5(g::text) || md5((g + 1)::text)"
            " FROM generate_series(1::int8, " +
            std::to_string(rows) + ") g; GRANT SELECT ON " + name + " TO reader");
  pg_->Exec("VACUUM ANALYZE " + name);
}

std::string BaselineSql(const Scale& s, bool postgres) {
  const std::string c = std::to_string(s.customers), o = std::to_string(s.orders),
                    r = std::to_string(s.regions);
  auto series = [&](const std::string& n) {
    return postgres ? " FROM generate_series(1::int8, " + n + ") AS g(x)"
                    : " FROM (WITH RECURSIVE g(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM g "
                      "WHERE x < " +
                          n + ") SELECT x FROM g)";
  };
  const std::string int_t = postgres ? "int8" : "INTEGER";
  const std::string real_t = postgres ? "float8" : "REAL";
  const std::string amount =
      postgres ? "((x * 37) % 10000) / 100.0::float8" : "((x * 37) % 10000) / 100.0";
  std::string sql;
  sql += "CREATE TABLE customers (id " + int_t + (postgres ? " PRIMARY KEY" : "") +
         ", name TEXT, region_id " + int_t + ", segment TEXT);\n";
  sql += "INSERT INTO customers SELECT x, 'customer-' || x, (x * 7919) % " + r +
         " + 1, CASE x % 3 WHEN 0 THEN 'retail' WHEN 1 THEN 'smb' ELSE 'enterprise' END" +
         series(c) + ";\n";
  sql += "CREATE TABLE orders (_id " + int_t + ", order_id " + int_t + ", customer_id " + int_t +
         ", amount " + real_t + ", status TEXT);\n";
  sql += "INSERT INTO orders SELECT x, x, (x * 104729) % " + c + " + 1, " + amount +
         ", CASE x % 4 WHEN 0 THEN 'open' WHEN 1 THEN 'paid' WHEN 2 THEN 'shipped' ELSE "
         "'returned' END" +
         series(o) + ";\n";
  // The same keys as the enclave's: customers' primary key (reported by the
  // connector) and regions' (declared in the configuration).
  sql += "CREATE TABLE regions (region_id " + int_t + (postgres ? " PRIMARY KEY" : "") +
         ", region TEXT, country TEXT);\n";
  sql +=
      "INSERT INTO regions SELECT x, 'region-' || (x % 50), CASE x % 8 WHEN 0 THEN 'GB' WHEN 1 "
      "THEN 'US' WHEN 2 THEN 'NL' WHEN 3 THEN 'DE' WHEN 4 THEN 'FR' WHEN 5 THEN 'JP' WHEN 6 "
      "THEN 'BR' ELSE 'IN' END" +
      series(r) + ";\n";
  if (postgres) sql += "ANALYZE customers; ANALYZE orders; ANALYZE regions;\n";
  return sql;
}

json KernelConfig(Sources& sources, const Scale& s, const std::string& dir,
                  const test::TestPki& pki, const KernelOptions& o) {
  using test::PluginPath;
  json rule = {{"name", "analysts"},
               {"effect", "allow"},
               {"subjects", {{"groups", {"analysts"}}}},
               {"datasets", {"*"}}};
  if (!o.auto_approve) rule["approval"] = {{"groups", {"owners"}}, {"count", 1}};
  json tunnel_tls = {{"certificate_file", pki.server.cert_file},
                     {"private_key_file", pki.server.key_file}};
  // Every load user connects from 127.0.0.1 with the one grant, so the
  // per-address and per-endpoint budgets are raised with the rest: what
  // saturates is the system, not a configured cap.
  json tunnel_config = {{"listen_address", "127.0.0.1"},
                        {"port", 0},
                        {"public_host", "127.0.0.1"},
                        {"tls", tunnel_tls},
                        {"max_connections", o.max_users + 64},
                        {"max_preauth_connections", o.max_users},
                        {"max_preauth_connections_per_address", o.max_users},
                        {"max_connections_per_endpoint", o.max_users + 64}};
  if (o.tunnel == "https") {
    tunnel_config["rate_limit_per_minute"] = 0;
    tunnel_config["max_concurrent_queries"] = 1024;
  }
  json isolator = {{"name", o.isolator}, {"plugin", PluginPath("airlock_isolator_" + o.isolator)}};
  if (o.isolator == "process") {
    isolator["config"] = {{"state_dir", dir + "/enclaves"},
                          {"min_isolation", {"network_namespace", "pid_namespace"}}};
  }
  const std::string pg_endpoint = "127.0.0.1:" + std::to_string(sources.pg().port());
  const std::string mongo_endpoint = "127.0.0.1:" + std::to_string(sources.mongo().port());
  json server = {{"listen_address", "127.0.0.1"}, {"port", 0}};
  if (o.api_tls) {
    server["tls"] = {{"certificate_file", pki.server.cert_file},
                     {"private_key_file", pki.server.key_file}};
  }
  return {{"server", server},
          {"state_dir", dir + "/state"},
          {"identity", test::AliceAndBobIdentity(kRequesterToken, kApproverToken)},
          {"policy", test::RulesPolicyRef({{"version", 1}, {"rules", {rule}}})},
          {"isolator", isolator},
          {"tunnel",
           {{"name", o.tunnel},
            {"plugin", PluginPath("airlock_tunnel_" + o.tunnel)},
            {"config", tunnel_config}}},
          {"connectors",
           {{"pg",
             {{"plugin", PluginPath("airlock_connector_postgres")},
              {"egress", {pg_endpoint}},
              {"config",
               {{"host", "127.0.0.1"},
                {"port", sources.pg().port()},
                {"database", "postgres"},
                {"user", "reader"},
                {"password", "env:AIRLOCK_BENCH_PG_PASSWORD"},
                {"sslmode", "verify-ca"},
                {"ca_file", sources.pg_ca_file()},
                {"datasets", {{{"name", "customers"}, {"table", "public.customers_" + s.tag}}}}}}}},
            {"mongo",
             {{"plugin", PluginPath("airlock_connector_mongodb")},
              {"egress", {mongo_endpoint}},
              {"config",
               {{"uri", sources.mongo().uri()},
                {"database", "shop"},
                {"datasets", {{{"name", "orders"}, {"collection", "orders_" + s.tag}}}}}}}},
            {"files",
             {{"plugin", PluginPath("airlock_connector_files")},
              {"config", {{"root", sources.dir() + "/data"}}}}}}},
          {"datasets",
           {{{"name", "customers"}, {"connector", "pg"}, {"object", "customers"}},
            {{"name", "orders"}, {"connector", "mongo"}, {"object", "orders"}},
            // A file reports no key; the operator declares the one it has.
            {{"name", "regions"},
             {"connector", "files"},
             {"object", "regions_" + s.tag + ".csv"},
             {"key", {"region_id"}}}}}};
}

json PostgresOnlyKernelConfig(Sources& sources,
                              const std::vector<std::pair<std::string, std::string>>& datasets,
                              const std::string& dir, const test::TestPki& pki,
                              const KernelOptions& o, int64_t enclave_memory_bytes) {
  json config = KernelConfig(sources, Scale{}, dir, pki, o);
  json pg_datasets = json::array();
  json catalog = json::array();
  for (const auto& [name, table] : datasets) {
    pg_datasets.push_back({{"name", name}, {"table", "public." + table}});
    catalog.push_back({{"name", name}, {"connector", "pg"}, {"object", name}});
  }
  json pg = config["connectors"]["pg"];
  pg["config"]["datasets"] = pg_datasets;
  config["connectors"] = json{{"pg", pg}};
  config["datasets"] = catalog;
  config["catalog"] = json{{"describe", false}};
  if (enclave_memory_bytes > 0) {
    config["limits"] = json{{"enclave_memory_bytes", enclave_memory_bytes}};
  }
  return config;
}

double ParseAuditTs(const std::string& ts) {
  struct tm t {};
  int micros = 0;
  if (std::sscanf(ts.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%6dZ", &t.tm_year, &t.tm_mon, &t.tm_mday,
                  &t.tm_hour, &t.tm_min, &t.tm_sec, &micros) != 7) {
    return 0;
  }
  t.tm_year -= 1900;
  t.tm_mon -= 1;
  return static_cast<double>(timegm(&t)) + micros / 1e6;
}

double NowEpochSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

Api::Api(uint16_t port, const std::string& ca_file)
    : http_("127.0.0.1", port,
            ca_file.empty() ? std::optional<test::ClientTls>()
                            : std::optional<test::ClientTls>(test::ClientTls{ca_file, "", ""})) {}

std::string Api::Create(std::string* error) {
  return Create({"customers", "orders", "regions"}, error);
}

std::string Api::Create(const std::vector<std::string>& datasets, std::string* error) {
  const json body = {
      {"datasets", datasets}, {"purpose", "end-to-end benchmark"}, {"window_seconds", 3600}};
  auto r = http_.Post("/v1/requests", body.dump(), Auth(kRequesterToken));
  if (r.status != 201) {
    *error = "create: " + Describe(r);
    return "";
  }
  return r.json().value("id", "");
}

bool Api::Approve(const std::string& id, std::string* error) {
  auto r = http_.Post("/v1/requests/" + id + "/approve", "{}", Auth(kApproverToken));
  if (r.status != 200) *error = "approve: " + Describe(r);
  return r.status == 200;
}

bool Api::WaitReady(const std::string& id, double timeout_s, int poll_ms, std::string* error) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  std::string state;
  json doc;
  while (std::chrono::steady_clock::now() < deadline) {
    doc = http_.Get("/v1/requests/" + id, Auth(kRequesterToken)).json();
    state = doc.is_object() ? doc.value("state", "") : "";
    if (state == "ready") return true;
    if (state == "failed" || state == "denied" || state == "closed") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(poll_ms));
  }
  *error =
      "request " + id + " is " + state + ": " + (doc.is_object() ? doc.value("reason", "") : "");
  return false;
}

bool Api::Credentials(const std::string& id, Grant* grant, std::string* error) {
  auto r = http_.Post("/v1/requests/" + id + "/credentials", "", Auth(kRequesterToken));
  if (r.status != 200) {
    *error = "credentials: " + Describe(r);
    return false;
  }
  grant->id = id;
  grant->raw = r.json();
  grant->url = grant->raw.value("url", "");
  grant->credential = grant->raw.value("credential", "");
  return true;
}

void Api::Revoke(const std::string& id) {
  (void)http_.Post("/v1/requests/" + id + "/revoke", "{}", Auth(kRequesterToken));
}

json Api::Audit(const std::string& id) {
  return http_.Get("/v1/audit?request=" + id, Auth(kRequesterToken)).json();
}

json Api::Get(const std::string& id) {
  return http_.Get("/v1/requests/" + id, Auth(kRequesterToken)).json();
}

struct TunnelClient::Impl {
  std::string transport;
  std::string prefix;
  std::string credential;
  std::unique_ptr<test::HttpClient> http;
  PGconn* pg = nullptr;
  std::string pg_conninfo;
  ~Impl() {
    if (pg != nullptr) PQfinish(pg);
  }
};

TunnelClient::TunnelClient(const Grant& grant, const std::string& transport,
                           const std::string& ca_file)
    : impl_(std::make_unique<Impl>()) {
  impl_->transport = transport;
  impl_->credential = grant.credential;
  if (transport == "https") {
    const test::TunnelTarget t = test::ParseTunnelUrl(grant.url);
    impl_->prefix = t.prefix;
    impl_->http =
        std::make_unique<test::HttpClient>(t.host, t.port, test::ClientTls{ca_file, "", ""});
    impl_->http->set_timeout(std::chrono::seconds(300));
  } else {
    impl_->pg_conninfo = "host=" + grant.raw.value("host", "127.0.0.1") +
                         " port=" + std::to_string(grant.raw.value("port", 0)) +
                         " user=" + grant.raw.value("user", "") +
                         " dbname=" + grant.raw.value("database", "") +
                         " password=" + grant.credential + " sslmode=require gssencmode=disable";
  }
}

TunnelClient::~TunnelClient() = default;

bool TunnelClient::Query(const std::string& sql, int64_t* rows, json* all_rows,
                         std::string* error) {
  if (impl_->transport == "https") {
    auto r = impl_->http->Post(
        impl_->prefix + "/query", json{{"sql", sql}}.dump(),
        {{"Authorization", "Bearer " + impl_->credential}, {"Content-Type", "application/json"}});
    if (r.status != 200) {
      *error = Describe(r);
      return false;
    }
    const json doc = r.json();
    if (!doc.is_object() || doc.contains("error") || !doc.contains("rows")) {
      *error = "bad body: " + r.body.substr(0, 300);
      return false;
    }
    *rows = static_cast<int64_t>(doc["rows"].size());
    if (all_rows != nullptr) *all_rows = NormalizedRows(doc["rows"]);
    return true;
  }
  if (impl_->pg == nullptr || PQstatus(impl_->pg) != CONNECTION_OK) {
    if (impl_->pg != nullptr) PQfinish(impl_->pg);
    impl_->pg = PQconnectdb(impl_->pg_conninfo.c_str());
    if (PQstatus(impl_->pg) != CONNECTION_OK) {
      *error = PQerrorMessage(impl_->pg);
      return false;
    }
  }
  PGresult* res = PQexec(impl_->pg, sql.c_str());
  const bool ok = PQresultStatus(res) == PGRES_TUPLES_OK;
  if (!ok) {
    *error = PQresultErrorMessage(res);
  } else {
    *rows = PQntuples(res);
    if (all_rows != nullptr) *all_rows = NormalizedRows(res);
  }
  PQclear(res);
  return ok;
}

namespace {
int ParentOf(int pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("PPid:", 0) == 0) return std::atoi(line.c_str() + 5);
  }
  return 0;
}
bool Descends(int pid, int ancestor) {
  for (int i = 0; i < 64 && pid > 1; ++i) {
    pid = ParentOf(pid);
    if (pid == ancestor) return true;
  }
  return false;
}
}  // namespace

std::vector<int> EnclavePids(int kernel_pid) {
  std::vector<int> pids;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream comm(entry.path() / "comm");
    std::string c;
    std::getline(comm, c);
    if (c == "airlock-enclave" && Descends(std::atoi(name.c_str()), kernel_pid)) {
      pids.push_back(std::atoi(name.c_str()));
    }
  }
  return pids;
}

int64_t ProcessMemory(int pid, const char* field) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  const std::string key = std::string(field) + ":";
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(key, 0) == 0) return std::atoll(line.c_str() + key.size()) * 1024;
  }
  return 0;
}

int64_t EnclavePeakRss(int kernel_pid) {
  int64_t peak = 0;
  for (int pid : EnclavePids(kernel_pid)) peak = std::max(peak, ProcessMemory(pid, "VmHWM"));
  return peak;
}

}  // namespace airlock::bench
