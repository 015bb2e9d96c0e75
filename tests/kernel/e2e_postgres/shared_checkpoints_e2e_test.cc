// Signed checkpoints of the audit chain two real replicas share in
// PostgreSQL: both sign it with one key and publish into the database, so a
// replica joining a chain the other began checks it at start without being
// told to accept unverified history, and a keyless rewrite of the database
// (a tail cut off with the head row moved back to match) stops every replica.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "tests/kernel/e2e_postgres/failover_fixture.h"

namespace airlock::test {
namespace {

class SharedCheckpointsTest : public FailoverTest {
 protected:
  void SetUp() override {
    keys_ = std::make_unique<TempDir>("airlock-pg-keys-");
    std::string out;
    ASSERT_EQ(RunAirlockd({"audit", "keygen", "--private-key", key(), "--public-key", pub()}, &out),
              0)
        << out;
    FailoverTest::SetUp();
  }

  void Prepare(int /*index*/, json& config, const std::string& /*dir*/) override {
    config["audit"]["checkpoints"] = {{"signing_key", "file:" + key()},
                                      {"every_records", 4},
                                      {"every_seconds", 3600},
                                      {"syslog", false}};
  }

  std::string key() const { return keys_->path() + "/audit.key"; }
  std::string pub() const { return keys_->path() + "/audit.pub"; }

  std::string Scalar(const std::string& sql) {
    return PgCluster::Shared().Query(sql, database_).at(0).at(0).value_or("");
  }

  std::unique_ptr<TempDir> keys_;
};

TEST_F(SharedCheckpointsTest, ReplicasPublishCheckpointsBesideTheChainAndEachChecksThem) {
  // B joined the chain A began (both are running: SetUp started them
  // without --accept-unverified-audit-history), and both signed it.
  json grant;
  const std::string id = ReadyOnA(&grant);
  HttpClient on_b("127.0.0.1", b().port());
  EXPECT_EQ(on_b.Post("/v1/requests/" + id + "/revoke", "{}", Auth(kPgAlice)).status, 200u);
  for (auto& kernel : kernels_) kernel->Stop();  // a last checkpoint each
  EXPECT_GE(std::stoi(Scalar("SELECT count(DISTINCT line) FROM audit_checkpoints")), 3);
  const std::string head = Scalar("SELECT seq FROM audit_head");
  EXPECT_EQ(Scalar("SELECT max(seq) FROM audit_checkpoints"), head);
  EXPECT_FALSE(std::filesystem::exists(dirs_[0]->path() + "/state/audit.log.checkpoints"));
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(kernels_[i]->log().find("no signed checkpoint"), std::string::npos)
        << kernels_[i]->log();
  }

  // The live chain and an export of it verify against the checkpoints.
  std::string out;
  ASSERT_EQ(
      RunAirlockd({"audit", "verify", "--config", a().config_path(), "--public-key", pub()}, &out),
      0)
      << out;
  EXPECT_NE(out.find("signed checkpoints verified"), std::string::npos) << out;
  EXPECT_NE(out.find("are covered by a signature"), std::string::npos) << out;
  const std::string exported = dirs_[0]->path() + "/export.log";
  ASSERT_EQ(
      RunAirlockd({"audit", "export", "--config", a().config_path(), "--output", exported}, &out),
      0)
      << out;
  ASSERT_TRUE(std::filesystem::exists(exported + ".checkpoints"));
  ASSERT_EQ(RunAirlockd({"audit", "verify", exported, "--public-key", pub()}, &out), 0) << out;

  // Restarted, each checks the chain against every replica's checkpoints.
  ASSERT_TRUE(b().Start()) << b().log();
  b().Stop();

  // A keyless rewrite: the last records cut off and the head row moved back
  // to the record before them, so the chain itself is consistent again.
  const int64_t last = std::stoll(Scalar("SELECT seq FROM audit_head"));
  ASSERT_EQ(Scalar("SELECT max(seq) FROM audit_checkpoints"), std::to_string(last));
  const int64_t keep = last - 3;
  PgCluster::Shared().Exec("DELETE FROM audit_records WHERE seq > " + std::to_string(keep),
                           database_);
  PgCluster::Shared().Exec(
      "UPDATE audit_head SET seq = r.seq, hash = r.hash FROM audit_records r WHERE r.seq = " +
          std::to_string(keep),
      database_);
  EXPECT_FALSE(a().Start());
  EXPECT_NE(a().log().find("checkpoint"), std::string::npos) << a().log();
  EXPECT_NE(
      RunAirlockd({"audit", "verify", "--config", a().config_path(), "--public-key", pub()}, &out),
      0)
      << out;
  EXPECT_NE(out.find("TAMPERED"), std::string::npos) << out;
  EXPECT_NE(out.find("a signed checkpoint covers seq " + std::to_string(last)), std::string::npos)
      << out;
}

// A row of audit_checkpoints that its key did not sign stops a replica at
// start, naming the row.
TEST_F(SharedCheckpointsTest, AForgedCheckpointRowIsRefusedByItsRow) {
  for (auto& kernel : kernels_) kernel->Stop();
  const std::string id = Scalar("SELECT max(id) FROM audit_checkpoints");
  PgCluster::Shared().Exec(
      "UPDATE audit_checkpoints SET line = regexp_replace(line, '\"sig\":\"[0-9a-f]{8}', "
      "'\"sig\":\"00000000') WHERE id = " +
          id,
      database_);
  EXPECT_FALSE(a().Start());
  EXPECT_NE(a().log().find("row " + id), std::string::npos) << a().log();
}

}  // namespace
}  // namespace airlock::test
