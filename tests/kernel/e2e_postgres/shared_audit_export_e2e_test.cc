// audit.export from the audit chain two real replicas share in PostgreSQL,
// to a real HTTPS receiver: one replica exports while the other stands by
// (no record is sent twice while both run), and when the exporting one is
// killed (-9) the other takes the destination over from the stored cursor,
// so the receiver holds every record of the shared chain once after dedupe,
// in order, whichever replica wrote it.
#include <gtest/gtest.h>

#include <mutex>
#include <set>
#include <string>

#include "tests/kernel/e2e/audit_export_receiver.h"
#include "tests/kernel/e2e_postgres/failover_fixture.h"
#include "tests/support/test_http_server.h"

namespace airlock::test {
namespace {

constexpr size_t kBatch = 5;

class SharedAuditExportTest : public FailoverTest {
 protected:
  void SetUp() override {
    receiver_dir_ = std::make_unique<TempDir>("airlock-pg-export-");
    receiver_pki_ = GenerateTestPki(receiver_dir_->path());
    receiver_ = std::make_unique<TestHttpServer>(
        [this](const ReceivedRequest&) {
          std::lock_guard lock(mu_);
          accepted_.insert(seen_++);
          return ScriptedReply{200, "{}"};
        },
        receiver_pki_.server.cert_file, receiver_pki_.server.key_file);
    FailoverTest::SetUp();
  }

  void Prepare(int /*index*/, json& config, const std::string& /*dir*/) override {
    config["audit"]["export"] = {{{"name", "siem"},
                                  {"url", receiver_->url("/ingest")},
                                  {"ca_file", receiver_pki_.ca.cert_file},
                                  {"batch_records", kBatch},
                                  {"timeout_ms", 2000},
                                  {"max_backoff_ms", 400}}};
  }

  // alice asks on `kernel`, bob denies: records in the shared chain.
  void Activity(KernelProcess& kernel, int asks) {
    HttpClient client("127.0.0.1", kernel.port());
    for (int i = 0; i < asks; ++i) {
      auto created = client.Post("/v1/requests", R"({"datasets":["orders"],"purpose":"siem"})",
                                 Auth(kPgAlice));
      ASSERT_EQ(created.status, 201u) << created.body;
      ASSERT_EQ(client
                    .Post("/v1/requests/" + created.json().value("id", "") + "/deny",
                          R"({"comment":"no"})", Auth(kPgBob))
                    .status,
                200u);
    }
  }

  uint64_t Head() {
    return std::stoull(PgCluster::Shared()
                           .Query("SELECT seq FROM audit_head", database_)
                           .at(0)
                           .at(0)
                           .value_or("0"));
  }

  ReceivedExport Received() {
    std::lock_guard lock(mu_);
    return ParseExport(receiver_->requests(), accepted_);
  }

  ReceivedExport WaitForEverythingUpTo(uint64_t seq) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(40);
    ReceivedExport got = Received();
    while (!got.HoldsEverythingUpTo(seq) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      got = Received();
    }
    EXPECT_TRUE(got.HoldsEverythingUpTo(seq))
        << "the receiver never held every record up to " << seq;
    return got;
  }

  // A column of the destination's row in audit_export_cursors.
  std::string Stored(const std::string& column) {
    return PgCluster::Shared()
        .Query("SELECT " + column + " FROM audit_export_cursors WHERE name = 'siem'", database_)
        .at(0)
        .at(0)
        .value_or("");
  }

  // The value of airlock_audit_export_active on `kernel` (-1 when absent).
  static int Active(KernelProcess& kernel) {
    HttpClient client("127.0.0.1", kernel.port());
    const std::string metrics = client.Get("/metrics").body;
    const std::string name = "airlock_audit_export_active{sink=\"siem\"} ";
    const size_t at = metrics.find(name);
    return at == std::string::npos ? -1 : std::stoi(metrics.substr(at + name.size()));
  }

  std::unique_ptr<TempDir> receiver_dir_;
  TestPki receiver_pki_;
  std::mutex mu_;
  unsigned seen_ = 0;            // guarded by mu_
  std::set<unsigned> accepted_;  // guarded by mu_
  // After what its handler touches: destroyed (its thread joined) first,
  // while the replicas (the base's) may still be delivering.
  std::unique_ptr<TestHttpServer> receiver_;
};

TEST_F(SharedAuditExportTest, OneReplicaExportsAndTheOtherTakesOverWhenItDies) {
  Activity(a(), 2);
  Activity(b(), 2);
  const uint64_t first_head = Head();
  const ReceivedExport first = WaitForEverythingUpTo(first_head);
  ExpectEachRecordOnceInOrder(first, first_head, kBatch);
  // Records of both replicas, sent by one: nothing twice. Counted up to the
  // newest record received, not the head read before: a replica's own
  // records (its start-up catalog description) may land after that read.
  EXPECT_EQ(first.sent(), first.newest()) << "both replicas exported";
  const int active_a = Active(a()), active_b = Active(b());
  ASSERT_EQ(active_a + active_b, 1) << "A: " << active_a << ", B: " << active_b;
  KernelProcess& exporter = active_a == 1 ? a() : b();
  KernelProcess& standby = active_a == 1 ? b() : a();
  const std::string exporter_id = ReplicaId(exporter);
  EXPECT_EQ(Stored("holder"), exporter_id);

  // The exporter dies; the standby's requests go on and it takes over.
  exporter.Kill();
  Activity(standby, 3);
  const uint64_t head = Head();
  const ReceivedExport got = WaitForEverythingUpTo(head);
  ExpectEachRecordOnceInOrder(got, head, kBatch);
  EXPECT_EQ(Active(standby), 1);
  // Its cursor follows (saved once the receiver answered).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (Stored("seq") != std::to_string(head) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(Stored("seq"), std::to_string(head));
  EXPECT_EQ(Stored("holder"), ReplicaId(standby));

  // Back, the killed replica stands by: the destination stays where it is.
  ASSERT_TRUE(exporter.Start()) << exporter.log();
  Activity(exporter, 1);
  const uint64_t last = Head();
  const size_t sent_before = got.sent();
  const ReceivedExport after = WaitForEverythingUpTo(last);
  ExpectEachRecordOnceInOrder(after, last, kBatch);
  EXPECT_EQ(after.sent() - sent_before, after.newest() - got.newest())
      << "the restarted replica exported too";
  EXPECT_EQ(Active(exporter), 0);
}

}  // namespace
}  // namespace airlock::test
