// Two real airlockd replicas linked by the peer link (state.peer): a request
// served by one is served through the other too. The credential is collected
// from either, and the tunnel of either runs its queries (forwarded to the
// owner, which runs and audits them).
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "tests/kernel/e2e_postgres/failover_fixture.h"

namespace airlock::test {
namespace {

constexpr const char* kPeerSecret = "peer-secret-5f1c0e9a7b3d4c21";

class PeerLinkTest : public FailoverTest {
 protected:
  void Prepare(int /*index*/, json& config, const std::string& dir) override {
    const std::string file = dir + "/peer.secret";
    std::ofstream(file) << kPeerSecret;
    ::chmod(file.c_str(), 0600);
    config["state"]["peer"] = {{"secret", "file:" + file}};
  }
  bool PeerLinked() const override { return true; }

  int CountEvents(const std::string& id, const std::string& event, const std::string& via) {
    int count = 0;
    for (const json& e : AuditOf(id)) {
      if (e.value("event", "") == event && e.value("via_replica", "") == via) ++count;
    }
    return count;
  }
};

// The request is served by A. Its credential is collected through B (taken
// from A's tunnel over the peer link), once; A's tunnel and B's both run its
// queries with it, and the one that went through B is audited once, by A,
// naming B. A revoke made on B ends it on both.
TEST_F(PeerLinkTest, AnyReplicaServesTheCredentialAndTheQueriesOfARequestAnotherServes) {
  const std::string id_a = ReplicaId(a());
  const std::string id_b = ReplicaId(b());
  ASSERT_NE(TunnelPort(b()), 0) << b().log();
  json grant;
  const std::string id = ReadyOnA(&grant);  // collected through B
  ASSERT_TRUE(grant.contains("credential")) << grant.dump();
  EXPECT_EQ(Get(b(), id)["enclave"].value("owner", ""), id_a);
  HttpClient on_a("127.0.0.1", a().port());
  EXPECT_EQ(on_a.Post("/v1/requests/" + id + "/credentials", "", Auth(kPgAlice)).status, 410u);
  EXPECT_EQ(CountEvents(id, "tunnel.credential_issued", id_b), 1);

  EXPECT_EQ(Query(grant, pkis_[0]), 200u);
  const json through_b = Through(grant, b(), id);
  EXPECT_EQ(Query(through_b, pkis_[1]), 200u);
  EXPECT_EQ(Query(through_b, pkis_[1]), 200u);
  EXPECT_EQ(CountEvents(id, "tunnel.query", id_b), 2);
  EXPECT_EQ(CountEvents(id, "tunnel.query", ""), 1);  // A's own
  json wrong = through_b;
  wrong["credential"] = "alk_tun_not-the-credential";
  EXPECT_EQ(Query(wrong, pkis_[1]), 401u);

  HttpClient on_b("127.0.0.1", b().port());
  EXPECT_EQ(on_b.Post("/v1/requests/" + id + "/revoke", "{}", Auth(kPgAlice)).status, 200u);
  // B's tunnel closes its endpoint at once, and A is told to tear its
  // enclave down: both say why.
  EXPECT_EQ(Query(through_b, pkis_[1]), 410u);
  EXPECT_EQ(Query(grant, pkis_[0]), 410u);
  for (auto* kernel : {&a(), &b()}) {
    EXPECT_EQ(kernel->log().find(kPeerSecret), std::string::npos);
    EXPECT_EQ(kernel->log().find(grant.value("credential", "?")), std::string::npos);
  }
  const std::string audit = PgCluster::Shared()
                                .Query("SELECT string_agg(line, '') FROM audit_records", database_)
                                .at(0)
                                .at(0)
                                .value_or("");
  EXPECT_EQ(audit.find(kPeerSecret), std::string::npos);
}

// The owner dies: B, which forwarded the request's queries to it, takes it
// over and serves it from an enclave of its own, at the same tunnel address
// and with the same credential.
TEST_F(PeerLinkTest, WhenTheOwnerDiesTheSameTunnelAddressKeepsServing) {
  const std::string id_b = ReplicaId(b());
  json grant;
  const std::string id = ReadyOnA(&grant);
  const json through_b = Through(grant, b(), id);
  EXPECT_EQ(Query(through_b, pkis_[1]), 200u);
  a().Kill();
  const json view = WaitReadyOn(b(), id, id_b, std::chrono::seconds(30));
  ASSERT_EQ(view.value("state", ""), "ready") << view.dump();
  EXPECT_EQ(view["tunnel"].value("url", ""), through_b.value("url", ""));
  EXPECT_EQ(Query(through_b, pkis_[1]), 200u);
  EXPECT_EQ(CountEvents(id, "tunnel.query", ""), 1);  // served by B itself now
}

// The peer routes answer only the shared secret: not a principal's token,
// not a wrong secret (each refusal audited), and not at all on a replica
// without the peer link.
TEST_F(PeerLinkTest, PeerRoutesRefuseCallersWithoutThePeerSecret) {
  json grant;
  const std::string id = ReadyOnA(&grant);
  HttpClient on_a("127.0.0.1", a().port());
  const std::string path = "/v1/peer/requests/" + id + "/query";
  const std::string body = json{{"sql", "SELECT 1"}, {"transport", "https"}}.dump();
  EXPECT_EQ(on_a.Post(path, body, Auth(kPgAlice)).status, 401u);
  EXPECT_EQ(on_a.Post(path, body,
                      {{"Authorization", "Bearer peer-secret-guess-00000000"},
                       {"Content-Type", "application/json"}})
                .status,
            401u);
  EXPECT_EQ(on_a.Post(path, body, {{"Content-Type", "application/json"}}).status, 401u);
  const auto refused = PgCluster::Shared().Query(
      "SELECT count(*) FROM audit_records WHERE line LIKE '%\"event\":\"peer.refused\"%'",
      database_);
  EXPECT_EQ(refused.at(0).at(0), "3");
  // With it, the owner answers; the result is the peer link's own format.
  auto ran = on_a.Post(path, body,
                       {{"Authorization", std::string("Bearer ") + kPeerSecret},
                        {"Content-Type", "application/json"},
                        {"X-Airlock-Replica", "test-peer"}});
  EXPECT_EQ(ran.status, 200u) << ran.body;
  EXPECT_EQ(CountEvents(id, "tunnel.query", "test-peer"), 1);
  // A request it does not serve: 404, not another replica's answer.
  EXPECT_EQ(on_a.Post("/v1/peer/requests/req_unknown/query", body,
                      {{"Authorization", std::string("Bearer ") + kPeerSecret},
                       {"Content-Type", "application/json"}})
                .status,
            404u);
}

// A job runs on A (its results on A's disk); its requester downloads the
// result through B, which fetches it from A, audits the download once, and
// keeps no copy. A result that failed is refused through B as through A.
TEST_F(PeerLinkTest, AJobsResultsDownloadThroughAnyReplica) {
  HttpClient on_a("127.0.0.1", a().port());
  HttpClient on_b("127.0.0.1", b().port());
  const json ask = {{"datasets", {"orders"}},
                    {"purpose", "report"},
                    {"mode", "job"},
                    {"queries", {"SELECT SUM(amount) FROM orders", "SELECT nope FROM orders"}}};
  auto created = on_a.Post("/v1/requests", ask.dump(), Auth(kPgAlice));
  ASSERT_EQ(created.status, 201u) << created.body;
  const std::string id = created.json().value("id", "");
  ASSERT_EQ(on_a.Post("/v1/requests/" + id + "/approve", "{}", Auth(kPgBob)).status, 200u);
  json view;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    view = Get(b(), id);
    if (view.value("state", "") == "closed" || view.value("state", "") == "failed") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(view.value("state", ""), "closed") << view.dump();
  EXPECT_EQ(view["enclave"].value("owner", ""), ReplicaId(a()));

  auto from_a = on_a.Get("/v1/requests/" + id + "/results/0", Auth(kPgAlice));
  auto from_b = on_b.Get("/v1/requests/" + id + "/results/0", Auth(kPgAlice));
  ASSERT_EQ(from_a.status, 200u) << from_a.body;
  ASSERT_EQ(from_b.status, 200u) << from_b.body;
  EXPECT_EQ(from_b.body, from_a.body);
  EXPECT_NE(from_b.body.find("127.75"), std::string::npos) << from_b.body;
  EXPECT_EQ(from_b.header("Content-Type"), "application/x-ndjson");

  // Only the requester, and the failed query has no result, on B as on A.
  EXPECT_EQ(on_b.Get("/v1/requests/" + id + "/results/0", Auth(kPgBob)).status, 403u);
  EXPECT_EQ(on_b.Get("/v1/requests/" + id + "/results/1", Auth(kPgAlice)).status, 409u);
  EXPECT_EQ(on_b.Get("/v1/requests/" + id + "/results/9", Auth(kPgAlice)).status, 404u);

  int downloads = 0;
  for (const json& e : AuditOf(id)) {
    if (e.value("event", "") == "job.result_downloaded") ++downloads;
  }
  EXPECT_EQ(downloads, 2);  // one through A, one through B
  // B sent the copy it fetched and kept nothing.
  const std::filesystem::path copies = dirs_[1]->path() + "/state/results/.forwarded";
  if (std::filesystem::exists(copies)) {
    EXPECT_TRUE(std::filesystem::is_empty(copies));
  }
  EXPECT_FALSE(std::filesystem::exists(dirs_[1]->path() + "/state/results/" + id));

  // Once A is gone, B says so rather than answering something else.
  a().Kill();
  EXPECT_EQ(on_b.Get("/v1/requests/" + id + "/results/0", Auth(kPgAlice)).status, 503u);
}

}  // namespace
}  // namespace airlock::test
