// Tenancy: which tenant a principal belongs to, what it reaches and who
// administers what; and the audit tagger that marks every record with the
// tenant it belongs to.
#include "kernel/core/tenancy.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "kernel/audit/audit_log.h"
#include "kernel/core/tenant_audit_tagger.h"
#include "kernel/lifecycle/request_record.h"
#include "tests/support/temp_dir.h"

namespace airlock {
namespace {

using nlohmann::json;

TenantConfig Tenant(const std::string& name, std::vector<std::string> subjects,
                    std::vector<std::string> groups, std::vector<std::string> admin_groups) {
  TenantConfig t;
  t.name = name;
  t.subjects = std::move(subjects);
  t.groups = std::move(groups);
  t.admin_groups = std::move(admin_groups);
  return t;
}

// Two tenants; "platform-ops" administers the platform; site "east" is
// acme's, "west" globex's.
KernelConfig Tenanted() {
  KernelConfig c;
  c.admin_groups = {"platform-ops"};
  c.tenants.emplace("acme", Tenant("acme", {"alice"}, {"acme-staff"}, {"acme-admins"}));
  c.tenants.emplace("globex", Tenant("globex", {"gina"}, {"globex-staff"}, {"globex-admins"}));
  c.dataset_tenants = {{"orders", "acme"}, {"ledger", "globex"}};
  c.agents.agents["east"] = AgentEntry{"east", std::string(64, 'a'), "acme"};
  c.agents.agents["west"] = AgentEntry{"west", std::string(64, 'b'), "globex"};
  return c;
}

KernelConfig Untenanted() {
  KernelConfig c;
  c.admin_groups = {"platform-ops"};
  c.agents.agents["east"] = AgentEntry{"east", std::string(64, 'a'), ""};
  return c;
}

Principal Who(const std::string& subject, std::vector<std::string> groups = {},
              const std::string& tenant = "") {
  Principal p;
  p.subject = subject;
  p.groups = std::move(groups);
  p.tenant = tenant;
  return p;
}

// Assign: the tenant the identity gives, else the one (and only one) whose
// subjects or groups name the principal.

TEST(Tenancy, WithoutTenantsAssignLeavesThePrincipalAsItIs) {
  const KernelConfig config = Untenanted();
  const Tenancy tenancy(config);
  EXPECT_FALSE(tenancy.enabled());
  Principal nobody = Who("nobody");
  ASSERT_TRUE(tenancy.Assign(&nobody).ok());
  EXPECT_EQ(nobody.tenant, "");
  // Even a tenant the identity names (one this kernel does not know) stays.
  Principal claimed = Who("carol", {}, "initech");
  ASSERT_TRUE(tenancy.Assign(&claimed).ok());
  EXPECT_EQ(claimed.tenant, "initech");
}

TEST(Tenancy, AnIdentityGivenTenantIsKeptOnlyWhenItIsServedHere) {
  const KernelConfig config = Tenanted();
  const Tenancy tenancy(config);
  EXPECT_TRUE(tenancy.enabled());
  // The identity wins over the mapping (alice is listed under acme).
  Principal given = Who("alice", {"acme-staff"}, "globex");
  ASSERT_TRUE(tenancy.Assign(&given).ok());
  EXPECT_EQ(given.tenant, "globex");

  Principal unknown = Who("carol", {"acme-staff"}, "initech");
  const Status refused = tenancy.Assign(&unknown);
  EXPECT_EQ(refused.code(), StatusCode::kPermissionDenied) << refused.ToString();
  EXPECT_EQ(refused.message().find("acme"), std::string::npos) << "never which tenants exist";
  EXPECT_EQ(refused.message().find("globex"), std::string::npos);
  // Not even a platform admin may name a tenant that does not exist.
  Principal admin = Who("root", {"platform-ops"}, "initech");
  EXPECT_EQ(tenancy.Assign(&admin).code(), StatusCode::kPermissionDenied);
}

TEST(Tenancy, AssignMapsBySubjectOrGroup) {
  const KernelConfig config = Tenanted();
  const Tenancy tenancy(config);
  Principal by_subject = Who("alice");
  ASSERT_TRUE(tenancy.Assign(&by_subject).ok());
  EXPECT_EQ(by_subject.tenant, "acme");
  Principal by_subject2 = Who("gina", {"unrelated"});
  ASSERT_TRUE(tenancy.Assign(&by_subject2).ok());
  EXPECT_EQ(by_subject2.tenant, "globex");
  Principal by_group = Who("dave", {"unrelated", "globex-staff"});
  ASSERT_TRUE(tenancy.Assign(&by_group).ok());
  EXPECT_EQ(by_group.tenant, "globex");
  // A tenant's admin group alone does not make a member.
  Principal admin_only = Who("erin", {"acme-admins"});
  EXPECT_EQ(tenancy.Assign(&admin_only).code(), StatusCode::kPermissionDenied);
  // Listed twice under one tenant (subject and group) is still one tenant.
  Principal twice = Who("alice", {"acme-staff"});
  ASSERT_TRUE(tenancy.Assign(&twice).ok());
  EXPECT_EQ(twice.tenant, "acme");
}

TEST(Tenancy, AssignRefusesTwoTenantsAndNone) {
  const KernelConfig config = Tenanted();
  const Tenancy tenancy(config);
  Principal both = Who("alice", {"globex-staff"});
  Status refused = tenancy.Assign(&both);
  EXPECT_EQ(refused.code(), StatusCode::kPermissionDenied) << refused.ToString();
  EXPECT_EQ(both.tenant, "") << "an ambiguous principal is nobody's";
  EXPECT_EQ(refused.message().find("acme"), std::string::npos) << refused.message();
  EXPECT_EQ(refused.message().find("globex"), std::string::npos) << refused.message();
  Principal groups = Who("dave", {"acme-staff", "globex-staff"});
  EXPECT_EQ(tenancy.Assign(&groups).code(), StatusCode::kPermissionDenied);
  // Ambiguity is refused even for a platform admin.
  Principal admin_both = Who("root", {"platform-ops", "acme-staff", "globex-staff"});
  EXPECT_EQ(tenancy.Assign(&admin_both).code(), StatusCode::kPermissionDenied);

  Principal none = Who("mallory", {"outsiders"});
  refused = tenancy.Assign(&none);
  EXPECT_EQ(refused.code(), StatusCode::kPermissionDenied) << refused.ToString();
  EXPECT_EQ(none.tenant, "");

  // A platform admin may belong to none, and then has no tenant.
  Principal root = Who("root", {"platform-ops"});
  ASSERT_TRUE(tenancy.Assign(&root).ok());
  EXPECT_EQ(root.tenant, "");
  // A platform admin who is a member of one tenant is that tenant's.
  Principal member_admin = Who("root", {"platform-ops", "globex-staff"});
  ASSERT_TRUE(tenancy.Assign(&member_admin).ok());
  EXPECT_EQ(member_admin.tenant, "globex");
}

// Who administers what.

TEST(Tenancy, APlatformAdminAdministersEveryTenant) {
  const KernelConfig config = Tenanted();
  const Tenancy tenancy(config);
  const Principal root = Who("root", {"platform-ops"});
  EXPECT_TRUE(tenancy.IsPlatformAdmin(root));
  EXPECT_TRUE(tenancy.IsAdminOf(root, "acme"));
  EXPECT_TRUE(tenancy.IsAdminOf(root, "globex"));
  EXPECT_TRUE(tenancy.IsAdminOf(root, ""));
  EXPECT_TRUE(tenancy.IsAnyAdmin(root));
}

TEST(Tenancy, ATenantsAdminAdministersOnlyTheirOwnTenant) {
  const KernelConfig config = Tenanted();
  const Tenancy tenancy(config);
  const Principal admin = Who("ann", {"acme-admins"}, "acme");
  EXPECT_FALSE(tenancy.IsPlatformAdmin(admin));
  EXPECT_TRUE(tenancy.IsAdminOf(admin, "acme"));
  EXPECT_FALSE(tenancy.IsAdminOf(admin, "globex"));
  EXPECT_FALSE(tenancy.IsAdminOf(admin, "")) << "objects of no tenant are the platform's";
  EXPECT_TRUE(tenancy.IsAnyAdmin(admin));

  // acme's admin group held by a member of another tenant administers nothing.
  const Principal elsewhere = Who("gus", {"acme-admins"}, "globex");
  EXPECT_FALSE(tenancy.IsAdminOf(elsewhere, "acme"));
  EXPECT_FALSE(tenancy.IsAdminOf(elsewhere, "globex"));
  EXPECT_FALSE(tenancy.IsAnyAdmin(elsewhere));
  // Nor held by someone of no tenant.
  const Principal tenantless = Who("gus", {"acme-admins"});
  EXPECT_FALSE(tenancy.IsAdminOf(tenantless, "acme"));
  EXPECT_FALSE(tenancy.IsAnyAdmin(tenantless));

  const Principal member = Who("alice", {"acme-staff"}, "acme");
  EXPECT_FALSE(tenancy.IsAdminOf(member, "acme"));
  EXPECT_FALSE(tenancy.IsAnyAdmin(member));
}

TEST(Tenancy, WithoutTenantsTheAdminGroupsAreTheAdmins) {
  const KernelConfig config = Untenanted();
  const Tenancy tenancy(config);
  const Principal root = Who("root", {"platform-ops"});
  EXPECT_TRUE(tenancy.IsPlatformAdmin(root));
  EXPECT_TRUE(tenancy.IsAdminOf(root, ""));
  EXPECT_TRUE(tenancy.IsAnyAdmin(root));
  const Principal user = Who("alice", {"acme-admins"}, "acme");
  EXPECT_FALSE(tenancy.IsPlatformAdmin(user));
  EXPECT_FALSE(tenancy.IsAdminOf(user, "acme"));
  EXPECT_FALSE(tenancy.IsAnyAdmin(user));
}

// What a principal reaches.

TEST(Tenancy, APrincipalReachesItsOwnTenantOnly) {
  const KernelConfig tenanted = Tenanted();
  const Tenancy tenancy(tenanted);
  const Principal alice = Who("alice", {}, "acme");
  EXPECT_TRUE(tenancy.Reaches(alice, "acme"));
  EXPECT_FALSE(tenancy.Reaches(alice, "globex"));
  EXPECT_FALSE(tenancy.Reaches(alice, "acm"));
  EXPECT_FALSE(tenancy.Reaches(alice, "")) << "an object of no tenant is the platform admins'";
  // A principal without a tenant (not an admin) reaches nothing, not even
  // the objects of no tenant.
  EXPECT_FALSE(tenancy.Reaches(Who("nobody"), ""));
  EXPECT_FALSE(tenancy.Reaches(Who("nobody"), "acme"));

  const Principal root = Who("root", {"platform-ops"});
  EXPECT_TRUE(tenancy.Reaches(root, "acme"));
  EXPECT_TRUE(tenancy.Reaches(root, "globex"));
  EXPECT_TRUE(tenancy.Reaches(root, ""));

  const KernelConfig untenanted = Untenanted();
  const Tenancy open(untenanted);
  EXPECT_TRUE(open.Reaches(Who("nobody"), ""));
  EXPECT_TRUE(open.Reaches(alice, "globex"));
}

TEST(Tenancy, DatasetsSitesAndRequestsSayTheirTenant) {
  const KernelConfig config = Tenanted();
  const Tenancy tenancy(config);
  EXPECT_EQ(tenancy.DatasetTenant("orders"), "acme");
  EXPECT_EQ(tenancy.DatasetTenant("ledger"), "globex");
  EXPECT_EQ(tenancy.DatasetTenant("unknown"), "");
  EXPECT_EQ(tenancy.AgentTenant("east"), "acme");
  EXPECT_EQ(tenancy.AgentTenant("west"), "globex");
  EXPECT_EQ(tenancy.AgentTenant("north"), "");

  RequestRecord record;
  EXPECT_EQ(Tenancy::RequestTenant(record), "");
  record.requester = {{"subject", "alice"}, {"tenant", "acme"}};
  EXPECT_EQ(Tenancy::RequestTenant(record), "acme");
  record.requester = {{"subject", "alice"}, {"tenant", 7}};
  EXPECT_EQ(Tenancy::RequestTenant(record), "");
}

TEST(Tenancy, RequesterTenantReadsTheStoredText) {
  EXPECT_EQ(Tenancy::RequesterTenant(R"({"subject":"alice","tenant":"acme"})"), "acme");
  EXPECT_EQ(Tenancy::RequesterTenant(R"({"subject":"alice","groups":[]})"), "");
  EXPECT_EQ(Tenancy::RequesterTenant(""), "");
  EXPECT_EQ(Tenancy::RequesterTenant(R"({"subject":"alice","tenant":null})"), "");
  EXPECT_EQ(Tenancy::RequesterTenant(R"({"subject":"alice","tenant":["acme"]})"), "");
  // Malformed text names no tenant and does not throw.
  EXPECT_EQ(Tenancy::RequesterTenant(R"({"subject":"alice","tenant":"acme")"), "");
  EXPECT_EQ(Tenancy::RequesterTenant(R"("tenant")"), "");
  EXPECT_EQ(Tenancy::RequesterTenant(R"(["tenant","acme"])"), "");
  EXPECT_EQ(Tenancy::RequesterTenant(R"({"tenant")"), "");
  // "tenant" as a value, not a key, is no tenant.
  EXPECT_EQ(Tenancy::RequesterTenant(R"({"subject":"tenant"})"), "");
}

json Catalog() {
  return {{"datasets",
           {{{"name", "orders"}, {"connector", "files"}},
            {{"name", "ledger"}, {"connector", "files"}},
            {{"name", "legacy"}, {"connector", "files"}},  // configured before tenants: none
            {{"name", "sensors"}, {"site", {{"agent", "east"}, {"sync", "ok"}}}},
            {{"name", "meters"}, {"site", {{"agent", "west"}, {"sync", "ok"}}}},
            // A site dataset named like a configured dataset of another
            // tenant is its site's.
            {{"name", "ledger"}, {"site", {{"agent", "east"}}}}}},
          {"generated_at", "now"}};
}

std::vector<std::string> Names(const json& list, const char* key) {
  std::vector<std::string> names;
  for (const json& entry : list.at(key)) names.push_back(entry.value("name", ""));
  return names;
}

TEST(Tenancy, TheCatalogShowsOnlyTheTenantsDatasets) {
  const KernelConfig config = Tenanted();
  const Tenancy tenancy(config);
  const json acme = tenancy.VisibleCatalog(Who("alice", {}, "acme"), Catalog());
  EXPECT_EQ(Names(acme, "datasets"), (std::vector<std::string>{"orders", "sensors", "ledger"}));
  for (const json& entry : acme["datasets"]) EXPECT_EQ(entry.value("tenant", "?"), "acme");
  EXPECT_EQ(acme["datasets"][2]["site"]["agent"], "east") << "the site's ledger, not globex's";
  EXPECT_EQ(acme.value("generated_at", ""), "now") << "the rest of the document is kept";

  const json globex = tenancy.VisibleCatalog(Who("gina", {}, "globex"), Catalog());
  EXPECT_EQ(Names(globex, "datasets"), (std::vector<std::string>{"ledger", "meters"}));
  for (const json& entry : globex["datasets"]) EXPECT_EQ(entry.value("tenant", "?"), "globex");
  EXPECT_FALSE(globex["datasets"][0].contains("site"));

  // The platform admin sees all, each marked ("" for none).
  const json all = tenancy.VisibleCatalog(Who("root", {"platform-ops"}), Catalog());
  ASSERT_EQ(all["datasets"].size(), 6u);
  const std::vector<std::string> tenants = {"acme", "globex", "", "acme", "globex", "acme"};
  for (size_t i = 0; i < tenants.size(); ++i) {
    EXPECT_EQ(all["datasets"][i].value("tenant", "?"), tenants[i]) << i;
  }

  // A principal of no tenant sees nothing.
  EXPECT_TRUE(tenancy.VisibleCatalog(Who("nobody"), Catalog())["datasets"].empty());
  // Something that is not a catalog passes through.
  EXPECT_EQ(tenancy.VisibleCatalog(Who("alice", {}, "acme"), json{{"other", 1}}),
            (json{{"other", 1}}));
}

TEST(Tenancy, WithoutTenantsTheCatalogAndSitesAreUnchanged) {
  const KernelConfig config = Untenanted();
  const Tenancy tenancy(config);
  EXPECT_EQ(tenancy.VisibleCatalog(Who("alice"), Catalog()), Catalog());
  const json agents = {{"agents", {{{"name", "east"}}, {{"name", "west"}}}}};
  EXPECT_EQ(tenancy.VisibleAgents(Who("alice"), agents), agents);
}

TEST(Tenancy, SitesShowOnlyTheTenantsAgents) {
  const KernelConfig config = Tenanted();
  const Tenancy tenancy(config);
  const json agents = {{"agents",
                        {{{"name", "east"}, {"online", true}},
                         {{"name", "west"}, {"online", false}},
                         {{"name", "stale"}}}},  // enrolled, since removed from the configuration
                       {"count", 3}};
  const json acme = tenancy.VisibleAgents(Who("alice", {}, "acme"), agents);
  EXPECT_EQ(Names(acme, "agents"), std::vector<std::string>{"east"});
  EXPECT_EQ(acme["agents"][0].value("tenant", "?"), "acme");
  EXPECT_EQ(acme["agents"][0].value("online", false), true);
  EXPECT_EQ(acme.value("count", 0), 3);

  const json globex = tenancy.VisibleAgents(Who("gina", {}, "globex"), agents);
  EXPECT_EQ(Names(globex, "agents"), std::vector<std::string>{"west"});
  EXPECT_EQ(globex["agents"][0].value("tenant", "?"), "globex");

  const json all = tenancy.VisibleAgents(Who("root", {"platform-ops"}), agents);
  EXPECT_EQ(Names(all, "agents"), (std::vector<std::string>{"east", "west", "stale"}));
  EXPECT_EQ(all["agents"][2].value("tenant", "?"), "");
  EXPECT_TRUE(tenancy.VisibleAgents(Who("nobody"), agents)["agents"].empty());
}

// The audit tagger, on a real audit log.

class TenantAuditTaggerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = AuditLog::Open(dir_.File("audit.log"));
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    log_ = std::move(opened).value();
  }

  // The request tenants the lookup knows ("" for a request of no tenant).
  std::optional<std::string> Lookup(const std::string& id) {
    ++lookups_;
    const auto it = requests_.find(id);
    if (it == requests_.end()) return std::nullopt;
    return it->second;
  }
  TenantAuditTagger::RequestTenantLookup LookupFn() {
    return [this](const std::string& id) { return Lookup(id); };
  }

  // Every record in the log, oldest first.
  std::vector<json> Records() {
    auto read = log_->ReadBackward(std::nullopt, 1000);
    EXPECT_TRUE(read.ok()) << read.status().ToString();
    std::vector<json> records;
    if (!read.ok()) return records;
    for (auto it = read->rbegin(); it != read->rend(); ++it) records.push_back(it->record);
    return records;
  }

  test::TempDir dir_;
  std::unique_ptr<AuditLog> log_;
  std::map<std::string, std::string> requests_ = {
      {"req_acme", "acme"}, {"req_globex", "globex"}, {"req_old", ""}};
  std::atomic<int> lookups_{0};
};

TEST_F(TenantAuditTaggerTest, EveryRecordSaysItsTenant) {
  const KernelConfig config = Tenanted();
  const Tenancy tenancy(config);
  TenantAuditTagger tagger(&tenancy, LookupFn(), log_.get());

  const json principal_acme = {{"subject", "alice"}, {"tenant", "acme"}};
  const json actor_globex = {{"subject", "gina"}, {"tenant", "globex"}};
  const std::vector<json> events = {
      // 0: says its tenant: kept, even against the request's.
      {{"event", "tenant.probe_refused"}, {"request_id", "req_acme"}, {"tenant", "globex"}},
      // 1: an explicit null is kept too.
      {{"event", "kernel.note"}, {"tenant", nullptr}, {"principal", principal_acme}},
      // 2: the request's, over the site's and the principal's.
      {{"event", "request.approved"},
       {"request_id", "req_globex"},
       {"agent", "east"},
       {"actor", principal_acme}},
      // 3: a request of no tenant: null, not the principal's.
      {{"event", "request.closed"}, {"request_id", "req_old"}, {"principal", principal_acme}},
      // 4: a request the store does not know: the site's.
      {{"event", "enclave.stopped"}, {"request_id", "req_gone"}, {"agent", "west"}},
      // 5: the site's, over the principal's.
      {{"event", "agent.connected"}, {"agent", "east"}, {"principal", actor_globex}},
      // 6: the principal's.
      {{"event", "catalog.read"}, {"principal", principal_acme}},
      // 7: the actor's.
      {{"event", "agent.revoked"}, {"actor", actor_globex}},
      // 8: nothing of a tenant: null.
      {{"event", "kernel.started"}},
      // 9: a principal of no tenant (a platform admin): null.
      {{"event", "policy.reloaded"}, {"actor", {{"subject", "root"}}}},
      // 10: an agent not in the configuration: null.
      {{"event", "agent.enroll_refused"}, {"agent", "north"}},
      // 11: an agent not in the configuration speaks for no site: the actor's.
      {{"event", "agent.enroll_refused"}, {"agent", "north"}, {"actor", actor_globex}},
  };
  for (const json& event : events) ASSERT_TRUE(log_->Append(event).ok()) << event.dump();

  const std::vector<json> expected = {"globex", nullptr,  "globex", nullptr, "globex", "acme",
                                      "acme",   "globex", nullptr,  nullptr, nullptr,  "globex"};
  const std::vector<json> records = Records();
  ASSERT_EQ(records.size(), expected.size());
  for (size_t i = 0; i < records.size(); ++i) {
    ASSERT_TRUE(records[i].contains("tenant")) << i << ": " << records[i].dump();
    EXPECT_EQ(records[i]["tenant"], expected[i]) << i << ": " << records[i].dump();
    EXPECT_EQ(records[i].value("event", ""), events[i].value("event", "?")) << i;
  }
  // Everything else of the event is as written.
  EXPECT_EQ(records[2]["actor"], principal_acme);
  EXPECT_EQ(records[2].value("agent", ""), "east");
}

TEST_F(TenantAuditTaggerTest, EveryRecordOfAGroupIsTagged) {
  const KernelConfig config = Tenanted();
  const Tenancy tenancy(config);
  TenantAuditTagger tagger(&tenancy, LookupFn(), log_.get());
  ASSERT_TRUE(log_->AppendAll({{{"event", "a"}, {"request_id", "req_acme"}},
                               {{"event", "b"}, {"request_id", "req_globex"}},
                               {{"event", "c"}}})
                  .ok());
  const std::vector<json> records = Records();
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0]["tenant"], "acme");
  EXPECT_EQ(records[1]["tenant"], "globex");
  EXPECT_TRUE(records[2]["tenant"].is_null());
}

TEST_F(TenantAuditTaggerTest, WithoutALookupTheSiteAndPrincipalDecide) {
  const KernelConfig config = Tenanted();
  const Tenancy tenancy(config);
  TenantAuditTagger tagger(&tenancy, nullptr, log_.get());
  ASSERT_TRUE(log_->Append({{"event", "x"},
                            {"request_id", "req_acme"},
                            {"principal", {{"subject", "gina"}, {"tenant", "globex"}}}})
                  .ok());
  const std::vector<json> records = Records();
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0]["tenant"], "globex");
}

TEST_F(TenantAuditTaggerTest, WithoutTenantsRecordsAreUntouched) {
  const KernelConfig config = Untenanted();
  const Tenancy tenancy(config);
  TenantAuditTagger tagger(&tenancy, LookupFn(), log_.get());
  ASSERT_TRUE(log_->Append({{"event", "request.approved"},
                            {"request_id", "req_acme"},
                            {"agent", "east"},
                            {"principal", {{"subject", "alice"}, {"tenant", "acme"}}}})
                  .ok());
  ASSERT_TRUE(log_->Append({{"event", "kernel.started"}}).ok());
  for (const json& record : Records()) {
    EXPECT_FALSE(record.contains("tenant")) << record.dump();
  }
  EXPECT_EQ(lookups_.load(), 0) << "no state store reads for nothing";
}

TEST_F(TenantAuditTaggerTest, AppendsAfterTheTaggerIsGoneAreNotTagged) {
  const KernelConfig config = Tenanted();
  const Tenancy tenancy(config);
  {
    TenantAuditTagger tagger(&tenancy, LookupFn(), log_.get());
    ASSERT_TRUE(log_->Append({{"event", "during"}, {"request_id", "req_acme"}}).ok());
  }
  const int lookups = lookups_.load();
  ASSERT_TRUE(log_->Append({{"event", "after"}, {"request_id", "req_acme"}}).ok());
  ASSERT_TRUE(log_->Append({{"event", "after.site"}, {"agent", "east"}}).ok());
  const std::vector<json> records = Records();
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0]["tenant"], "acme");
  EXPECT_FALSE(records[1].contains("tenant")) << records[1].dump();
  EXPECT_FALSE(records[2].contains("tenant")) << records[2].dump();
  EXPECT_EQ(lookups_.load(), lookups);
}

}  // namespace
}  // namespace airlock
