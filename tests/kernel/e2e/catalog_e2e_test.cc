// The catalog completed by the connectors: a real airlockd has its files
// connector describe the datasets in an enclave at start (nothing pulled),
// shows the columns in GET /v1/catalog with where they came from, keeps the
// columns an operator configured, names a dataset that could not be
// described, audits the describe, and describes again at a reload.
#include <chrono>
#include <fstream>
#include <map>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/kernel/e2e/kernel_process.h"
#include "tests/support/http_client.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

namespace airlock::test {
namespace {

using nlohmann::json;

constexpr const char* kAlice = "alk_catalog_alice_token_1";
constexpr const char* kBob = "alk_catalog_bob_token_2";

std::map<std::string, json> ByName(const json& catalog) {
  std::map<std::string, json> by_name;
  for (const json& d : catalog.value("datasets", json::array())) by_name[d["name"]] = d;
  return by_name;
}

// Polls the catalog until `ready` says so (or 30 s).
std::map<std::string, json> WaitForCatalog(
    HttpClient& api, const std::function<bool(std::map<std::string, json>&)>& ready) {
  std::map<std::string, json> datasets;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    auto answer = api.Get("/v1/catalog", Auth(kAlice));
    EXPECT_EQ(answer.status, 200u) << answer.body;
    datasets = ByName(answer.json());
    if (ready(datasets)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return datasets;
}

TEST(CatalogE2E, TheConnectorsDescribeTheDatasetsTheOperatorDidNotSpellOut) {
  TempDir dir("airlock-catalog-");
  const TestPki pki = GenerateTestPki(dir.path());
  json config = OrdersKernelConfig(dir.path(), pki, AliceAndBobIdentity(kAlice, kBob));
  std::ofstream(dir.path() + "/data/customers.csv") << "id,name,email\n1,Ada,a@x\n";
  config["datasets"].push_back({{"name", "customers"},
                                {"connector", "files"},
                                {"object", "customers.csv"},
                                {"description", "Who buys"},
                                {"columns", {{{"name", "id"}, {"type", "int64"}}}},
                                {"key", {"id"}}});
  config["datasets"].push_back(
      {{"name", "missing"}, {"connector", "files"}, {"object", "missing.csv"}});
  config["access"] = {{"admin_groups", {"owners"}}};
  KernelProcess kernel(dir.path(), config);
  ASSERT_TRUE(kernel.Start()) << kernel.log();
  HttpClient api("127.0.0.1", kernel.port());

  auto datasets = WaitForCatalog(api, [](auto& d) {
    return d["orders"]["schema"].value("source", "") == "connector" &&
           d["missing"]["schema"].contains("error");
  });
  // orders: no columns configured, the connector's.
  EXPECT_EQ(datasets["orders"]["columns"],
            json::parse(R"([{"name":"order_id","type":"int64"},{"name":"amount","type":"int64"}])"))
      << datasets["orders"].dump();
  EXPECT_GT(datasets["orders"]["schema"].value("described_at_us", int64_t{0}), 0);
  EXPECT_FALSE(datasets["orders"].contains("object")) << "where the data lives stays hidden";
  // customers: what the operator configured stays, though the file has more.
  EXPECT_EQ(datasets["customers"]["schema"].value("source", ""), "configuration");
  EXPECT_EQ(datasets["customers"]["columns"], json::parse(R"([{"name":"id","type":"int64"}])"));
  EXPECT_EQ(datasets["customers"].value("description", ""), "Who buys");
  // The declared key is shown; a dataset without one has none.
  EXPECT_EQ(datasets["customers"]["key"], json({"id"})) << datasets["customers"].dump();
  EXPECT_FALSE(datasets["orders"].contains("key")) << datasets["orders"].dump();
  // missing: named, with the reason; still listed.
  EXPECT_EQ(datasets["missing"]["schema"].value("source", ""), "none");
  EXPECT_NE(datasets["missing"]["schema"].value("error", "").find("missing.csv"), std::string::npos)
      << datasets["missing"].dump();

  // Audited; nothing pulled, and the kernel serves on.
  auto audit = api.Get("/v1/audit?event=catalog.described", Auth(kBob));
  ASSERT_EQ(audit.status, 200u) << audit.body;
  const json records = audit.json().value("records", json::array());
  ASSERT_EQ(records.size(), 1u) << audit.body;
  EXPECT_EQ(records[0].value("outcome", ""), "partial");
  EXPECT_EQ(records[0]["described"], json({"customers", "orders"}));
  EXPECT_TRUE(records[0]["errors"].contains("missing"));
  EXPECT_EQ(api.Get("/v1/audit?event=enclave.pull_started", Auth(kBob)).json()["records"].size(),
            0u);
  EXPECT_EQ(
      api.Post("/v1/requests", R"({"datasets":["orders"],"purpose":"after"})", Auth(kAlice)).status,
      201u);

  // The source changes; a reload describes it again.
  std::ofstream(dir.path() + "/data/orders.csv") << "order_id,amount,region\n1,10,eu\n";
  std::ofstream(dir.path() + "/data/missing.csv") << "x\n1\n";
  ASSERT_EQ(api.Post("/v1/admin/policy/reload", "{}", Auth(kBob)).status, 200u);
  datasets = WaitForCatalog(api, [](auto& d) { return d["orders"]["columns"].size() == 3; });
  EXPECT_EQ(datasets["orders"]["columns"][2], json({{"name", "region"}, {"type", "utf8"}}));
  EXPECT_EQ(datasets["missing"]["schema"].value("source", ""), "connector");
  EXPECT_FALSE(datasets["missing"]["schema"].contains("error"));
}

TEST(CatalogE2E, DescribingCanBeTurnedOff) {
  TempDir dir("airlock-catalog-off-");
  const TestPki pki = GenerateTestPki(dir.path());
  json config = OrdersKernelConfig(dir.path(), pki, AliceAndBobIdentity(kAlice, kBob));
  config["catalog"] = {{"describe", false}};
  KernelProcess kernel(dir.path(), config);
  ASSERT_TRUE(kernel.Start()) << kernel.log();
  HttpClient api("127.0.0.1", kernel.port());
  std::this_thread::sleep_for(std::chrono::seconds(1));
  auto datasets = ByName(api.Get("/v1/catalog", Auth(kAlice)).json());
  EXPECT_EQ(datasets["orders"]["schema"].value("source", ""), "none");
  EXPECT_TRUE(datasets["orders"]["columns"].empty());
}

}  // namespace
}  // namespace airlock::test
