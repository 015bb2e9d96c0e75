// Loads the built rules policy plugin through the C ABI and evaluates
// requests against a policy document.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "airlock/c/airlock_plugin.h"
#include "airlock/cpp/abi_util.hpp"
#include "airlock/cpp/values.hpp"
#include "tests/support/dl_plugin.h"

namespace airlock {
namespace {

using testing::DlInstance;
using testing::DlPlugin;
using testing::FakeHost;

constexpr char kPluginPath[] = AIRLOCK_PLUGIN_DIR "/airlock_policy_rules.so";

Json Policy() {
  return Json::parse(R"({
    "version": 1,
    "default_max_window_seconds": 3600,
    "rules": [
      {"name": "analysts-read-sales", "effect": "allow",
       "subjects": {"groups": ["analysts"]},
       "datasets": ["customers", "orders"],
       "max_window_seconds": 7200,
       "obligations": {"customers": {"columns": ["id", "email", "country"],
                                     "masks": {"email": "last4"},
                                     "row_filter": [{"column": "country", "op": "eq", "value": "DE"}]}}},
      {"name": "bob-reads-orders", "effect": "allow",
       "subjects": {"users": ["bob"]}, "datasets": ["orders"]},
      {"name": "alice-reads-payroll", "effect": "allow",
       "subjects": {"users": ["alice"], "kinds": ["human"]}, "datasets": ["payroll"],
       "approval": {"groups": ["hr-owners"], "count": 1, "timeout_seconds": 86400}},
      {"name": "agents-read-public", "effect": "allow",
       "subjects": {"kinds": ["agent"]}, "tags": ["public"]},
      {"name": "fraud-review", "effect": "allow",
       "subjects": {"groups": ["fraud"]}, "datasets": ["transactions"],
       "purposes": ["fraud-review"], "max_window_seconds": 1800},
      {"name": "no-contractors", "effect": "deny",
       "subjects": {"groups": ["contractors"]}, "datasets": ["*"]},
      {"name": "pii-needs-two", "effect": "allow",
       "subjects": {"groups": ["analysts"]}, "tags": ["pii"],
       "max_window_seconds": 900,
       "approval": {"groups": ["data-owners", "security"], "count": 2, "timeout_seconds": 3600},
       "obligations": {"*": {"columns": ["id", "email", "phone"],
                             "masks": {"email": "redact", "phone": "last4"},
                             "row_filter": [{"column": "active", "op": "eq", "value": true}]}}},
      {"name": "tenant-t2-only", "effect": "allow",
       "subjects": {"tenants": ["t2"]}, "datasets": ["t2-ledger"]},
      {"name": "no-exports-to-agents", "effect": "deny",
       "subjects": {"kinds": ["agent"]}, "datasets": ["exports"], "purposes": ["exfiltrate"]}
    ]})");
}

Json Metadata() {
  return Json::array({{{"name", "customers"}, {"tags", {"pii", "sales"}}},
                      {{"name", "orders"}, {"tags", {"sales"}}},
                      {{"name", "weather"}, {"tags", {"public"}}},
                      {{"name", "exports"}, {"tags", {"public"}}}});
}

Json Principal(const std::string& subject, std::vector<std::string> groups = {},
               const std::string& kind = "human", const std::string& tenant = "") {
  Json p = {{"subject", subject}, {"kind", kind}, {"groups", groups}};
  if (!tenant.empty()) p["tenant"] = tenant;
  return p;
}

Json Input(const Json& principal, std::vector<std::string> datasets,
           const std::string& purpose = "") {
  return {{"principal", principal},
          {"request",
           {{"id", "r1"}, {"datasets", datasets}, {"window_seconds", 600}, {"purpose", purpose}}},
          {"datasets", Metadata()},
          {"now", 1767225600}};
}

class RulesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    plugin_ = DlPlugin::Load(kPluginPath, host_.services(), &error);
    ASSERT_NE(plugin_, nullptr) << error;
    ASSERT_EQ(plugin_->info().kind, AIRLOCK_KIND_POLICY);
    instance_ = std::make_unique<DlInstance<airlock_type_policy_vtable>>(table(), Policy().dump());
    ASSERT_TRUE(instance_->ok()) << instance_->error();
  }

  const airlock_type_policy_vtable& table() const {
    return plugin_->vtable<airlock_type_policy_vtable>();
  }

  Json Evaluate(const Json& input) {
    const std::string text = input.dump();
    abi::BufferHolder buffer;
    abi::ErrorHolder error;
    const auto rc =
        table().evaluate(instance_->get(), text.data(), text.size(), buffer.get(), error.get());
    EXPECT_EQ(rc, AIRLOCK_OK) << error.message();
    if (rc != AIRLOCK_OK) return Json();
    Json decision = Json::parse(buffer.view());
    // Whatever we answer must read back as a valid decision.
    auto typed = Decision::FromJson(decision);
    EXPECT_TRUE(typed.ok()) << typed.status().ToString() << " in " << decision.dump();
    return decision;
  }

  std::pair<airlock_type_status, std::string> Reload(const Json& document) {
    const std::string text = document.dump();
    abi::ErrorHolder error;
    const auto rc = table().reload(instance_->get(), text.data(), text.size(), error.get());
    return {rc, error.message()};
  }

  FakeHost host_;
  std::unique_ptr<DlPlugin> plugin_;
  std::unique_ptr<DlInstance<airlock_type_policy_vtable>> instance_;
};

struct Case {
  const char* name;
  Json principal;
  std::vector<std::string> datasets;
  std::string purpose;
  std::string effect;
  std::string reason;  // substring
  std::string rule;    // exact
  int64_t window;      // checked when the effect is not deny
};

TEST_F(RulesTest, DecisionTable) {
  const std::vector<Case> cases = {
      {"user match",
       Principal("bob"),
       {"orders"},
       "",
       "allow",
       "allowed by bob-reads-orders",
       "bob-reads-orders",
       3600},
      {"group match",
       Principal("carol", {"analysts"}),
       {"orders"},
       "",
       "allow",
       "allowed by analysts-read-sales",
       "analysts-read-sales",
       7200},
      {"user and group rules both cover",
       Principal("bob", {"analysts"}),
       {"orders"},
       "",
       "allow",
       "allowed by",
       "analysts-read-sales, bob-reads-orders",
       3600},
      {"kind match via tag",
       Principal("bot", {}, "agent"),
       {"weather"},
       "",
       "allow",
       "agents-read-public",
       "agents-read-public",
       3600},
      {"kind mismatch",
       Principal("dave"),
       {"weather"},
       "",
       "deny",
       "no rule allows dave to read weather",
       "",
       0},
      {"kind restricts users",
       Principal("alice", {}, "agent"),
       {"payroll"},
       "",
       "deny",
       "no rule allows alice to read payroll",
       "",
       0},
      {"tag match",
       Principal("carol", {"analysts"}),
       {"customers"},
       "",
       "needs_approval",
       "required by pii-needs-two",
       "analysts-read-sales, pii-needs-two",
       900},
      {"purpose fits",
       Principal("erin", {"fraud"}),
       {"transactions"},
       "fraud-review",
       "allow",
       "fraud-review",
       "fraud-review",
       1800},
      {"purpose mismatch",
       Principal("erin", {"fraud"}),
       {"transactions"},
       "marketing",
       "deny",
       "no rule allows erin to read transactions",
       "",
       0},
      {"purpose missing",
       Principal("erin", {"fraud"}),
       {"transactions"},
       "",
       "deny",
       "no rule allows erin",
       "",
       0},
      {"deny overrides allow",
       Principal("frank", {"analysts", "contractors"}),
       {"orders"},
       "",
       "deny",
       "rule 'no-contractors' denies frank access to orders",
       "no-contractors",
       0},
      {"deny on any dataset",
       Principal("frank", {"contractors"}),
       {"weather", "orders"},
       "",
       "deny",
       "no-contractors",
       "no-contractors",
       0},
      {"deny needs its purpose",
       Principal("bot", {}, "agent"),
       {"exports"},
       "reporting",
       "allow",
       "agents-read-public",
       "agents-read-public",
       3600},
      {"deny with purpose",
       Principal("bot", {}, "agent"),
       {"exports"},
       "exfiltrate",
       "deny",
       "no-exports-to-agents",
       "no-exports-to-agents",
       0},
      {"uncovered dataset",
       Principal("carol", {"analysts"}),
       {"orders", "payroll"},
       "",
       "deny",
       "no rule allows carol to read payroll",
       "",
       0},
      {"unknown dataset",
       Principal("carol", {"analysts"}),
       {"nope"},
       "",
       "deny",
       "no rule allows carol to read nope",
       "",
       0},
      {"tenant match",
       Principal("gina", {}, "service", "t2"),
       {"t2-ledger"},
       "",
       "allow",
       "tenant-t2-only",
       "tenant-t2-only",
       3600},
      {"tenant mismatch",
       Principal("gina", {}, "service", "t1"),
       {"t2-ledger"},
       "",
       "deny",
       "no rule allows gina",
       "",
       0},
      {"no datasets", Principal("carol", {"analysts"}), {}, "", "deny", "names no datasets", "", 0},
      {"duplicate datasets",
       Principal("bob"),
       {"orders", "orders"},
       "",
       "allow",
       "bob-reads-orders",
       "bob-reads-orders",
       3600},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Json d = Evaluate(Input(c.principal, c.datasets, c.purpose));
    ASSERT_TRUE(d.is_object());
    EXPECT_EQ(d["effect"], c.effect) << d.dump();
    EXPECT_NE(d["reason"].get<std::string>().find(c.reason), std::string::npos) << d.dump();
    EXPECT_EQ(d["rule"], c.rule) << d.dump();
    if (c.effect != "deny") {
      EXPECT_EQ(d["max_window_seconds"], c.window) << d.dump();
    }
  }
}

TEST_F(RulesTest, ApprovalRequirementsMerge) {
  // alice (analyst) asks for customers (pii: 2 of data-owners/security, 1h)
  // and payroll (1 of hr-owners, 24h).
  Json d = Evaluate(Input(Principal("alice", {"analysts"}), {"customers", "payroll"}));
  ASSERT_EQ(d["effect"], "needs_approval") << d.dump();
  EXPECT_EQ(d["approval"]["groups"], Json({"hr-owners", "data-owners", "security"}));  // rule order
  EXPECT_EQ(d["approval"]["count"], 2);
  EXPECT_EQ(d["approval"]["timeout_seconds"], 3600);
  EXPECT_EQ(d["max_window_seconds"], 900);  // min(7200, 900, default 3600)
  EXPECT_EQ(d["rule"], "analysts-read-sales, alice-reads-payroll, pii-needs-two");
  EXPECT_NE(d["reason"].get<std::string>().find("required by alice-reads-payroll, pii-needs-two"),
            std::string::npos)
      << d.dump();
}

TEST_F(RulesTest, ObligationsMergePerDataset) {
  Json d = Evaluate(Input(Principal("carol", {"analysts"}), {"customers", "orders"}));
  ASSERT_EQ(d["effect"], "needs_approval") << d.dump();
  const Json& customers = d["obligations"]["customers"];
  // Columns intersect: {id,email,country} ∩ {id,email,phone}.
  EXPECT_EQ(customers["columns"], Json({"id", "email"}));
  // Masks unite; on a conflict the stronger mask (redact over last4) wins.
  EXPECT_EQ(customers["masks"], Json({{"email", "redact"}, {"phone", "last4"}}));
  // Row filters concatenate (all must hold).
  EXPECT_EQ(customers["row_filter"], Json::parse(R"([{"column":"country","op":"eq","value":"DE"},
                            {"column":"active","op":"eq","value":true}])"));
  // orders has no obligations: an unrestricted scope.
  EXPECT_EQ(d["obligations"]["orders"]["columns"], Json::array());
  EXPECT_EQ(d["obligations"]["orders"]["row_filter"], Json::array());
}

TEST_F(RulesTest, CleanRoomsMergeToTheStrictest) {
  Json doc = Json::parse(R"({"version": 1, "rules": [
    {"name": "a", "effect": "allow", "datasets": ["x"], "obligations": {"x": {"aggregate_only":
      {"min_group_size": 5, "allowed_functions": ["count", "sum"], "dimensions": ["r", "c"],
       "metrics": ["m"]}}}},
    {"name": "b", "effect": "allow", "datasets": ["x"], "obligations": {"x": {"aggregate_only":
      {"min_group_size": 10, "allowed_functions": ["sum", "avg"], "dimensions": ["r"],
       "metrics": ["m", "n"]}}}},
    {"name": "c", "effect": "allow", "datasets": ["y"]}]})");
  ASSERT_EQ(Reload(doc).first, AIRLOCK_OK);
  Json d = Evaluate(Input(Principal("zed"), {"x", "y"}));
  ASSERT_EQ(d["effect"], "allow") << d.dump();
  EXPECT_EQ(d["obligations"]["x"]["aggregate_only"],
            Json::parse(R"({"min_group_size": 10, "allowed_functions": ["sum"],
                            "dimensions": ["r"], "metrics": ["m"]})"));
  // A dataset no clean room covers stays open to SQL.
  EXPECT_FALSE(d["obligations"]["y"].contains("aggregate_only")) << d.dump();
}

// Any rule that keeps the query text has it kept; the others say nothing.
TEST_F(RulesTest, QueryTextAuditMergesToAnyRuleThatAsksForIt) {
  Json doc = Json::parse(R"({"version": 1, "rules": [
    {"name": "a", "effect": "allow", "datasets": ["x"], "obligations": {"x": {"audit_query_text": true}}},
    {"name": "b", "effect": "allow", "datasets": ["x", "y"]}]})");
  ASSERT_EQ(Reload(doc).first, AIRLOCK_OK);
  Json d = Evaluate(Input(Principal("zed"), {"x", "y"}));
  ASSERT_EQ(d["effect"], "allow") << d.dump();
  EXPECT_EQ(d["obligations"]["x"].value("audit_query_text", false), true) << d.dump();
  EXPECT_FALSE(d["obligations"]["y"].contains("audit_query_text")) << d.dump();
}

TEST_F(RulesTest, DisjointColumnRestrictionsDeny) {
  Json doc = Json::parse(R"({"version": 1, "rules": [
    {"name": "a", "effect": "allow", "datasets": ["x"], "obligations": {"x": {"columns": ["c1"]}}},
    {"name": "b", "effect": "allow", "datasets": ["x"], "obligations": {"x": {"columns": ["c2"]}}}]})");
  ASSERT_EQ(Reload(doc).first, AIRLOCK_OK);
  Json d = Evaluate(Input(Principal("zed"), {"x"}));
  EXPECT_EQ(d["effect"], "deny");
  EXPECT_NE(d["reason"].get<std::string>().find("leave no column of x readable"), std::string::npos)
      << d.dump();
}

TEST_F(RulesTest, ReloadReplacesThePolicy) {
  EXPECT_EQ(Evaluate(Input(Principal("zed"), {"orders"}))["effect"], "deny");
  Json open = {{"version", 1},
               {"rules", {{{"name", "open"}, {"effect", "allow"}, {"datasets", {"*"}}}}}};
  auto [rc, message] = Reload(open);
  ASSERT_EQ(rc, AIRLOCK_OK) << message;
  Json d = Evaluate(Input(Principal("zed"), {"orders"}));
  EXPECT_EQ(d["effect"], "allow");
  EXPECT_EQ(d["rule"], "open");
  EXPECT_EQ(d["max_window_seconds"], 3600);  // built-in default
}

TEST_F(RulesTest, BadReloadKeepsTheOldPolicy) {
  Json bad = Policy();
  bad["rules"][2]["approval"]["count"] = 0;
  auto [rc, message] = Reload(bad);
  EXPECT_EQ(rc, AIRLOCK_ERR_INVALID_ARGUMENT);
  EXPECT_NE(message.find("rules[2].approval.count must be >= 1"), std::string::npos) << message;
  EXPECT_NE(message.find("previous policy stays in force"), std::string::npos) << message;
  // Still the original policy: bob may read orders, zed may not.
  EXPECT_EQ(Evaluate(Input(Principal("bob"), {"orders"}))["effect"], "allow");
  EXPECT_EQ(Evaluate(Input(Principal("zed"), {"orders"}))["effect"], "deny");
  auto [rc2, message2] = Reload(Json::parse("[]"));
  EXPECT_EQ(rc2, AIRLOCK_ERR_INVALID_ARGUMENT);
  const std::string not_json = "{";
  abi::ErrorHolder error;
  EXPECT_EQ(table().reload(instance_->get(), not_json.data(), not_json.size(), error.get()),
            AIRLOCK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(Evaluate(Input(Principal("bob"), {"orders"}))["effect"], "allow");
}

// The strictest purpose_min_length of the rules used reaches the decision,
// named in its reason; a rule that is not used does not impose it.
TEST_F(RulesTest, TheLongestPurposeMinimumOfTheUsedRulesReachesTheDecision) {
  Json doc = {{"version", 1},
              {"rules",
               {{{"name", "orders-brief"},
                 {"effect", "allow"},
                 {"datasets", {"orders"}},
                 {"purpose_min_length", 10}},
                {{"name", "customers-justified"},
                 {"effect", "allow"},
                 {"datasets", {"customers"}},
                 {"purpose_min_length", 40}},
                {{"name", "weather-open"}, {"effect", "allow"}, {"datasets", {"weather"}}}}}};
  auto [rc, message] = Reload(doc);
  ASSERT_EQ(rc, AIRLOCK_OK) << message;
  Json both = Evaluate(Input(Principal("zed"), {"orders", "customers"}));
  EXPECT_EQ(both["effect"], "allow");
  EXPECT_EQ(both["purpose_min_length"], 40) << both.dump();
  EXPECT_NE(both["reason"].get<std::string>().find("at least 40 characters (customers-justified)"),
            std::string::npos)
      << both.dump();
  EXPECT_EQ(Evaluate(Input(Principal("zed"), {"orders"}))["purpose_min_length"], 10);
  EXPECT_FALSE(Evaluate(Input(Principal("zed"), {"weather"})).contains("purpose_min_length"));

  Json zero = doc;
  zero["rules"][0]["purpose_min_length"] = 0;
  auto [rc0, message0] = Reload(zero);
  EXPECT_EQ(rc0, AIRLOCK_ERR_INVALID_ARGUMENT);
  EXPECT_NE(message0.find("rules[0].purpose_min_length must be >= 1"), std::string::npos)
      << message0;
  Json huge = doc;
  huge["rules"][0]["purpose_min_length"] = 5000;
  auto [rc1, message1] = Reload(huge);
  EXPECT_EQ(rc1, AIRLOCK_ERR_INVALID_ARGUMENT);
  EXPECT_NE(message1.find("rules[0].purpose_min_length must be <= 1000"), std::string::npos)
      << message1;
  Json on_deny = doc;
  on_deny["rules"][0]["effect"] = "deny";
  auto [rc2, message2] = Reload(on_deny);
  EXPECT_EQ(rc2, AIRLOCK_ERR_INVALID_ARGUMENT);
  EXPECT_NE(message2.find("not allowed on a deny rule"), std::string::npos) << message2;
}

TEST_F(RulesTest, ValidationNamesThePath) {
  struct Invalid {
    const char* name;
    std::string patch;  // JSON merge patch applied to rules[1] unless it has "/"
    std::string expected;
  };
  auto with_rule = [](const Json& rule) {
    Json doc = {{"version", 1},
                {"rules", {{{"name", "ok"}, {"effect", "allow"}, {"datasets", {"a"}}}, rule}}};
    return doc;
  };
  auto base = [] { return Json{{"name", "r"}, {"effect", "allow"}, {"datasets", {"a"}}}; };
  std::vector<std::pair<Json, std::string>> cases;
  {
    Json r = base();
    r["effect"] = "permit";
    cases.emplace_back(with_rule(r), "rules[1].effect 'permit' is unknown");
  }
  {
    Json r = base();
    r["obligations"] = {
        {"a", {{"row_filter", {{{"column", "x"}, {"op", "between"}, {"value", 1}}}}}}};
    cases.emplace_back(with_rule(r),
                       "rules[1].obligations.a.row_filter[0].op 'between' is unknown");
  }
  {
    Json r = base();
    r["obligations"] = {{"a", {{"row_filter", {{{"column", "x"}, {"op", "in"}, {"value", 1}}}}}}};
    cases.emplace_back(with_rule(r), "rules[1].obligations.a.row_filter[0]");
  }
  {
    Json r = base();
    r["obligations"] = {{"a", {{"masks", {{"email", "scramble"}}}}}};
    cases.emplace_back(with_rule(r), "rules[1].obligations.a.masks.email: unknown mask function");
  }
  {
    Json r = base();
    r["obligations"] = {{"a", {{"columns", Json::array()}}}};
    cases.emplace_back(with_rule(r), "rules[1].obligations.a.columns must name at least one");
  }
  {
    Json r = base();
    r["obligations"] = {{"a", {{"colums", {"x"}}}}};
    cases.emplace_back(with_rule(r), "rules[1].obligations.a: unknown key 'colums'");
  }
  {
    Json r = base();
    r["approval"] = {{"groups", {"g"}}, {"count", 0}};
    cases.emplace_back(with_rule(r), "rules[1].approval.count must be >= 1");
  }
  {
    Json r = base();
    r["approval"] = {{"count", 1}};
    cases.emplace_back(with_rule(r), "rules[1].approval.groups must name at least one group");
  }
  {
    Json r = base();
    r["effect"] = "deny";
    r["approval"] = {{"groups", {"g"}}};
    cases.emplace_back(with_rule(r), "rules[1].approval is not allowed on a deny rule");
  }
  {
    Json r = base();
    r.erase("datasets");
    cases.emplace_back(with_rule(r), "rules[1] must name datasets or tags");
  }
  {
    Json r = base();
    r["name"] = "ok";
    cases.emplace_back(with_rule(r), "rules[1].name 'ok' duplicates rules[0].name");
  }
  {
    Json r = base();
    r["subjects"] = {{"kinds", {"robot"}}};
    cases.emplace_back(with_rule(r), "rules[1].subjects.kinds[0] must be human, service or agent");
  }
  {
    Json r = base();
    r["subjects"] = {{"user", {"alice"}}};
    cases.emplace_back(with_rule(r), "rules[1].subjects: unknown key 'user'");
  }
  {
    Json r = base();
    r["max_window_seconds"] = 0;
    cases.emplace_back(with_rule(r), "rules[1].max_window_seconds must be >= 1");
  }
  {
    Json r = base();
    r["datasets"] = {"a", 3};
    cases.emplace_back(with_rule(r), "rules[1].datasets[1] must be a non-empty string");
  }
  {
    Json doc = with_rule(base());
    doc["rulez"] = Json::array();
    cases.emplace_back(doc, "the policy document: unknown key 'rulez'");
  }
  {
    Json doc = with_rule(base());
    doc["version"] = 2;
    cases.emplace_back(doc, "version must be 1");
  }
  {
    Json doc = with_rule(base());
    doc.erase("version");
    cases.emplace_back(doc, "version is required");
  }
  {
    Json doc = with_rule(base());
    doc["default_max_window_seconds"] = -5;
    cases.emplace_back(doc, "default_max_window_seconds must be >= 1");
  }
  cases.emplace_back(Json{{"version", 1}}, "rules is required");
  {
    const Json room = {
        {"min_group_size", 5}, {"allowed_functions", {"count"}}, {"dimensions", {"region"}}};
    auto with_room = [&](const std::string& key, const Json& value, Json extra = Json::object()) {
      Json r = base();
      Json clean = room;
      clean[key] = value;
      extra["aggregate_only"] = clean;
      r["obligations"] = {{"a", extra}};
      return with_rule(r);
    };
    {
      Json r = base();
      r["obligations"] = {{"a", {{"audit_query_text", "yes"}}}};
      cases.emplace_back(with_rule(r),
                         "rules[1].obligations.a.audit_query_text must be true or false");
    }
    cases.emplace_back(with_room("min_group_size", 0),
                       "rules[1].obligations.a.aggregate_only.min_group_size must be at least 1");
    cases.emplace_back(with_room("allowed_functions", {"median"}),
                       "rules[1].obligations.a.aggregate_only.allowed_functions: 'median' is not");
    cases.emplace_back(with_room("salt", 1),
                       "rules[1].obligations.a.aggregate_only: unknown key 'salt'");
    cases.emplace_back(with_room("dimensions", {"region"}, {{"columns", {"amount"}}}),
                       "aggregate_only names column 'region', which the obligation's columns "
                       "leave out");
  }

  for (const auto& [doc, expected] : cases) {
    SCOPED_TRACE(expected);
    DlInstance<airlock_type_policy_vtable> instance(table(), doc.dump());
    EXPECT_EQ(instance.status(), AIRLOCK_ERR_INVALID_ARGUMENT);
    EXPECT_NE(instance.error().find(expected), std::string::npos) << instance.error();
  }
}

// --- time-of-day windows ----------------------------------------------------

Json WindowPolicy() {
  return Json::parse(R"({"version": 1, "rules": [
    {"name": "office-hours", "effect": "allow", "subjects": {"groups": ["staff"]},
     "datasets": ["ledger"],
     "when": {"timezone": "Europe/Berlin", "days": ["mon", "tue", "wed", "thu", "fri"],
              "from": "08:00", "to": "18:00"}},
    {"name": "sunday-early", "effect": "allow", "subjects": {"groups": ["night"]},
     "datasets": ["ledger"],
     "when": {"timezone": "Europe/Berlin", "days": ["sun"], "from": "03:00", "to": "04:00"}},
    {"name": "freeze", "effect": "deny", "subjects": {"groups": ["staff", "night"]},
     "datasets": ["ledger"],
     "when": {"timezone": "UTC", "days": ["fri"], "from": "22:00", "to": "02:00"}},
    {"name": "weekend-desk", "effect": "allow", "subjects": {"groups": ["staff"]},
     "datasets": ["ledger"], "purposes": ["on-call"]}
  ]})");
}

Json InputAt(const Json& principal, std::vector<std::string> datasets, int64_t now,
             const std::string& purpose = "") {
  Json input = Input(principal, std::move(datasets), purpose);
  input["now"] = now;
  return input;
}

TEST_F(RulesTest, TimeWindowsInTheirZoneIncludingDaylightSavingEdges) {
  ASSERT_EQ(Reload(WindowPolicy()).first, AIRLOCK_OK);
  struct WindowCase {
    const char* name;
    const char* group;
    int64_t now;
    std::string effect;
    std::string reason;  // substring
  };
  const std::vector<WindowCase> cases = {
      // Summer: Berlin is UTC+2.
      {"mon 10:00 Berlin", "staff", 1748851200, "allow", "allowed by office-hours"},
      {"mon 07:59 Berlin", "staff", 1748843940, "deny",
       "no rule allows sam to read ledger now; rule 'office-hours' allows it only mon-fri "
       "08:00-18:00 Europe/Berlin (it is mon 07:59 there)"},
      {"mon 17:59 Berlin", "staff", 1748879940, "allow", "office-hours"},
      {"mon 18:00 Berlin (to is exclusive)", "staff", 1748880000, "deny", "it is mon 18:00 there"},
      {"sat 10:15 Berlin", "staff", 1749284100, "deny", "it is sat 10:15 there"},
      // Spring forward on 2025-03-30: 02:00 CET becomes 03:00 CEST at 01:00 UTC.
      {"01:59:59 CET, before the jump", "night", 1743296399, "deny", "it is sun 01:59 there"},
      {"03:00 CEST, right after the jump", "night", 1743296400, "allow", "sunday-early"},
      {"03:59:59 CEST", "night", 1743299999, "allow", "sunday-early"},
      {"04:00 CEST", "night", 1743300000, "deny", "it is sun 04:00 there"},
      // Fall back on 2025-10-26: 06:30 UTC is 08:30 CEST on Friday, 07:30 CET on Monday.
      {"fri 08:30 CEST", "staff", 1761287400, "allow", "office-hours"},
      {"mon 07:30 CET (same UTC time of day)", "staff", 1761546600, "deny",
       "it is mon 07:30 there"},
      {"mon 08:30 CET", "staff", 1761550200, "allow", "office-hours"},
  };
  for (const WindowCase& c : cases) {
    SCOPED_TRACE(c.name);
    Json d = Evaluate(InputAt(Principal("sam", {c.group}), {"ledger"}, c.now));
    EXPECT_EQ(d["effect"], c.effect) << d.dump();
    EXPECT_NE(d["reason"].get<std::string>().find(c.reason), std::string::npos) << d.dump();
  }
}

TEST_F(RulesTest, DenyWindowRunsOvernightAndOverridesAllow) {
  ASSERT_EQ(Reload(WindowPolicy()).first, AIRLOCK_OK);
  auto on_call = [&](int64_t now) {
    return Evaluate(InputAt(Principal("sam", {"staff"}), {"ledger"}, now, "on-call"));
  };
  Json d = on_call(1749250800);  // fri 23:00 UTC: inside the freeze
  EXPECT_EQ(d["effect"], "deny") << d.dump();
  EXPECT_EQ(d["rule"], "freeze");
  EXPECT_NE(d["reason"].get<std::string>().find("during fri 22:00-02:00 UTC"), std::string::npos)
      << d.dump();
  EXPECT_EQ(on_call(1749258000)["effect"], "deny");   // sat 01:00: the freeze opened on fri
  EXPECT_EQ(on_call(1749265200)["effect"], "allow");  // sat 03:00: after it
  EXPECT_EQ(on_call(1749164400)["effect"], "allow");  // thu 23:00: not a freeze day
  // Without a clock a window cannot be checked: allow windows do not apply, deny ones do.
  Json no_clock = InputAt(Principal("sam", {"staff"}), {"ledger"}, 0);
  d = Evaluate(no_clock);
  EXPECT_EQ(d["effect"], "deny") << d.dump();
}

TEST_F(RulesTest, MissingClockFailsClosed) {
  Json doc = Json::parse(R"({"version": 1, "rules": [
    {"name": "office", "effect": "allow", "datasets": ["ledger"],
     "when": {"timezone": "UTC", "from": "00:00", "to": "24:00"}}]})");
  ASSERT_EQ(Reload(doc).first, AIRLOCK_OK);
  Json d = Evaluate(InputAt(Principal("sam"), {"ledger"}, 0));
  EXPECT_EQ(d["effect"], "deny") << d.dump();
  EXPECT_NE(d["reason"].get<std::string>().find("the request carries no time"), std::string::npos)
      << d.dump();
  EXPECT_EQ(Evaluate(InputAt(Principal("sam"), {"ledger"}, 1748851200))["effect"], "allow");
}

TEST_F(RulesTest, InvalidTimeWindowsNameThePath) {
  auto with_when = [](const Json& when) {
    return Json{
        {"version", 1},
        {"rules", {{{"name", "r"}, {"effect", "allow"}, {"datasets", {"a"}}, {"when", when}}}}};
  };
  const std::vector<std::pair<Json, std::string>> cases = {
      {{{"timezone", "Mars/Olympus"}, {"from", "08:00"}, {"to", "10:00"}},
       "rules[0].when.timezone: time zone 'Mars/Olympus' is unknown"},
      {{{"timezone", "../../etc/passwd"}, {"from", "08:00"}, {"to", "10:00"}},
       "is not an IANA time zone name"},
      {{{"from", "08:00"}, {"to", "10:00"}}, "rules[0].when.timezone must be an IANA zone name"},
      {{{"timezone", "UTC"}, {"from", "8:00"}, {"to", "10:00"}},
       "rules[0].when.from must be a time \"HH:MM\""},
      {{{"timezone", "UTC"}, {"from", "08:00"}, {"to", "24:01"}},
       "rules[0].when.to must be a time"},
      {{{"timezone", "UTC"}, {"from", "08:00"}, {"to", "08:00"}}, "from and .to must differ"},
      {{{"timezone", "UTC"}, {"days", {"monday"}}, {"from", "08:00"}, {"to", "09:00"}},
       "rules[0].when.days[0] must be one of mon tue wed thu fri sat sun"},
      {{{"timezone", "UTC"}, {"days", Json::array()}, {"from", "08:00"}, {"to", "09:00"}},
       "rules[0].when.days must be a non-empty array"},
      {{{"timezone", "UTC"}, {"from", "08:00"}, {"to", "09:00"}, {"tz", "x"}},
       "rules[0].when: unknown key 'tz'"},
  };
  for (const auto& [when, expected] : cases) {
    SCOPED_TRACE(expected);
    DlInstance<airlock_type_policy_vtable> instance(table(), with_when(when).dump());
    EXPECT_EQ(instance.status(), AIRLOCK_ERR_INVALID_ARGUMENT);
    EXPECT_NE(instance.error().find(expected), std::string::npos) << instance.error();
  }
}

// --- approvals, masks, reasons -----------------------------------------------

TEST_F(RulesTest, TwoApproverRequirementAndMaskFunctionsReachTheDecision) {
  Json doc = Json::parse(R"({"version": 1, "rules": [
    {"name": "cards", "effect": "allow", "subjects": {"groups": ["payments"]},
     "datasets": ["cards"], "max_window_seconds": 600,
     "approval": {"groups": ["risk"], "count": 2, "timeout_seconds": 900},
     "obligations": {"cards": {"columns": ["id", "pan", "holder", "email"],
                               "masks": {"pan": "last4", "holder": "redact", "email": "hash"}}}}]})");
  ASSERT_EQ(Reload(doc).first, AIRLOCK_OK);
  Json d = Evaluate(Input(Principal("pat", {"payments"}), {"cards"}));
  ASSERT_EQ(d["effect"], "needs_approval") << d.dump();
  EXPECT_EQ(d["approval"]["count"], 2);
  EXPECT_EQ(d["approval"]["groups"], Json({"risk"}));
  EXPECT_EQ(d["approval"]["timeout_seconds"], 900);
  EXPECT_EQ(d["max_window_seconds"], 600);
  EXPECT_EQ(d["obligations"]["cards"]["masks"],
            Json({{"pan", "last4"}, {"holder", "redact"}, {"email", "hash"}}));
  EXPECT_EQ(d["rule"], "cards");
  EXPECT_EQ(d["reason"],
            "approval by 2 of risk required by cards; allowed by cards; window at most 600 s; "
            "scope of cards from cards");
}

TEST_F(RulesTest, CombinedReasonSaysWhichRuleImposedWhat) {
  // carol (analyst) reads customers: analysts-read-sales and pii-needs-two combine.
  Json d = Evaluate(Input(Principal("carol", {"analysts"}), {"customers", "orders"}));
  ASSERT_EQ(d["effect"], "needs_approval") << d.dump();
  EXPECT_EQ(d["reason"],
            "approval by 2 of data-owners, security required by pii-needs-two; allowed by "
            "analysts-read-sales, pii-needs-two; window at most 900 s (pii-needs-two); scope of "
            "customers from analysts-read-sales, pii-needs-two");
}

// --- scale ---------------------------------------------------------------------

TEST_F(RulesTest, TenThousandRulesOnlyCandidatesAreConsidered) {
  // 10,000 rules: per-dataset, per-group on a shared dataset, and "*" per user.
  Json doc = {{"version", 1}, {"rules", Json::array()}};
  for (int i = 0; i < 10000; ++i) {
    Json rule = {{"name", "r" + std::to_string(i)}, {"effect", "allow"}};
    switch (i % 3) {
      case 0:
        rule["datasets"] = {"ds-" + std::to_string(i)};
        break;
      case 1:
        rule["datasets"] = {"shared"};
        rule["subjects"] = {{"groups", {"g-" + std::to_string(i)}}};
        break;
      default:
        rule["datasets"] = {"*"};
        rule["subjects"] = {{"users", {"u-" + std::to_string(i)}}};
        rule["max_window_seconds"] = 60;
        break;
    }
    doc["rules"].push_back(rule);
  }
  DlInstance<airlock_type_policy_vtable> instance(table(), doc.dump());
  ASSERT_TRUE(instance.ok()) << instance.error();
  auto evaluate = [&](const Json& input) {
    const std::string text = input.dump();
    abi::BufferHolder buffer;
    abi::ErrorHolder error;
    EXPECT_EQ(table().evaluate(instance.get(), text.data(), text.size(), buffer.get(), error.get()),
              AIRLOCK_OK);
    return Json::parse(buffer.view());
  };
  Json d = evaluate(Input(Principal("u-5", {"g-4", "g-7"}), {"shared", "ds-9"}));
  EXPECT_EQ(d["effect"], "allow") << d.dump();
  EXPECT_EQ(d["rule"], "r4, r5, r7, r9");
  EXPECT_EQ(d["max_window_seconds"], 60);
  d = evaluate(Input(Principal("u-6", {"g-3"}), {"shared"}));
  EXPECT_EQ(d["effect"], "deny") << d.dump();

  // How fast candidate lookup keeps this whatever the document size is
  // measured in bench/policy (1, 100 and 10,000 rules).
}

TEST_F(RulesTest, HundredRulesCombineIntoOneDecision) {
  Json doc = {{"version", 1}, {"rules", Json::array()}};
  for (int i = 0; i < 100; ++i) {
    Json rule = {{"name", "rule-" + std::to_string(i)},
                 {"effect", i % 10 == 9 ? "deny" : "allow"},
                 {"subjects", {{"groups", {"group-" + std::to_string(i % 17)}}}},
                 {"datasets", {"dataset-" + std::to_string(i % 25)}},
                 {"tags", {"tag-" + std::to_string(i % 7)}}};
    const bool deny = i % 10 == 9;
    if (!deny && i % 3 == 0) rule["approval"] = {{"groups", {"owners"}}, {"count", 1}};
    if (!deny && i % 4 == 0) {
      rule["obligations"] = {{"dataset-" + std::to_string(i % 25),
                              {{"columns", {"a", "b", "c"}},
                               {"masks", {{"b", "hash"}}},
                               {"row_filter", {{{"column", "a"}, {"op", "gt"}, {"value", 1}}}}}}};
    }
    doc["rules"].push_back(rule);
  }
  DlInstance<airlock_type_policy_vtable> instance(table(), doc.dump());
  ASSERT_TRUE(instance.ok()) << instance.error();
  Json input = Input(Principal("perf", {"group-1", "group-2", "group-3"}),
                     {"dataset-1", "dataset-2", "dataset-3"});
  input["datasets"] = Json::array({{{"name", "dataset-1"}, {"tags", {"tag-1"}}},
                                   {{"name", "dataset-2"}, {"tags", {"tag-2"}}},
                                   {{"name", "dataset-3"}, {"tags", {"tag-3"}}}});
  const std::string text = input.dump();
  // The whole path: candidates, merge, approval. (Its speed is measured in
  // bench/policy, not here: a timed test fails on a busy machine.)
  abi::BufferHolder buffer;
  abi::ErrorHolder error;
  ASSERT_EQ(table().evaluate(instance.get(), text.data(), text.size(), buffer.get(), error.get()),
            AIRLOCK_OK);
  Json d = Json::parse(buffer.view());
  ASSERT_EQ(d["effect"], "needs_approval") << d.dump();
  ASSERT_EQ(d["rule"],
            "rule-1, rule-2, rule-3, rule-36, rule-37, rule-52, rule-53, rule-71, rule-86, "
            "rule-87")
      << d.dump();
}

}  // namespace
}  // namespace airlock
