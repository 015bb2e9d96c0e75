// A whole kernel (a real airlockd process) with the kubernetes isolator, on
// the Kubernetes API server stand-in of fake_cluster.h (no real API server
// can run here; the stand-in speaks the REST protocol and its kubelet runs
// the pod's command as a local process). The enclave dials the kernel's
// enclave link over mutual TLS as it would from a pod, and pulls from two
// real sources itself: a PostgreSQL 15 cluster (password from a Kubernetes
// Secret the kernel never reads) and a MongoDB wire-protocol test double
// (no MongoDB server is packaged here). Ask -> approve -> ingest -> seal ->
// query -> window end, with the pod spec the isolator sent checked field by
// field.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "tests/kernel/e2e/kernel_process.h"
#include "tests/plugins/isolators/kubernetes/fake_cluster.h"
#include "tests/support/http_client.h"
#include "tests/support/mongodb/mongo_test_server.h"
#include "tests/support/postgres/pg_cluster.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

namespace airlock::test {
namespace {

using nlohmann::json;
using testing::mongodb::MongoTestServer;

constexpr const char* kAlice = "alk_kube_alice_token";
constexpr const char* kBob = "alk_kube_bob_token";
constexpr const char* kPgPassword = "pg-reader-secret-kube-51c2";
constexpr const char* kNamespace = "airlock-enclaves";

json FindRequest(const json& requests, const std::string& method, const std::string& path_part) {
  for (const auto& r : requests) {
    if (r.value("method", "") == method &&
        r.value("path", "").find(path_part) != std::string::npos && r.value("status", 0) < 300) {
      return r;
    }
  }
  return nullptr;
}

TEST(KubernetesKernel, ARequestLivesItsWholeLifeInAPodThatDialsTheKernel) {
  TempDir dir("airlock-kube-e2e-");
  const TestPki pki = GenerateTestPki(dir.path());
  FakeCluster cluster;

  auto pg = PgCluster::Start();
  pg->Exec(std::string("CREATE ROLE reader LOGIN PASSWORD '") + kPgPassword +
           "';"
           "CREATE TABLE customers (id int8 PRIMARY KEY, name text, country text);"
           "INSERT INTO customers VALUES (1, 'Ada', 'GB'), (2, 'Grace', 'US'), (3, 'Edsger', 'NL');"
           "GRANT SELECT ON customers TO reader;");
  const std::string ca_file = dir.path() + "/pg-ca.crt";
  std::filesystem::copy_file(pg->ca_file(), ca_file);
  auto mongo = MongoTestServer::Start();
  ASSERT_NE(mongo, nullptr);
  ASSERT_TRUE(mongo->InsertJson(
      "shop", "orders",
      {R"({"order_id": 10, "customer_id": {"$numberLong": "1"}, "amount": 100.5})",
       R"({"order_id": 11, "customer_id": {"$numberLong": "2"}, "amount": 7.25})"}));

  // The source's password lives in a Kubernetes Secret only.
  auto secret = cluster.Api("POST", std::string("/api/v1/namespaces/") + kNamespace + "/secrets",
                            {{"apiVersion", "v1"},
                             {"kind", "Secret"},
                             {"metadata", {{"name", "pg-credentials"}}},
                             {"stringData", {{"password", kPgPassword}}}});
  ASSERT_EQ(secret.first, 201u) << secret.second.dump();
  ASSERT_EQ(std::getenv("AIRLOCK_TEST_PG_PASSWORD"), nullptr);

  const std::string enclave = std::string(AIRLOCK_BINARY_DIR) + "/bin/airlock-enclave";
  json policy = AnalystsPolicy({"*"});
  json config = {
      {"server", {{"listen_address", "127.0.0.1"}, {"port", 0}}},
      {"state_dir", dir.path() + "/state"},
      {"identity", AliceAndBobIdentity(kAlice, kBob)},
      {"policy", RulesPolicyRef(policy)},
      {"isolator",
       {{"name", "kubernetes"},
        {"plugin", PluginPath("airlock_isolator_kubernetes")},
        {"config",
         {{"cluster", cluster.ClusterConfig()},
          {"namespace", kNamespace},
          {"image", "registry.example/airlock-enclave:1.0"},
          {"enclave_command", {enclave}},
          {"kernel_id", "kernel-e2e"},
          {"runtime_class", "gvisor"},
          {"link", {{"listen_address", "127.0.0.1"}, {"port", 0}, {"advertise_host", "127.0.0.1"}}},
          {"secrets",
           {{"AIRLOCK_TEST_PG_PASSWORD", {{"secret", "pg-credentials"}, {"key", "password"}}}}},
          {"mounts", {{ca_file, {{"config_map", "pg-ca"}, {"key", "ca.crt"}}}}},
          // The connector plugins are files of the enclave image.
          {"image_paths", {std::string(AIRLOCK_PLUGIN_DIR)}},
          {"provision_timeout_ms", 30000}}}}},
      {"tunnel", HttpsTunnelRef(pki)},
      {"catalog", {{"describe", false}}},
      {"connectors",
       {{"pg", PostgresConnectorRef(pg->port(), ca_file, "env:AIRLOCK_TEST_PG_PASSWORD",
                                    {{{"name", "customers"}, {"table", "public.customers"}}})},
        {"mongo", MongoConnectorRef(mongo->uri(), mongo->port(), "shop",
                                    {{{"name", "orders"}, {"collection", "orders"}}})}}},
      {"datasets",
       {{{"name", "customers"}, {"connector", "pg"}, {"object", "customers"}},
        {{"name", "orders"}, {"connector", "mongo"}, {"object", "orders"}}}}};

  KernelProcess kernel(dir.path(), config);
  ASSERT_TRUE(kernel.Start()) << kernel.log();
  HttpClient api("127.0.0.1", kernel.port());
  auto created = api.Post(
      "/v1/requests",
      json{{"datasets", {"customers", "orders"}}, {"purpose", "revenue"}, {"window_seconds", 4}}
          .dump(),
      Auth(kAlice));
  ASSERT_EQ(created.status, 201u) << created.body;
  const std::string id = created.json().value("id", "");
  ASSERT_EQ(api.Post("/v1/requests/" + id + "/approve", "{}", Auth(kBob)).status, 200u);
  ASSERT_EQ(WaitForRequestState(api, id, Auth(kAlice), "ready"), "ready")
      << api.Get("/v1/requests/" + id, Auth(kAlice)).body << kernel.log();

  auto grant = api.Post("/v1/requests/" + id + "/credentials", "", Auth(kAlice));
  ASSERT_EQ(grant.status, 200u) << grant.body;
  const TunnelTarget target = ParseTunnelUrl(grant.json().value("url", ""));
  HttpClient tunnel(target.host, target.port, ClientTls{pki.ca.cert_file, "", ""});
  auto answer = tunnel.Post(
      target.prefix + "/query",
      json{{"sql",
            "SELECT c.name, o.amount FROM customers c JOIN orders o ON o.customer_id = c.id "
            "ORDER BY c.id"}}
          .dump(),
      {{"Authorization", "Bearer " + grant.json().value("credential", "")},
       {"Content-Type", "application/json"}});
  ASSERT_EQ(answer.status, 200u) << answer.body;
  EXPECT_EQ(answer.json()["rows"], json::parse(R"([["Ada",100.5],["Grace",7.25]])")) << answer.body;

  // What the isolator asked of the cluster, field by field.
  const json requests = cluster.Requests();
  const json pod_post = FindRequest(requests, "POST", "/pods");
  ASSERT_FALSE(pod_post.is_null()) << requests.dump(1);
  const json& pod = pod_post["body"];
  const std::string pod_name = pod["metadata"]["name"];
  EXPECT_EQ(pod["metadata"]["annotations"]["airlock.dev/request-id"], id);
  EXPECT_EQ(pod["metadata"]["labels"]["airlock.dev/kernel"], "kernel-e2e");
  const json& spec = pod["spec"];
  EXPECT_EQ(spec["runtimeClassName"], "gvisor");
  EXPECT_EQ(spec["automountServiceAccountToken"], false);
  EXPECT_EQ(spec["restartPolicy"], "Never");
  // The cluster ends it by itself at the longest window plus slack.
  EXPECT_GE(spec["activeDeadlineSeconds"].get<int64_t>(), 86400);
  const json& container = spec["containers"][0];
  EXPECT_EQ(container["image"], "registry.example/airlock-enclave:1.0");
  EXPECT_EQ(container["securityContext"]["readOnlyRootFilesystem"], true);
  EXPECT_EQ(container["securityContext"]["allowPrivilegeEscalation"], false);
  EXPECT_EQ(container["securityContext"]["capabilities"]["drop"], json({"ALL"}));
  EXPECT_EQ(container["env"], json::parse(R"([{"name":"AIRLOCK_TEST_PG_PASSWORD","valueFrom":
      {"secretKeyRef":{"name":"pg-credentials","key":"password"}}}])"));
  EXPECT_EQ(container["command"][1], "--dial");
  // The source's CA bundle, from a ConfigMap key at the path the connector reads.
  json ca_mount;
  for (const auto& m : container["volumeMounts"]) {
    if (m.value("mountPath", "") == ca_file) ca_mount = m;
  }
  ASSERT_FALSE(ca_mount.is_null()) << container["volumeMounts"].dump();
  EXPECT_EQ(ca_mount["subPath"], "ca.crt");
  EXPECT_EQ(ca_mount["readOnly"], true);
  json ca_volume;
  for (const auto& v : spec["volumes"]) {
    if (v.value("name", "") == ca_mount.value("name", "")) ca_volume = v;
  }
  EXPECT_EQ(ca_volume["configMap"]["name"], "pg-ca") << spec["volumes"].dump();
  const json policy_post = FindRequest(requests, "POST", "/networkpolicies");
  ASSERT_FALSE(policy_post.is_null());
  const json egress = policy_post["body"]["spec"]["egress"];
  ASSERT_EQ(egress.size(), 3u) << egress.dump(1) << " (both sources, the kernel, no DNS)";
  EXPECT_EQ(egress[0]["to"][0]["ipBlock"]["cidr"], "127.0.0.1/32");
  EXPECT_EQ(egress[0]["ports"][0]["port"], pg->port());
  EXPECT_EQ(egress[1]["ports"][0]["port"], mongo->port());
  EXPECT_EQ(egress[2]["to"][0]["ipBlock"]["cidr"], "127.0.0.1/32");
  // The password went nowhere near the kernel: in nothing it sent (only the
  // test's own request that made the Secret carries it).
  for (const auto& r : requests) {
    if (r["body"].is_object() && r["body"]["metadata"].value("name", "") == "pg-credentials") {
      continue;
    }
    EXPECT_EQ(r.dump().find(kPgPassword), std::string::npos) << r.value("path", "");
  }
  EXPECT_EQ(kernel.log().find(kPgPassword), std::string::npos);

  // Window end: the request closes and its pod and policy are gone. The
  // isolator deletes them one after another, the pod first, so wait for both
  // rather than only the pod.
  EXPECT_EQ(WaitForRequestState(api, id, Auth(kAlice), "closed"), "closed") << kernel.log();
  auto remaining = [&] {
    return cluster.Names("pods", kNamespace).size() +
           cluster.Names("networkpolicies", kNamespace).size();
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (remaining() != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(cluster.Names("pods", kNamespace).empty()) << pod_name << " outlived its window";
  EXPECT_TRUE(cluster.Names("networkpolicies", kNamespace).empty());
  EXPECT_NE(cluster.PodLog(kNamespace, pod_name).size(), 0u);
  EXPECT_EQ(kernel.Stop(), 0) << kernel.log();
}

// A kernel serving "orders" from a MongoDB wire-protocol test double through
// the kubernetes isolator with `image`.
json MongoKernelConfig(const std::string& dir, const TestPki& pki, const FakeCluster& cluster,
                       const MongoTestServer& mongo, const std::string& image) {
  json config = OrdersKernelConfig(dir, pki, AliceAndBobIdentity(kAlice, kBob));
  config["isolator"] = {
      {"name", "kubernetes"},
      {"plugin", PluginPath("airlock_isolator_kubernetes")},
      {"config",
       {{"cluster", cluster.ClusterConfig()},
        {"namespace", kNamespace},
        {"image", image},
        {"enclave_command", {std::string(AIRLOCK_BINARY_DIR) + "/bin/airlock-enclave"}},
        {"kernel_id", "kernel-e2e-mongo"},
        {"link", {{"listen_address", "127.0.0.1"}, {"port", 0}, {"advertise_host", "127.0.0.1"}}},
        {"image_paths", {std::string(AIRLOCK_PLUGIN_DIR)}}}}};
  config["catalog"] = {{"describe", false}};
  config["connectors"] = {
      {"mongo", MongoConnectorRef(mongo.uri(), mongo.port(), "shop",
                                  {{{"name", "orders"}, {"collection", "orders"}}})}};
  config["datasets"] = {{{"name", "orders"}, {"connector", "mongo"}, {"object", "orders"}}};
  return config;
}

std::string AskAndApprove(HttpClient& api) {
  auto created =
      api.Post("/v1/requests", R"({"datasets":["orders"],"purpose":"kube"})", Auth(kAlice));
  EXPECT_EQ(created.status, 201u) << created.body;
  const std::string id = created.json().value("id", "");
  EXPECT_EQ(api.Post("/v1/requests/" + id + "/approve", "{}", Auth(kBob)).status, 200u);
  return id;
}

TEST(KubernetesKernel, AnImageThatCannotBePulledFailsTheRequestWithKubernetesReason) {
  TempDir dir("airlock-kube-e2e-pull-");
  const TestPki pki = GenerateTestPki(dir.path());
  FakeCluster cluster;
  auto mongo = MongoTestServer::Start();
  ASSERT_NE(mongo, nullptr);
  KernelProcess kernel(dir.path(), MongoKernelConfig(dir.path(), pki, cluster, *mongo,
                                                     "registry.example/pull-fails:1.0"));
  ASSERT_TRUE(kernel.Start()) << kernel.log();
  HttpClient api("127.0.0.1", kernel.port());
  const std::string id = AskAndApprove(api);
  ASSERT_EQ(WaitForRequestState(api, id, Auth(kAlice), "failed"), "failed") << kernel.log();
  const std::string reason = api.Get("/v1/requests/" + id, Auth(kAlice)).json().value("reason", "");
  EXPECT_NE(reason.find("ImagePullBackOff: Back-off pulling image"), std::string::npos) << reason;
  EXPECT_TRUE(cluster.Names("pods", kNamespace).empty());
}

TEST(KubernetesKernel, AnEnclaveKilledForMemoryLeavesKubernetesReasonInTheAuditTrail) {
  TempDir dir("airlock-kube-e2e-oom-");
  const TestPki pki = GenerateTestPki(dir.path());
  FakeCluster cluster;
  auto mongo = MongoTestServer::Start();
  ASSERT_NE(mongo, nullptr);
  ASSERT_TRUE(mongo->InsertJson("shop", "orders", {R"({"order_id": 1, "amount": 2.5})"}));
  KernelProcess kernel(dir.path(), MongoKernelConfig(dir.path(), pki, cluster, *mongo,
                                                     "registry.example/airlock-enclave:1.0"));
  ASSERT_TRUE(kernel.Start()) << kernel.log();
  HttpClient api("127.0.0.1", kernel.port());
  const std::string id = AskAndApprove(api);
  ASSERT_EQ(WaitForRequestState(api, id, Auth(kAlice), "ready"), "ready") << kernel.log();
  const auto pods = cluster.Names("pods", kNamespace);
  ASSERT_EQ(pods.size(), 1u);
  // The container runs out of memory: killed, and reported OOMKilled.
  cluster.OomKill(kNamespace, pods[0]);
  // The request ends, and the audit trail says why in Kubernetes' words.
  json ended;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (ended.is_null() && std::chrono::steady_clock::now() < deadline) {
    auto audit = api.Get("/v1/audit?event=enclave.pod_ended&request=" + id, Auth(kBob));
    for (const auto& r : audit.json().value("records", json::array())) ended = r;
    if (ended.is_null()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_FALSE(ended.is_null()) << kernel.log();
  EXPECT_EQ(ended.value("reason", ""), "OOMKilled: exit code 137");
  EXPECT_EQ(ended.value("pod", ""), pods[0]);
  EXPECT_NE(api.Get("/v1/requests/" + id, Auth(kAlice)).json().value("state", ""), "ready");
}

}  // namespace
}  // namespace airlock::test
