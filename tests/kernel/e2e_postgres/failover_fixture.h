// Two real airlockd replicas on one PostgreSQL database (created per test),
// with quick leases, and what the failover and peer-link suites do with them.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/kernel/e2e/kernel_process.h"
#include "tests/kernel/e2e_postgres/pg_kernel_support.h"
#include "tests/support/http_client.h"
#include "tests/support/postgres/pg_cluster.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

namespace airlock::test {

using json = nlohmann::json;

// Two replicas on one database, quick leases; the request is made and
// approved on the first, which therefore owns its enclave.
class FailoverTest : public ::testing::Test {
 protected:
  // What a suite changes in replica `index`'s configuration and process.
  virtual void Prepare(int /*index*/, json& /*config*/, const std::string& /*dir*/) {}
  virtual void Prepare(int /*index*/, KernelProcess& /*kernel*/) {}
  // True when the replicas are configured with the peer link (state.peer).
  virtual bool PeerLinked() const { return false; }

  void SetUp() override {
    PgCluster& pg = PgCluster::Shared();
    CreateKernelRole(pg);
    database_ = "airlock_failover_" + std::to_string(++databases_);
    pg.Exec("CREATE DATABASE " + database_ + " OWNER airlock_kernel");
    for (int i = 0; i < 2; ++i) {
      dirs_.push_back(std::make_unique<TempDir>("airlock-pg-failover-"));
      const std::string& dir = dirs_.back()->path();
      pkis_.push_back(GenerateTestPki(dir));
      WriteDsn(dir, pg, database_);
      json config = PgKernelConfig(dir, pkis_.back(), pg);
      // Leases long enough that beats delayed on a loaded machine do not
      // lose them, short enough for quick takeovers.
      config["state"]["heartbeat_interval_ms"] = 250;
      config["state"]["lease_ttl_ms"] = 3000;
      config["access"]["admin_groups"] = {"owners"};
      Prepare(i, config, dir);
      kernels_.push_back(std::make_unique<KernelProcess>(dir, config));
      Prepare(i, *kernels_.back());
    }
    std::string out;
    ASSERT_EQ(RunAirlockd({"state", "migrate", "--config", kernels_[0]->config_path()}, &out), 0)
        << out;
    for (auto& kernel : kernels_) ASSERT_TRUE(kernel->Start()) << kernel->log();
  }

  KernelProcess& a() { return *kernels_[0]; }
  KernelProcess& b() { return *kernels_[1]; }

  std::string ReplicaId(KernelProcess& kernel) {
    HttpClient client("127.0.0.1", kernel.port());
    return client.Get("/v1/cluster", Auth(kPgBob)).json().value("replica", "");
  }

  json Get(KernelProcess& kernel, const std::string& id) {
    HttpClient client("127.0.0.1", kernel.port());
    return client.Get("/v1/requests/" + id, Auth(kPgAlice)).json();
  }

  // Polls `kernel` until the request is ready under `owner`.
  json WaitReadyOn(KernelProcess& kernel, const std::string& id, const std::string& owner,
                   std::chrono::seconds timeout) {
    json view;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      view = Get(kernel, id);
      if (view.value("state", "") == "ready" &&
          view["enclave"].value("owner", std::string()) == owner) {
        return view;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return view;
  }

  // A request made and approved on A, ready there; its grant.
  std::string ReadyOnA(json* grant) {
    HttpClient client("127.0.0.1", a().port());
    const json ask = {{"datasets", {"orders"}}, {"window_seconds", 600}, {"purpose", "failover"}};
    auto created = client.Post("/v1/requests", ask.dump(), Auth(kPgAlice));
    EXPECT_EQ(created.status, 201u) << created.body;
    const std::string id = created.json().value("id", "");
    EXPECT_EQ(client.Post("/v1/requests/" + id + "/approve", "{}", Auth(kPgBob)).status, 200u);
    const json view = WaitReadyOn(a(), id, ReplicaId(a()), std::chrono::seconds(30));
    EXPECT_EQ(view.value("state", ""), "ready") << view.dump();
    if (!PeerLinked()) {
      // Only the replica serving the request holds its credential, and
      // without the peer link another one says where that is.
      HttpClient other("127.0.0.1", b().port());
      auto elsewhere = other.Post("/v1/requests/" + id + "/credentials", "", Auth(kPgAlice));
      EXPECT_EQ(elsewhere.status, 409u) << elsewhere.body;
      EXPECT_NE(elsewhere.body.find("http://127.0.0.1:" + std::to_string(a().port())),
                std::string::npos)
          << elsewhere.body;
    }
    // Linked replicas hand it out through any of them: through B here.
    HttpClient collector("127.0.0.1", PeerLinked() ? b().port() : a().port());
    auto collected = collector.Post("/v1/requests/" + id + "/credentials", "", Auth(kPgAlice));
    EXPECT_EQ(collected.status, 200u) << collected.body;
    *grant = collected.json();
    return id;
  }

  // Runs the sum of the orders' amounts (of `table`) through the grant's
  // tunnel, checking the sum when answered; its HTTP status.
  unsigned Query(const json& grant, const TestPki& pki, const std::string& table = "orders") {
    const TunnelTarget target = ParseTunnelUrl(grant.value("url", ""));
    HttpClient tunnel(target.host, target.port, ClientTls{pki.ca.cert_file, "", ""});
    auto rows = tunnel.Post(target.prefix + "/query",
                            json{{"sql", "SELECT SUM(amount) FROM " + table}}.dump(),
                            {{"Authorization", "Bearer " + grant.value("credential", "")},
                             {"Content-Type", "application/json"}});
    if (rows.status == 200) EXPECT_DOUBLE_EQ(rows.json()["rows"][0][0].get<double>(), 127.75);
    return rows.status;
  }

  // The port `kernel`'s HTTPS tunnel listens on (from its start-up log).
  static uint16_t TunnelPort(KernelProcess& kernel) {
    static const std::regex kListening(R"(tunnel listening on https://127\.0\.0\.1:(\d+))");
    std::smatch match;
    const std::string log = kernel.log();
    if (!std::regex_search(log, match, kListening)) return 0;
    return static_cast<uint16_t>(std::stoi(match[1].str()));
  }

  // `grant` pointed at `kernel`'s tunnel instead of the owner's.
  static json Through(json grant, KernelProcess& kernel, const std::string& id) {
    grant["url"] = "https://127.0.0.1:" + std::to_string(TunnelPort(kernel)) + "/t/" + id;
    return grant;
  }

  std::vector<json> AuditOf(const std::string& id) {
    std::vector<json> events;
    for (const auto& row : PgCluster::Shared().Query(
             "SELECT line FROM audit_records WHERE request_id = '" + id + "' ORDER BY seq",
             database_)) {
      events.push_back(json::parse(row.at(0).value_or("{}")));
    }
    return events;
  }

  static inline int databases_ = 0;
  std::string database_;
  std::vector<std::unique_ptr<TempDir>> dirs_;
  std::vector<TestPki> pkis_;
  std::vector<std::unique_ptr<KernelProcess>> kernels_;
};

}  // namespace airlock::test
