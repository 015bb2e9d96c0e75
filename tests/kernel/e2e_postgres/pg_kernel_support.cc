#include "tests/kernel/e2e_postgres/pg_kernel_support.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <thread>

namespace airlock::test {

using nlohmann::json;

json PgKernelConfig(const std::string& dir, const TestPki& pki, const PgCluster& pg,
                    int approvals_needed) {
  std::filesystem::create_directories(dir + "/data");
  std::ofstream(dir + "/data/orders.csv")
      << "order_id,customer_id,amount\n10,1,100.5\n11,1,20\n12,2,7.25\n";
  json policy = {{"version", 1},
                 {"rules",
                  {{{"name", "analysts"},
                    {"effect", "allow"},
                    {"subjects", {{"groups", {"analysts"}}}},
                    {"datasets", {"orders"}},
                    {"approval", {{"groups", {"owners"}}, {"count", approvals_needed}}}}}}};
  json identity = {
      {{"name", "tokens"},
       {"plugin", PluginPath("airlock_identity_static_tokens")},
       {"config",
        {{"tokens",
          {TokenEntry(kPgAlice, "alice", "analysts"), TokenEntry(kPgBob, "bob", "owners"),
           TokenEntry(kPgCarol, "carol", "owners")}}}}}};
  return {
      {"server", {{"listen_address", "127.0.0.1"}, {"port", 0}}},
      {"state_dir", dir + "/state"},
      {"state",
       {{"backend", "postgres"},
        {"dsn_secret", "file:" + dir + "/state.dsn"},
        {"tls", {{"mode", "verify-full"}, {"ca_file", pg.ca_file()}}}}},
      {"identity", identity},
      {"policy", RulesPolicyRef(policy)},
      {"isolator", {{"name", "inprocess"}, {"plugin", PluginPath("airlock_isolator_inprocess")}}},
      {"tunnel", HttpsTunnelRef(pki)},
      {"connectors",
       {{"files",
         {{"plugin", PluginPath("airlock_connector_files")},
          {"config", {{"root", dir + "/data"}}}}}}},
      {"datasets", {{{"name", "orders"}, {"connector", "files"}, {"object", "orders.csv"}}}},
      {"access", {{"reviewer_groups", {"owners"}}}}};
}

void CreateKernelRole(PgCluster& pg) {
  pg.Exec(std::string("DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = "
                      "'airlock_kernel') THEN CREATE ROLE airlock_kernel LOGIN PASSWORD '") +
          kPgPassword + "'; END IF; END$$");
}

void WriteDsn(const std::string& dir, const PgCluster& pg, const std::string& database) {
  const std::string dsn_file = dir + "/state.dsn";
  std::ofstream(dsn_file) << "host=127.0.0.1 port=" << pg.port() << " dbname=" << database
                          << " user=airlock_kernel password=" << kPgPassword << "\n";
  ::chmod(dsn_file.c_str(), 0600);
}

ClientResponse WaitForStatus(uint16_t port, const std::string& path, unsigned status,
                             std::chrono::seconds timeout) {
  HttpClient client("127.0.0.1", port);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  ClientResponse last = client.Get(path);
  while (last.status != status && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    last = client.Get(path);
  }
  return last;
}

}  // namespace airlock::test
