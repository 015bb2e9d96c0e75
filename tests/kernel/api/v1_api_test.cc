// The v1 API fails closed: when the audit log cannot be written (here it is
// opened on /dev/full, a real device that answers every write with ENOSPC),
// health turns 503 and no state-changing call is accepted. On an HTTP I/O
// thread it answers only what cannot block and defers the rest.
#include "kernel/api/v1_api.h"

#include <gtest/gtest.h>

#include <openssl/evp.h>

#include "kernel/api/identity_chain.h"
#include "kernel/audit/audit_log.h"
#include "kernel/core/metrics.h"
#include "kernel/plugin_host/host_services.h"
#include "kernel/plugin_host/plugin_instances.h"
#include "kernel/plugin_host/plugin_loader.h"
#include "tests/support/temp_dir.h"

namespace airlock {
namespace {

using nlohmann::json;

class NullHost : public plugin_host::HostCallbacks {
 public:
  void Log(int32_t, std::string_view, std::string_view) override {}
  Status AuditEmit(std::string_view) override { return Status::Unavailable("no audit"); }
  int64_t NowMicros() override { return 0; }
  Result<Secret> ResolveSecret(std::string_view) override {
    return Status::PermissionDenied("no secrets");
  }
  Status EnclaveServe(int) override { return Status::NotImplemented("no enclaves"); }
  std::string EnclaveExecutable() override { return {}; }
};

std::string Sha256Hex(const std::string& s) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(s.data(), s.size(), digest, &length, EVP_sha256(), nullptr);
  std::string out;
  for (unsigned i = 0; i < length; ++i) {
    out += "0123456789abcdef"[digest[i] >> 4];
    out += "0123456789abcdef"[digest[i] & 15];
  }
  return out;
}

// The static-tokens provider, knowing the token "tok" as alice.
class StaticTokensChain {
 public:
  StaticTokensChain() : services_(callbacks_), loader_(services_.get()) {
    auto library =
        loader_.Load(std::string(AIRLOCK_PLUGIN_DIR) + "/airlock_identity_static_tokens.so",
                     std::nullopt, AIRLOCK_KIND_IDENTITY);
    EXPECT_TRUE(library.ok()) << library.status().ToString();
    if (!library.ok()) return;
    json config = {{"tokens",
                    {{{"sha256", Sha256Hex("tok")},
                      {"subject", "alice"},
                      {"kind", "human"},
                      {"groups", {"analysts"}}}}}};
    auto identity = plugin_host::IdentityPlugin::Create(*library, config);
    EXPECT_TRUE(identity.ok()) << identity.status().ToString();
    if (!identity.ok()) return;
    std::vector<std::unique_ptr<plugin_host::IdentityPlugin>> providers;
    providers.push_back(std::move(identity).value());
    chain_ = std::make_unique<IdentityChain>(std::move(providers));
  }
  const IdentityChain* get() const { return chain_.get(); }

 private:
  NullHost callbacks_;
  plugin_host::HostServicesTable services_;
  plugin_host::PluginLoader loader_;
  std::unique_ptr<IdentityChain> chain_;
};

TEST(V1Api, FailsClosedWhenTheAuditLogCannotBeWritten) {
  StaticTokensChain identity;
  ASSERT_NE(identity.get(), nullptr);
  const IdentityChain& chain = *identity.get();

  AuditOptions options;
  options.skip_recovery = true;
  options.write_anchor = false;
  auto audit = AuditLog::Open("/dev/full", options);
  ASSERT_TRUE(audit.ok()) << audit.status().ToString();
  Metrics metrics;
  V1Api::Dependencies deps;
  deps.requests = nullptr;  // never reached: the API refuses before touching requests
  deps.identity = &chain;
  deps.audit = audit->get();
  deps.metrics = &metrics;
  V1Api api(std::move(deps));

  HttpRequest health;
  health.method = "GET";
  health.path = health.target = "/healthz";
  EXPECT_EQ(api.Handle(health).status, 200u);

  // The first write fails: from now on the log is closed.
  EXPECT_FALSE((*audit)->Append({{"event", "probe"}}).ok());
  HttpResponse unhealthy = api.Handle(health);
  EXPECT_EQ(unhealthy.status, 503u);
  EXPECT_NE(unhealthy.body.find("audit log unavailable"), std::string::npos) << unhealthy.body;

  HttpRequest create;
  create.method = "POST";
  create.path = create.target = "/v1/requests";
  create.headers = {{"Authorization", "Bearer tok"}, {"Content-Type", "application/json"}};
  create.body = R"({"datasets": ["orders"]})";
  HttpResponse refused = api.Handle(create);
  EXPECT_EQ(refused.status, 503u) << refused.body;
  EXPECT_EQ(json::parse(refused.body).value("error", ""), "unavailable");
  EXPECT_NE(refused.body.find("audit log unavailable"), std::string::npos) << refused.body;
  // Unauthenticated callers are still refused as such, not served.
  create.headers = {{"Authorization", "Bearer wrong"}};
  EXPECT_EQ(api.Handle(create).status, 401u);
}

// A replica whose heartbeat cannot reach the state store is not ready; the
// cluster view is for admins only.
TEST(V1Api, HealthFollowsTheStateStoreAndTheClusterViewIsForAdmins) {
  StaticTokensChain identity;
  ASSERT_NE(identity.get(), nullptr);
  test::TempDir dir;
  auto audit = AuditLog::Open(dir.File("audit.log"));
  ASSERT_TRUE(audit.ok()) << audit.status().ToString();
  Metrics metrics;
  Status state = Status::Ok();
  int cluster_calls = 0;
  V1Api::Dependencies deps;
  deps.identity = identity.get();
  deps.audit = audit->get();
  deps.metrics = &metrics;
  deps.state_health = [&] { return state; };
  deps.cluster = [&]() -> Result<json> {
    ++cluster_calls;
    return json{{"replicas", json::array()}};
  };
  V1Api api(std::move(deps));

  HttpRequest health;
  health.method = "GET";
  health.path = health.target = "/healthz";
  EXPECT_EQ(api.Handle(health).status, 200u);
  state = Status::Unavailable("connection refused");
  HttpResponse down = api.Handle(health);
  EXPECT_EQ(down.status, 503u);
  EXPECT_EQ(json::parse(down.body).value("reason", ""), "state store: connection refused");
  state = Status::Ok();
  EXPECT_EQ(api.Handle(health).status, 200u);

  // alice is not in an admin group (there is none): 403, and the view is
  // never computed for her.
  HttpRequest cluster;
  cluster.method = "GET";
  cluster.path = cluster.target = "/v1/cluster";
  cluster.headers = {{"Authorization", "Bearer tok"}};
  EXPECT_EQ(api.Handle(cluster).status, 403u);
  cluster.headers.clear();
  EXPECT_EQ(api.Handle(cluster).status, 401u);
  EXPECT_EQ(cluster_calls, 0);
}

TEST(V1Api, OnAnIoThreadOnlyNonBlockingReadsAreAnswered) {
  StaticTokensChain identity;
  ASSERT_NE(identity.get(), nullptr);
  EXPECT_TRUE(identity.get()->answers_without_blocking());
  EXPECT_TRUE(IdentityProviderNeverBlocks("mtls"));
  EXPECT_FALSE(IdentityProviderNeverBlocks("oidc-jwt"));  // may fetch its JWKS

  test::TempDir dir;
  AuditOptions options;
  options.write_anchor = false;
  auto audit = AuditLog::Open(dir.path() + "/audit.log", options);
  ASSERT_TRUE(audit.ok()) << audit.status().ToString();
  Metrics metrics;
  V1Api::Dependencies deps;
  deps.requests = nullptr;  // never reached: every request below stops earlier
  deps.identity = identity.get();
  deps.audit = audit->get();
  deps.metrics = &metrics;
  V1Api api(std::move(deps));

  auto on_io = [](std::string method, std::string path, std::string token) {
    HttpRequest request;
    request.method = std::move(method);
    request.path = request.target = std::move(path);
    request.headers = {{"Authorization", "Bearer " + token}};
    request.on_io_thread = true;
    return request;
  };
  // Writes (they commit), other reads and unauthenticated routes: deferred.
  EXPECT_TRUE(api.Handle(on_io("POST", "/v1/requests", "tok")).run_on_handler_pool);
  EXPECT_TRUE(api.Handle(on_io("GET", "/v1/requests", "tok")).run_on_handler_pool);
  EXPECT_TRUE(api.Handle(on_io("GET", "/v1/requests/req_1/results", "tok")).run_on_handler_pool);
  EXPECT_TRUE(api.Handle(on_io("GET", "/healthz", "")).run_on_handler_pool);
  EXPECT_TRUE(api.Handle(on_io("GET", "/v1/audit", "tok")).run_on_handler_pool);

  // A refused credential is audited, which waits for a durable commit: the
  // refusal is deferred unrecorded, and recorded once on the pool.
  const uint64_t before = (*audit)->last_sequence();
  HttpRequest refused = on_io("GET", "/v1/requests/req_1", "wrong");
  EXPECT_TRUE(api.Handle(refused).run_on_handler_pool);
  EXPECT_EQ((*audit)->last_sequence(), before);
  EXPECT_EQ(metrics.Render().find("airlock_http_requests_total"), std::string::npos)
      << "deferred answers are not counted";
  refused.on_io_thread = false;
  EXPECT_EQ(api.Handle(refused).status, 401u);
  EXPECT_EQ((*audit)->last_sequence(), before + 1);
  EXPECT_NE(metrics.Render().find("airlock_http_requests_total{code=\"4xx\"} 1"), std::string::npos)
      << metrics.Render();
}

// Bodies are parsed strictly and routes are matched before any request
// reaches the request manager (absent here): every answer below comes from
// the API layer itself.
TEST(V1Api, RefusesAmbiguousBodiesAndUnroutedCalls) {
  StaticTokensChain identity;
  ASSERT_NE(identity.get(), nullptr);
  test::TempDir dir;
  AuditOptions options;
  options.write_anchor = false;
  auto audit = AuditLog::Open(dir.path() + "/audit.log", options);
  ASSERT_TRUE(audit.ok()) << audit.status().ToString();
  Metrics metrics;
  V1Api::Dependencies deps;
  deps.identity = identity.get();
  deps.audit = audit->get();
  deps.metrics = &metrics;
  deps.admin_groups = {"airlock-admins"};
  V1Api api(std::move(deps));

  auto call = [&](std::string method, std::string path, std::string body,
                  std::string token = "tok") {
    HttpRequest request;
    request.method = std::move(method);
    request.path = request.target = std::move(path);
    request.headers = {{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}};
    request.body = std::move(body);
    return api.Handle(request);
  };

  HttpResponse r =
      call("POST", "/v1/requests",
           R"({"datasets": ["orders"], "window_seconds": 60, "window_seconds": 6000})");
  EXPECT_EQ(r.status, 400u) << r.body;
  EXPECT_EQ(json::parse(r.body)["message"], "request body repeats the key 'window_seconds'");

  r = call("POST", "/v1/requests/req_1/approve", R"({"comment": null})");
  EXPECT_EQ(r.status, 400u) << r.body;
  EXPECT_EQ(json::parse(r.body)["message"], "comment must be a string");
  r = call("POST", "/v1/requests/req_1/deny", R"({"comment": "a", "comment": "b"})");
  EXPECT_EQ(r.status, 400u) << r.body;

  // A known path with another method: 405 naming what it allows.
  r = call("DELETE", "/v1/requests", "");
  EXPECT_EQ(r.status, 405u);
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0], (std::pair<std::string, std::string>("Allow", "GET, POST")));
  r = call("GET", "/v1/requests/req_1/approve", "");
  EXPECT_EQ(r.status, 405u);
  // Unknown actions and malformed ids: 404.
  EXPECT_EQ(call("POST", "/v1/requests/req_1/steal", "").status, 404u);
  EXPECT_EQ(call("POST", "/v1/requests/bad%20id!/approve", "").status, 404u);
  EXPECT_EQ(call("GET", "/v1/requests/req_1/results/x1", "").status, 404u);
  // Inside /v1 an unknown or wrong-method path still needs a credential, so
  // the route map is not probed anonymously.
  EXPECT_EQ(call("GET", "/v1/nothing-here", "", "wrong").status, 401u);
  EXPECT_EQ(call("DELETE", "/v1/requests", "", "wrong").status, 401u);
  EXPECT_EQ(call("POST", "/healthz", "", "wrong").status, 405u);
  // Admin routes need an admin group; alice has none.
  r = call("POST", "/v1/admin/policy/reload", "");
  EXPECT_EQ(r.status, 403u) << r.body;
  EXPECT_EQ(json::parse(r.body)["message"], "admin group membership required");
}

}  // namespace
}  // namespace airlock
