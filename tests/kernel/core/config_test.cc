// Configuration validation: every refusal names the key that is wrong.
#include "kernel/core/config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "tests/support/temp_dir.h"

namespace airlock {
namespace {

using nlohmann::json;

json Minimal() {
  return json::parse(R"({
    "identity": [{"plugin": "id.so"}],
    "policy": {"plugin": "policy.so", "config": {"rules": []}},
    "isolator": {"plugin": "iso"},
    "tunnel": {"plugin": "/abs/tunnel.so", "sha256": "AB00000000000000000000000000000000000000000000000000000000000000"},
    "connectors": {"files": {"plugin": "files.so", "config": {"root": "data"}}},
    "datasets": [{"name": "orders", "connector": "files"}]
  })");
}

std::string ErrorFor(const json& doc) {
  auto parsed = ParseKernelConfig(doc, "/etc/airlock/airlock.json", "/usr/lib/airlock/plugins");
  return parsed.ok() ? std::string("ok") : parsed.status().message();
}

TEST(KernelConfig, MinimalConfigurationResolvesPathsAndDefaults) {
  auto parsed =
      ParseKernelConfig(Minimal(), "/etc/airlock/airlock.json", "/usr/lib/airlock/plugins");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  const KernelConfig& c = *parsed;
  EXPECT_EQ(c.config_dir, "/etc/airlock");
  EXPECT_EQ(c.identity.at(0).path, "/usr/lib/airlock/plugins/id.so");
  EXPECT_EQ(c.isolator.path, "/usr/lib/airlock/plugins/iso.so");
  EXPECT_EQ(c.tunnel.path, "/abs/tunnel.so");
  ASSERT_TRUE(c.tunnel.sha256.has_value());
  EXPECT_EQ(c.tunnel.sha256->substr(0, 2), "ab");  // pins are normalised to lowercase
  EXPECT_EQ(c.state_path, "/etc/airlock/state/state.db");
  EXPECT_EQ(c.audit_path, "/etc/airlock/state/audit.log");
  EXPECT_EQ(c.datasets.at(0).object, "orders");  // defaults to the name
  EXPECT_EQ(c.server.port, 8080);
  // Plugins learn where relative paths are anchored.
  EXPECT_EQ(c.connectors.at("files").config.value("$config_dir", ""), "/etc/airlock");
}

TEST(KernelConfig, ConnectorsListTheEndpointsTheirEnclavesMayReach) {
  json doc = Minimal();
  doc["connectors"]["files"]["egress"] = {"db.internal:5432", "127.0.0.1:6000"};
  auto parsed = ParseKernelConfig(doc, "/etc/airlock/airlock.json", "/usr/lib/airlock/plugins");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->connectors.at("files").egress,
            (std::vector<std::string>{"db.internal:5432", "127.0.0.1:6000"}));
  EXPECT_EQ(parsed->results_dir, "/etc/airlock/state/results");
}

TEST(KernelConfig, ConnectorsListExtraPathsTheirEnclavesRead) {
  json doc = Minimal();
  doc["connectors"]["files"]["read_paths"] = {"certs/ca.pem", "/srv/data/../shared"};
  auto parsed = ParseKernelConfig(doc, "/etc/airlock/airlock.json", "/usr/lib/airlock/plugins");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->connectors.at("files").read_paths,
            (std::vector<std::string>{"/etc/airlock/certs/ca.pem", "/srv/shared"}));
}

TEST(KernelConfig, NotifiersAreNamedPluginsWithTheEventsAndAudiencesTheyCarry) {
  json doc = Minimal();
  doc["notifications"] = {{"console_url", "https://airlock.example.com/"},
                          {"max_attempts", 5},
                          {"notifiers",
                           {{"ops-hook",
                             {{"plugin", "airlock_notifier_webhook"},
                              {"events", {"request.pending_approval", "request.ready"}},
                              {"audiences", {"approvers"}},
                              {"config", {{"url", "https://hooks.example.com/airlock"}}}}},
                            {"mail", {{"plugin", "/opt/airlock/email.so"}}}}}};
  auto parsed = ParseKernelConfig(doc, "/etc/airlock/airlock.json", "/usr/lib/airlock/plugins");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  const NotificationsConfig& n = parsed->notifications;
  EXPECT_EQ(n.console_url, "https://airlock.example.com");  // no trailing slash
  EXPECT_EQ(n.max_attempts, 5);
  EXPECT_EQ(n.initial_backoff_ms, 1000);
  ASSERT_EQ(n.notifiers.size(), 2u);
  const NotifierEntry& hook = n.notifiers.at("ops-hook");
  EXPECT_EQ(hook.plugin.name, "ops-hook");
  EXPECT_EQ(hook.plugin.path, "/usr/lib/airlock/plugins/airlock_notifier_webhook.so");
  EXPECT_EQ(hook.events, (std::vector<std::string>{"request.pending_approval", "request.ready"}));
  EXPECT_EQ(hook.audiences, (std::vector<std::string>{"approvers"}));
  EXPECT_TRUE(n.notifiers.at("mail").events.empty());  // every event
  EXPECT_EQ(n.notifiers.at("mail").plugin.path, "/opt/airlock/email.so");
}

TEST(KernelConfig, TheConsolesSingleSignOnIsCheckedBeforeItWidensThePagesPolicy) {
  json doc = Minimal();
  doc["console"] = {
      {"oidc", {{"issuer", "https://idp.example.com/realms/x/"}, {"client_id", "airlock"}}}};
  auto parsed = ParseKernelConfig(doc, "/etc/airlock/airlock.json", "/usr/lib/airlock/plugins");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  ASSERT_TRUE(parsed->console.oidc.has_value());
  EXPECT_EQ(parsed->console.oidc->issuer, "https://idp.example.com/realms/x");  // no trailing /
  EXPECT_EQ(parsed->console.oidc->scopes, "openid profile email");
  EXPECT_FALSE(ParseKernelConfig(Minimal(), "/etc/a.json", "/p")->console.oidc.has_value());

  const auto with = [](json oidc) {
    json d = Minimal();
    d["console"] = {{"oidc", std::move(oidc)}};
    return ErrorFor(d);
  };
  EXPECT_NE(with({{"issuer", "http://idp.example.com"}, {"client_id", "a"}}).find("https://"),
            std::string::npos);
  // Nothing that could add a source to the page's policy.
  EXPECT_NE(with({{"issuer", "https://idp.example.com; script-src *"}, {"client_id", "a"}})
                .find("console.oidc.issuer"),
            std::string::npos);
  EXPECT_NE(with({{"issuer", "https://idp.example.com"}}).find("client_id"), std::string::npos);
  EXPECT_NE(with({{"issuer", "https://idp.example.com"}, {"client_id", "a b"}}).find("client_id"),
            std::string::npos);
  EXPECT_NE(with({{"issuer", "https://idp.example.com"}, {"client_id", "a"}, {"scopes", "email"}})
                .find("openid"),
            std::string::npos);
  EXPECT_NE(with({{"issuer", "https://idp.example.com"}, {"client_id", "a"}, {"secret", "x"}})
                .find("secret"),
            std::string::npos);
}

TEST(KernelConfig, TheMcpMetadataNamesTheIdentityIssuersUnlessToldOtherwise) {
  json doc = Minimal();
  doc["identity"] = {{{"name", "sso"},
                      {"plugin", "oidc.so"},
                      {"config", {{"issuer", "https://idp.example.com/realms/x/"}}}},
                     {{"name", "tokens"}, {"plugin", "tokens.so"}}};
  auto parsed = ParseKernelConfig(doc, "/etc/airlock/airlock.json", "/usr/lib/airlock/plugins");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->mcp.authorization_servers,
            std::vector<std::string>{"https://idp.example.com/realms/x"});
  EXPECT_EQ(parsed->mcp.max_rows, 1000);
  EXPECT_TRUE(parsed->mcp.public_url.empty());

  doc["mcp"] = {{"public_url", "https://airlock.example.com/"},
                {"authorization_servers", {"https://login.example.com"}},
                {"max_rows", 50}};
  parsed = ParseKernelConfig(doc, "/etc/airlock/airlock.json", "/usr/lib/airlock/plugins");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->mcp.public_url, "https://airlock.example.com");
  EXPECT_EQ(parsed->mcp.authorization_servers,
            std::vector<std::string>{"https://login.example.com"});
  EXPECT_EQ(parsed->mcp.max_rows, 50);

  const auto with = [](json mcp) {
    json d = Minimal();
    d["mcp"] = std::move(mcp);
    return ErrorFor(d);
  };
  EXPECT_NE(with({{"public_url", "ftp://x"}}).find("mcp.public_url"), std::string::npos);
  EXPECT_NE(with({{"public_url", "https://a\"b"}}).find("mcp.public_url"), std::string::npos);
  EXPECT_NE(with({{"authorization_servers", {"login.example.com"}}}).find("authorization_servers"),
            std::string::npos);
  EXPECT_NE(with({{"max_rows", 0}}).find("max_rows"), std::string::npos);
  EXPECT_NE(with({{"rows", 5}}).find("rows"), std::string::npos);
}

TEST(KernelConfig, NotificationErrorsNameTheKey) {
  const auto with = [](json notifications) {
    json doc = Minimal();
    doc["notifications"] = std::move(notifications);
    return ErrorFor(doc);
  };
  const json hook = {{"plugin", "hook.so"}};
  EXPECT_EQ(with({{"notifiers", {{"ops", {{"plugin", "hook.so"}, {"events", {"request.done"}}}}}}}),
            "notifications.notifiers.ops.events: unknown value 'request.done' (one of "
            "request.pending_approval, request.approved, request.denied, request.ready, "
            "request.expiring, request.expired, request.closed, request.failed, "
            "request.cancelled, request.extension_requested, request.extended, "
            "request.extension_denied)");
  EXPECT_EQ(with({{"notifiers", {{"ops", {{"plugin", "hook.so"}, {"audiences", {"admins"}}}}}}}),
            "notifications.notifiers.ops.audiences: unknown value 'admins' (one of approvers, "
            "requester)");
  EXPECT_NE(with({{"notifiers", {{"ops/1", hook}}}}).find("notifier names are 1 to 64"),
            std::string::npos);
  EXPECT_EQ(with({{"notifiers", {{"ops", {{"events", json::array()}}}}}}),
            "notifications.notifiers.ops.plugin is required");
  EXPECT_EQ(with({{"notifiers", {{"ops", {{"plugin", "hook.so"}, {"colour", "red"}}}}}}),
            "notifications.notifiers.ops.colour is not a known setting");
  EXPECT_EQ(with({{"initial_backoff_ms", 5000}, {"max_backoff_ms", 1000}}),
            "notifications.max_backoff_ms must be at least notifications.initial_backoff_ms");
  EXPECT_EQ(with({{"console_url", "airlock.example.com"}}),
            "notifications.console_url must be an http(s) URL");
  EXPECT_EQ(with({{"max_attempts", 0}}), "notifications.max_attempts must be between 1 and 1000");
  EXPECT_EQ(with({{"retries", 3}}), "notifications.retries is not a known setting");
  EXPECT_EQ(with({{"notifiers", json::array()}}),
            "notifications.notifiers must be an object of notifiers");
}

TEST(KernelConfig, ErrorsNameTheKey) {
  struct Case {
    const char* what;
    std::function<void(json&)> edit;
    const char* expected;
  };
  const std::vector<Case> cases = {
      {"unknown top-level key", [](json& j) { j["colour"] = "red"; },
       "colour is not a known setting"},
      {"port type",
       [](json& j) {
         j["server"] = {{"port", "80"}};
       },
       "server.port must be an integer"},
      {"port range",
       [](json& j) {
         j["server"] = {{"port", 70000}};
       },
       "server.port must be between"},
      {"typo in server",
       [](json& j) {
         j["server"] = {{"prot", 1}};
       },
       "server.prot is not a known setting"},
      {"egress not host:port",
       [](json& j) { j["connectors"]["files"]["egress"] = {"db.internal"}; },
       "connectors.files.egress[0]: 'db.internal' must be host:port"},
      {"egress port range", [](json& j) { j["connectors"]["files"]["egress"] = {"db:0"}; },
       "needs a port between 1 and 65535"},
      {"egress public literal",
       [](json& j) { j["connectors"]["files"]["egress"] = {"10.0.0.5:5432"}; },
       "names a non-loopback address"},
      {"egress odd host", [](json& j) { j["connectors"]["files"]["egress"] = {"db\nevil:5432"}; },
       "has a host that is not a DNS name"},
      {"egress on a policy", [](json& j) { j["policy"]["egress"] = {"db:1"}; },
       "policy.egress is not a known setting"},
      {"tls without key",
       [](json& j) {
         j["server"] = {{"tls", {{"certificate_file", "a"}}}};
       },
       "server.tls.private_key_file is required"},
      {"no identity", [](json& j) { j.erase("identity"); }, "identity must be a non-empty array"},
      {"identity plugin missing", [](json& j) { j["identity"][0].erase("plugin"); },
       "identity[0].plugin is required"},
      {"bad pin", [](json& j) { j["policy"]["sha256"] = "abc"; }, "policy.sha256 must be 64 hex"},
      {"no tunnel", [](json& j) { j.erase("tunnel"); }, "tunnel is required"},
      {"unknown connector", [](json& j) { j["datasets"][0]["connector"] = "s3"; },
       "datasets[0].connector names unknown connector 's3'"},
      {"dataset name not an identifier", [](json& j) { j["datasets"][0]["name"] = "drop table"; },
       "datasets[0].name must be an identifier"},
      {"duplicate dataset", [](json& j) { j["datasets"].push_back(j["datasets"][0]); },
       "datasets[1].name 'orders' is defined twice"},
      {"limits out of range",
       [](json& j) {
         j["limits"] = {{"max_window_seconds", 0}};
       },
       "limits.max_window_seconds must be between"},
      {"default above max",
       [](json& j) {
         j["limits"] = {{"max_window_seconds", 60}, {"default_window_seconds", 120}};
       },
       "limits.default_window_seconds must not exceed"},
      {"access groups type",
       [](json& j) {
         j["access"] = {{"admin_groups", "admins"}};
       },
       "access.admin_groups must be an array of strings"},
      {"config and config_file", [](json& j) { j["policy"]["config_file"] = "p.json"; },
       "policy: set config or config_file, not both"},
  };
  for (const auto& c : cases) {
    json doc = Minimal();
    c.edit(doc);
    const std::string error = ErrorFor(doc);
    EXPECT_NE(error.find(c.expected), std::string::npos) << c.what << ": got '" << error << "'";
  }
}

const std::string kTokenHash(64, 'a');

// Minimal() with two tenants, a site agent of "acme" and a connector it serves.
json Tenanted() {
  json doc = Minimal();
  doc["connectors"]["edge"] = {{"plugin", "files.so"}, {"agent", "east"}};
  doc["datasets"] = {{{"name", "orders"}, {"connector", "files"}, {"tenant", "acme"}},
                     {{"name", "ledger"}, {"connector", "files"}, {"tenant", "globex"}},
                     {{"name", "sensors"}, {"connector", "edge"}, {"tenant", "acme"}}};
  doc["agents"] = {
      {"agents", {{"east", {{"enrollment_token_sha256", kTokenHash}, {"tenant", "acme"}}}}}};
  doc["access"] = {{"admin_groups", {"platform-ops"}}};
  doc["tenants"] = {
      {"acme",
       {{"subjects", {"alice", "bob"}},
        {"groups", {"acme-staff"}},
        {"admin_groups", {"acme-admins"}},
        {"policy", {{"plugin", "acme-policy"}, {"config", {{"rules", json::array()}}}}}}},
      {"globex", {{"groups", {"globex-staff"}}}}};
  return doc;
}

TEST(KernelConfig, TenantsParseWithTheirMembersAdminsAndOwnPolicy) {
  auto parsed =
      ParseKernelConfig(Tenanted(), "/etc/airlock/airlock.json", "/usr/lib/airlock/plugins");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  const KernelConfig& c = *parsed;
  ASSERT_EQ(c.tenants.size(), 2u);
  const TenantConfig& acme = c.tenants.at("acme");
  EXPECT_EQ(acme.name, "acme");
  EXPECT_EQ(acme.subjects, (std::vector<std::string>{"alice", "bob"}));
  EXPECT_EQ(acme.groups, std::vector<std::string>{"acme-staff"});
  EXPECT_EQ(acme.admin_groups, std::vector<std::string>{"acme-admins"});
  ASSERT_TRUE(acme.policy.has_value());
  EXPECT_EQ(acme.policy->path, "/usr/lib/airlock/plugins/acme-policy.so");
  EXPECT_EQ(acme.policy->name, "policy-acme");
  EXPECT_TRUE(acme.policy->config.contains("rules"));
  const TenantConfig& globex = c.tenants.at("globex");
  EXPECT_EQ(globex.name, "globex");
  EXPECT_TRUE(globex.subjects.empty());
  EXPECT_EQ(globex.groups, std::vector<std::string>{"globex-staff"});
  EXPECT_TRUE(globex.admin_groups.empty());
  EXPECT_FALSE(globex.policy.has_value()) << "no policy of its own: the kernel's decides";
  EXPECT_EQ(c.dataset_tenants, (std::map<std::string, std::string>{
                                   {"orders", "acme"}, {"ledger", "globex"}, {"sensors", "acme"}}));
  EXPECT_EQ(c.agents.agents.at("east").tenant, "acme");
  EXPECT_EQ(c.admin_groups, std::vector<std::string>{"platform-ops"});

  // Without tenants nothing names one.
  auto plain = ParseKernelConfig(Minimal(), "/etc/airlock/airlock.json", "/p");
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_TRUE(plain->tenants.empty());
  EXPECT_TRUE(plain->dataset_tenants.empty());
}

TEST(KernelConfig, TenantNamesAreLowercaseLettersDigitsDashAndUnderscore) {
  EXPECT_TRUE(IsTenantName("acme"));
  EXPECT_TRUE(IsTenantName("0day"));
  EXPECT_TRUE(IsTenantName("a"));
  EXPECT_TRUE(IsTenantName("acme_eu-1"));
  EXPECT_TRUE(IsTenantName(std::string(63, 'a')));
  EXPECT_FALSE(IsTenantName(""));
  EXPECT_FALSE(IsTenantName(std::string(64, 'a')));
  EXPECT_FALSE(IsTenantName("Acme"));
  EXPECT_FALSE(IsTenantName("acmE"));
  EXPECT_FALSE(IsTenantName("-acme"));
  EXPECT_FALSE(IsTenantName("_acme"));
  EXPECT_FALSE(IsTenantName("ac me"));
  EXPECT_FALSE(IsTenantName("acme.eu"));
  EXPECT_FALSE(IsTenantName("acme/eu"));
  EXPECT_FALSE(IsTenantName(std::string("ac\0me", 5)));
}

TEST(KernelConfig, TenantErrorsNameTheKey) {
  struct Case {
    const char* what;
    std::function<void(json&)> edit;
    std::string expected;
  };
  const std::string long_name(64, 'a');
  const std::vector<Case> cases = {
      {"tenants an array", [](json& j) { j["tenants"] = json::array({"acme"}); },
       "tenants must be a non-empty object of tenants by name"},
      {"tenants a string", [](json& j) { j["tenants"] = "acme"; },
       "tenants must be a non-empty object of tenants by name"},
      {"tenants empty", [](json& j) { j["tenants"] = json::object(); },
       "tenants must be a non-empty object of tenants by name"},
      {"uppercase name",
       [](json& j) {
         j["tenants"]["Acme"] = j["tenants"]["acme"];
         j["tenants"].erase("acme");
       },
       "tenants.Acme: tenant names are 1..63 of [a-z0-9_-], starting with a letter or digit"},
      {"leading dash", [](json& j) { j["tenants"]["-acme"] = json::object(); },
       "tenants.-acme: tenant names are 1..63"},
      {"64 characters", [&](json& j) { j["tenants"][long_name] = json::object(); },
       "tenants." + long_name + ": tenant names are 1..63"},
      {"tenant not an object", [](json& j) { j["tenants"]["globex"] = json::array(); },
       "tenants.globex must be an object"},
      {"unknown key in a tenant", [](json& j) { j["tenants"]["globex"]["colour"] = "red"; },
       "tenants.globex.colour is not a known setting"},
      {"subjects not a list", [](json& j) { j["tenants"]["globex"]["subjects"] = "carol"; },
       "tenants.globex.subjects must be an array of strings"},
      {"admin_groups not strings", [](json& j) { j["tenants"]["globex"]["admin_groups"] = {1}; },
       "tenants.globex.admin_groups must be an array of strings"},
      {"policy without plugin", [](json& j) { j["tenants"]["acme"]["policy"].erase("plugin"); },
       "tenants.acme.policy.plugin is required"},
      {"policy bad pin", [](json& j) { j["tenants"]["acme"]["policy"]["sha256"] = "abc"; },
       "tenants.acme.policy.sha256 must be 64 hex"},
      {"dataset without tenant", [](json& j) { j["datasets"][1].erase("tenant"); },
       "datasets[1].tenant is required: with tenants configured, everything belongs to one"},
      {"dataset empty tenant", [](json& j) { j["datasets"][1]["tenant"] = ""; },
       "datasets[1].tenant is required"},
      {"dataset tenant not a string", [](json& j) { j["datasets"][0]["tenant"] = 7; },
       "datasets[0].tenant must be a string"},
      {"dataset unknown tenant", [](json& j) { j["datasets"][1]["tenant"] = "initech"; },
       "datasets[1].tenant names unknown tenant 'initech'"},
      {"agent without tenant", [](json& j) { j["agents"]["agents"]["east"].erase("tenant"); },
       "agents.agents.east.tenant is required: with tenants configured"},
      {"agent unknown tenant", [](json& j) { j["agents"]["agents"]["east"]["tenant"] = "initech"; },
       "agents.agents.east.tenant names unknown tenant 'initech'"},
      {"agent tenant not a string", [](json& j) { j["agents"]["agents"]["east"]["tenant"] = 1; },
       "agents.agents.east.tenant must be a string"},
      {"site dataset of another tenant", [](json& j) { j["datasets"][2]["tenant"] = "globex"; },
       "datasets[2].tenant 'globex' differs from the tenant 'acme' of agent 'east', whose host "
       "serves it"},
      {"site of another tenant than its dataset",
       [](json& j) { j["agents"]["agents"]["east"]["tenant"] = "globex"; },
       "datasets[2].tenant 'acme' differs from the tenant 'globex' of agent 'east'"},
      {"a subject in two tenants", [](json& j) { j["tenants"]["globex"]["subjects"] = {"bob"}; },
       "tenants.globex.subjects: subject 'bob' also belongs to tenant 'acme'"},
      {"a group in two tenants",
       [](json& j) {
         j["tenants"]["globex"]["groups"] = {"globex-staff", "acme-staff"};
       },
       "tenants.globex.groups: group 'acme-staff' also belongs to tenant 'acme'"},
  };
  for (const auto& c : cases) {
    json doc = Tenanted();
    c.edit(doc);
    const std::string error = ErrorFor(doc);
    EXPECT_NE(error.find(c.expected), std::string::npos) << c.what << ": got '" << error << "'";
  }
}

TEST(KernelConfig, WithoutTenantsNothingMayNameOne) {
  json doc = Minimal();
  doc["datasets"][0]["tenant"] = "acme";
  EXPECT_EQ(ErrorFor(doc), "datasets[0].tenant names tenant 'acme' but no tenants are configured");

  doc = Minimal();
  doc["agents"] = {
      {"agents", {{"east", {{"enrollment_token_sha256", kTokenHash}, {"tenant", "acme"}}}}}};
  EXPECT_EQ(ErrorFor(doc),
            "agents.agents.east.tenant names tenant 'acme' but no tenants are configured");

  // A site of one organisation, as before tenants.
  doc["agents"]["agents"]["east"].erase("tenant");
  doc["connectors"]["edge"] = {{"plugin", "files.so"}, {"agent", "east"}};
  doc["datasets"].push_back({{"name", "sensors"}, {"connector", "edge"}});
  EXPECT_EQ(ErrorFor(doc), "ok");
}

// With tenants, every notifier says whose requests it carries: a shared
// channel is never one tenant's leak into another's by being left unsaid.
TEST(KernelConfig, WithTenantsEachNotifierNamesItsTenants) {
  json doc = Tenanted();
  doc["notifications"] = {{"notifiers", {{"chat", {{"plugin", "webhook.so"}}}}}};
  EXPECT_NE(ErrorFor(doc).find("notifications.notifiers.chat.tenants is required with tenants "
                               "configured"),
            std::string::npos)
      << ErrorFor(doc);
  doc["notifications"]["notifiers"]["chat"]["tenants"] = {"acme", "initech"};
  EXPECT_NE(ErrorFor(doc).find("notifications.notifiers.chat.tenants: unknown value 'initech'"),
            std::string::npos)
      << ErrorFor(doc);
  doc["notifications"]["notifiers"]["chat"]["tenants"] = {"acme"};
  EXPECT_EQ(ErrorFor(doc), "ok");
  doc["notifications"]["notifiers"]["chat"]["tenants"] = {"*"};
  EXPECT_EQ(ErrorFor(doc), "ok");

  json plain = Minimal();
  plain["notifications"] = {{"notifiers", {{"chat", {{"plugin", "webhook.so"}}}}}};
  EXPECT_EQ(ErrorFor(plain), "ok");
  plain["notifications"]["notifiers"]["chat"]["tenants"] = {"acme"};
  EXPECT_EQ(ErrorFor(plain),
            "notifications.notifiers.chat.tenants names tenants but none are configured");
}

TEST(KernelConfig, ASitesDatasetsNeverNameATenant) {
  json site = {{"connectors", {{"pg", {{"plugin", "pg.so"}}}}},
               {"datasets", {{{"name", "orders"}, {"connector", "pg"}}}}};
  auto parsed = ParseSiteSources(site, "/etc/airlock-agent", "/usr/lib/airlock/plugins");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  ASSERT_EQ(parsed->datasets.size(), 1u);
  EXPECT_EQ(parsed->datasets[0].name, "orders");

  site["datasets"].push_back({{"name", "ledger"}, {"connector", "pg"}, {"tenant", "acme"}});
  auto refused = ParseSiteSources(site, "/etc/airlock-agent", "/usr/lib/airlock/plugins");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  const std::string error = refused.status().message();
  EXPECT_EQ(error.rfind("datasets[1].tenant: a site's datasets belong to the site's tenant", 0), 0u)
      << error;
  EXPECT_NE(error.find("agents.agents.<name>.tenant"), std::string::npos) << error;
  // Even an empty one: the key itself is refused.
  site["datasets"][1]["tenant"] = "";
  EXPECT_FALSE(ParseSiteSources(site, "/etc/airlock-agent", "/p").ok());
}

TEST(KernelConfig, ADatasetMayDeclareItsKey) {
  json doc = Minimal();
  doc["datasets"][0]["key"] = {"region", "id"};
  doc["datasets"].push_back({{"name", "plain"}, {"connector", "files"}});
  auto parsed = ParseKernelConfig(doc, "/etc/airlock/airlock.json", "/p");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->dataset_keys,
            (std::map<std::string, std::vector<std::string>>{{"orders", {"region", "id"}}}));

  json too_many = json::array();
  for (int i = 0; i < 33; ++i) too_many.push_back("c" + std::to_string(i));
  const std::vector<std::pair<json, std::string>> bad = {
      {"id", "datasets[0].key must be an array of 1 to 32 column names"},
      {json::array(), "datasets[0].key must be an array of 1 to 32 column names"},
      {too_many, "datasets[0].key must be an array of 1 to 32 column names"},
      {{"id", 7}, "datasets[0].key must hold column names of 1 to 1024 bytes"},
      {{"id", std::string(1025, 'k')}, "datasets[0].key must hold column names of 1 to 1024 bytes"},
      {{"id", ""}, "datasets[0].key must hold column names of 1 to 1024 bytes"},
      {{"id", "id"}, "datasets[0].key names 'id' twice"},
  };
  for (const auto& [key, error] : bad) {
    json d = Minimal();
    d["datasets"][0]["key"] = key;
    EXPECT_EQ(ErrorFor(d), error) << key.dump().substr(0, 40);
  }
  // With its columns declared, the key must be among them.
  json d = Minimal();
  d["datasets"][0]["columns"] = {{{"name", "id"}, {"type", "BIGINT"}}};
  d["datasets"][0]["key"] = {"id"};
  EXPECT_EQ(ErrorFor(d), "ok");
  d["datasets"][0]["key"] = {"id", "nope"};
  EXPECT_EQ(ErrorFor(d), "datasets[0].key names 'nope', which is not one of its columns");

  // A site's datasets declare theirs the same way, in the agent's configuration.
  json site = {{"connectors", {{"pg", {{"plugin", "pg.so"}}}}},
               {"datasets",
                {{{"name", "orders"}, {"connector", "pg"}, {"key", {"id"}}},
                 {{"name", "stock"}, {"connector", "pg"}}}}};
  auto sources = ParseSiteSources(site, "/etc/airlock-agent", "/p");
  ASSERT_TRUE(sources.ok()) << sources.status().ToString();
  EXPECT_EQ(sources->keys, (std::map<std::string, std::vector<std::string>>{{"orders", {"id"}}}));
  site["datasets"][1]["key"] = {"id", "id"};
  auto refused = ParseSiteSources(site, "/etc/airlock-agent", "/p");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().message(), "datasets[1].key names 'id' twice");
}

TEST(KernelConfig, StateBackendDefaultsToSqliteAndTakesPostgresWithTls) {
  auto sqlite = ParseKernelConfig(Minimal(), "/etc/airlock/airlock.json", "/p");
  ASSERT_TRUE(sqlite.ok()) << sqlite.status().ToString();
  EXPECT_EQ(sqlite->state.backend, StateBackend::kSqlite);

  json doc = Minimal();
  doc["state"] = {{"backend", "sqlite"}};
  auto explicit_sqlite = ParseKernelConfig(doc, "/etc/airlock/airlock.json", "/p");
  ASSERT_TRUE(explicit_sqlite.ok()) << explicit_sqlite.status().ToString();
  EXPECT_EQ(explicit_sqlite->state.backend, StateBackend::kSqlite);

  doc["state"] = {{"backend", "postgres"},
                  {"dsn_secret", "env:AIRLOCK_STATE_DSN"},
                  {"read_connections", 2},
                  {"tls", {{"ca_file", "pki/ca.pem"}}}};
  auto pg = ParseKernelConfig(doc, "/etc/airlock/airlock.json", "/p");
  ASSERT_TRUE(pg.ok()) << pg.status().ToString();
  EXPECT_EQ(pg->state.backend, StateBackend::kPostgres);
  EXPECT_EQ(pg->state.dsn_secret, "env:AIRLOCK_STATE_DSN");
  EXPECT_EQ(pg->state.tls_mode, "verify-full");  // the default once a tls block is given
  EXPECT_EQ(pg->state.tls_ca_file, "/etc/airlock/pki/ca.pem");
  EXPECT_EQ(pg->state.read_connections, 2);
  EXPECT_EQ(pg->state.heartbeat_interval_ms, 1000);
  EXPECT_EQ(pg->state.lease_ttl_ms, 3000);
  // The audit chain follows the state into the database unless told not to.
  EXPECT_EQ(sqlite->audit.backend, AuditBackend::kFile);
  EXPECT_EQ(pg->audit.backend, AuditBackend::kPostgres);
  doc["audit"] = {{"backend", "file"}};
  doc["state"]["heartbeat_interval_ms"] = 250;
  auto pg_file = ParseKernelConfig(doc, "/etc/airlock/airlock.json", "/p");
  ASSERT_TRUE(pg_file.ok()) << pg_file.status().ToString();
  EXPECT_EQ(pg_file->audit.backend, AuditBackend::kFile);
  EXPECT_EQ(pg_file->state.heartbeat_interval_ms, 250);
  EXPECT_EQ(pg_file->state.lease_ttl_ms, 750);  // three beats unless set
}

TEST(KernelConfig, AuditBackendPostgresNeedsThePostgresStateStore) {
  json doc = Minimal();
  doc["audit"] = {{"backend", "postgres"}};
  EXPECT_NE(ErrorFor(doc).find("audit.backend \"postgres\" keeps the chain in the state store's "
                               "database: it needs state.backend \"postgres\""),
            std::string::npos)
      << ErrorFor(doc);
  doc["audit"] = {{"backend", "s3"}};
  EXPECT_NE(ErrorFor(doc).find("audit.backend must be \"file\" or \"postgres\""),
            std::string::npos);
  doc["audit"] = json::object();
  doc["state"] = {{"heartbeat_interval_ms", 50}};
  EXPECT_NE(ErrorFor(doc).find("state.heartbeat_interval_ms must be between 100 and 600000"),
            std::string::npos)
      << ErrorFor(doc);
  doc["state"] = {{"heartbeat_interval_ms", 1000}, {"lease_ttl_ms", 1500}};
  EXPECT_NE(ErrorFor(doc).find("state.lease_ttl_ms must be at least twice"), std::string::npos)
      << ErrorFor(doc);
}

TEST(KernelConfig, PeerLinkNeedsPostgresAndASecretReference) {
  json doc = Minimal();
  doc["state"] = {{"backend", "postgres"},
                  {"dsn_secret", "env:AIRLOCK_STATE_DSN"},
                  {"peer",
                   {{"secret", "file:peer.secret"},
                    {"ca_file", "pki/ca.pem"},
                    {"url", "https://kernel-1.internal:8443"}}}};
  auto linked = ParseKernelConfig(doc, "/etc/airlock/airlock.json", "/p");
  ASSERT_TRUE(linked.ok()) << linked.status().ToString();
  EXPECT_TRUE(linked->state.peer_enabled);
  EXPECT_EQ(linked->state.peer_secret, "file:peer.secret");
  EXPECT_EQ(linked->state.peer_ca_file, "/etc/airlock/pki/ca.pem");
  EXPECT_EQ(linked->state.peer_url, "https://kernel-1.internal:8443");

  const std::string token = "0123456789abcdef-peer-token";
  const std::vector<std::pair<json, std::string>> cases = {
      {{{"secret", token}}, "state.peer.secret must be a secret reference"},
      {json::object(), "state.peer.secret is required"},
      {{{"secret", "env:P"}, {"url", "kernel-1:8443"}}, "state.peer.url must be this replica's"},
      {{{"secret", "env:P"}, {"url", "https://a b"}}, "state.peer.url is not a URL"},
      {{{"secret", "env:P"}, {"port", 1}}, "state.peer.port is not a known setting"},
  };
  for (const auto& [peer, expected] : cases) {
    doc["state"]["peer"] = peer;
    const std::string error = ErrorFor(doc);
    EXPECT_NE(error.find(expected), std::string::npos) << peer.dump() << ": " << error;
    EXPECT_EQ(error.find(token), std::string::npos) << error;
  }
  doc["state"] = {{"backend", "sqlite"}, {"peer", {{"secret", "env:P"}}}};
  EXPECT_NE(ErrorFor(doc).find("state.peer links replicas that share a PostgreSQL state store"),
            std::string::npos)
      << ErrorFor(doc);
}

TEST(KernelConfig, StateBlockErrorsNameTheKeyAndNeverQuoteAConnectionString) {
  const std::string password = "s3cr3t-Pw-in-config";
  const std::vector<std::pair<json, std::string>> cases = {
      {{{"backend", "mysql"}}, "state.backend must be"},
      {{{"backend", "postgres"}}, "state.dsn_secret is required"},
      {{{"backend", "sqlite"}, {"dsn_secret", "env:X"}}, "state.dsn_secret is not a known setting"},
      {{{"backend", "postgres"},
        {"dsn_secret", "postgresql://airlock:" + password + "@db:5432/airlock"}},
       "state.dsn_secret must be a secret reference"},
      {{{"backend", "postgres"}, {"dsn_secret", "password=" + password + " host=db"}},
       "state.dsn_secret must be a secret reference"},
      {{{"backend", "postgres"}, {"dsn_secret", "env:X"}, {"tls", {{"mode", "verify-full"}}}},
       "state.tls.ca_file is required by mode verify-full"},
      {{{"backend", "postgres"}, {"dsn_secret", "env:X"}, {"tls", {{"mode", "prefer"}}}},
       "state.tls.mode must be"},
      {{{"backend", "postgres"},
        {"dsn_secret", "env:X"},
        {"tls", {{"mode", "require"}, {"cert_file", "c.pem"}}}},
       "state.tls.cert_file and state.tls.key_file go together"},
      {{{"backend", "postgres"}, {"dsn_secret", "env:X"}, {"read_connections", 0}},
       "state.read_connections must be between"},
  };
  for (const auto& [state, expected] : cases) {
    json doc = Minimal();
    doc["state"] = state;
    const std::string error = ErrorFor(doc);
    EXPECT_NE(error.find(expected), std::string::npos) << state.dump() << ": got '" << error << "'";
    EXPECT_EQ(error.find(password), std::string::npos) << error;
  }
}

TEST(KernelConfig, PolicyMayLiveInItsOwnFile) {
  test::TempDir dir;
  std::ofstream(dir.File("policy.json")) << R"({"version": 1, "rules": []})";
  std::ofstream(dir.File("broken.json")) << "{";
  json doc = Minimal();
  doc["policy"] = {{"plugin", "policy.so"}, {"config_file", "policy.json"}};
  auto parsed = ParseKernelConfig(doc, dir.File("airlock.json"), "/p");
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->policy.config.value("version", 0), 1);
  doc["policy"]["config_file"] = "broken.json";
  EXPECT_NE(ErrorFor(doc).find("policy.config_file"), std::string::npos);
  doc["policy"]["config_file"] = "missing.json";
  auto missing = ParseKernelConfig(doc, dir.File("airlock.json"), "/p");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
}

// Found during the fuzzing campaign (tests/fuzz/fuzz_kernel_config.cc): a
// configuration nesting 100,000 levels overflowed the stack while a plugin's
// configuration was copied, crashing `airlockd serve` and `check-config`
// instead of naming what is wrong.
TEST(KernelConfig, DeeplyNestedFilesAreRefusedNotACrash) {
  test::TempDir dir;
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  std::ofstream(dir.File("airlock.json"))
      << R"({"identity":[{"plugin":"x.so","config":{"a":)" << deep << "}}]}";
  auto loaded = LoadKernelConfig(dir.File("airlock.json"), "/p");
  EXPECT_EQ(loaded.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(loaded.status().message().find("nests deeper than 64 levels"), std::string::npos)
      << loaded.status().ToString();

  std::ofstream(dir.File("policy.json")) << R"({"rules":)" << deep << "}";
  json doc = Minimal();
  doc["policy"] = {{"plugin", "policy.so"}, {"config_file", "policy.json"}};
  auto refused = ParseKernelConfig(doc, dir.File("airlock.json"), "/p");
  const std::string error = refused.status().message();
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(error.find("policy.config_file"), std::string::npos) << error;
  EXPECT_NE(error.find("nests deeper than 64 levels"), std::string::npos) << error;

  // Real configurations nest a few levels: 64 is still accepted.
  std::ofstream(dir.File("policy.json"))
      << R"({"a":)" << std::string(63, '[') << std::string(63, ']') << "}";
  auto parsed = ParseKernelConfig(doc, dir.File("airlock.json"), "/p");
  EXPECT_TRUE(parsed.ok()) << parsed.status().ToString();
}

}  // namespace
}  // namespace airlock
