// The keyed audit trail as operators meet it: a real airlockd signing
// checkpoints with a key made by `airlockd audit keygen`, `airlockd audit
// verify --public-key` on what it wrote, and the same binary refusing to
// start on every forgery a keyless attacker can make.
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/kernel/audit/audit_test_util.h"
#include "tests/kernel/e2e/kernel_process.h"
#include "tests/kernel/e2e/tunnel_session.h"
#include "tests/support/http_client.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

namespace airlock::test {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing_audit::ReadAll;
using testing_audit::ReadLines;
using testing_audit::ReadRecords;
using testing_audit::WriteLines;
using testing_audit::WriteRechained;

constexpr const char* kAlice = "alk_audit_alice_token_1";
constexpr const char* kBob = "alk_audit_bob_token_2";

class AuditE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = GenerateTestPki(dir_.path());
    keys_ = dir_.path() + "/keys";
    fs::create_directories(keys_);
    std::string out;
    ASSERT_EQ(RunAirlockd({"audit", "keygen", "--private-key", keys_ + "/audit.key", "--public-key",
                           keys_ + "/audit.pub"},
                          &out),
              0)
        << out;
    log_ = dir_.path() + "/state/audit.log";
  }

  json Config(int64_t every_records, int64_t every_seconds) {
    json config = OrdersKernelConfig(dir_.path(), pki_, AliceAndBobIdentity(kAlice, kBob));
    config["audit"] = {{"checkpoints",
                        {{"signing_key", "file:" + keys_ + "/audit.key"},
                         {"every_records", every_records},
                         {"every_seconds", every_seconds},
                         {"syslog", false}}}};
    return config;
  }

  // Starts the kernel, makes `requests` pending requests (several audit
  // records each) and stops it gracefully (a final checkpoint).
  void RunKernel(int requests, int64_t every_records = 3, int64_t every_seconds = 3600,
                 bool crash = false) {
    kernel_ = std::make_unique<KernelProcess>(dir_.path(), Config(every_records, every_seconds));
    ASSERT_TRUE(kernel_->Start()) << kernel_->log();
    cmdline_ = ReadAll("/proc/" + std::to_string(kernel_->pid()) + "/cmdline");
    HttpClient client("127.0.0.1", kernel_->port());
    for (int i = 0; i < requests; ++i) {
      auto created =
          client.Post("/v1/requests", R"({"datasets":["orders"],"purpose":"audit"})", Auth(kAlice));
      ASSERT_EQ(created.status, 201u) << created.body;
    }
    if (crash) {
      kernel_->Kill();
    } else {
      EXPECT_EQ(kernel_->Stop(), 0) << kernel_->log();
    }
  }

  int Verify(std::string* out, std::vector<std::string> extra = {}, const std::string& log = "") {
    std::vector<std::string> args = {"audit", "verify", log.empty() ? log_ : log, "--public-key",
                                     keys_ + "/audit.pub"};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunAirlockd(args, out);
  }

  // The kernel refuses to start; its output says why.
  std::string StartRefused() {
    KernelProcess again(dir_.path(), Config(3, 3600));
    EXPECT_FALSE(again.Start()) << "the kernel started on a forged log";
    return again.log();
  }

  void SaveState() {
    for (const char* suffix : {"", ".head", ".checkpoints"}) {
      fs::copy_file(log_ + suffix, dir_.path() + "/saved" + suffix,
                    fs::copy_options::overwrite_existing);
    }
  }
  void RestoreState() {
    for (const char* suffix : {"", ".head", ".checkpoints"}) {
      fs::copy_file(dir_.path() + "/saved" + suffix, log_ + suffix,
                    fs::copy_options::overwrite_existing);
    }
    fs::remove(dir_.path() + "/airlockd.log");
  }

  TempDir dir_{"airlock-audit-e2e-"};
  TestPki pki_;
  std::string keys_;
  std::string log_;
  std::string cmdline_;
  std::unique_ptr<KernelProcess> kernel_;
};

TEST_F(AuditE2E, KeygenWritesAPrivateKeyOnlyItsOwnerCanReadAndNeverOverwrites) {
  struct stat info {};
  ASSERT_EQ(::stat((keys_ + "/audit.key").c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  const std::string before = ReadAll(keys_ + "/audit.key");
  EXPECT_TRUE(before.starts_with("-----BEGIN PRIVATE KEY-----"));
  EXPECT_TRUE(ReadAll(keys_ + "/audit.pub").starts_with("-----BEGIN PUBLIC KEY-----"));
  std::string out;
  EXPECT_NE(RunAirlockd({"audit", "keygen", "--private-key", keys_ + "/audit.key", "--public-key",
                         keys_ + "/other.pub"},
                        &out),
            0);
  EXPECT_NE(out.find("refusing to overwrite"), std::string::npos) << out;
  EXPECT_EQ(ReadAll(keys_ + "/audit.key"), before);
}

TEST_F(AuditE2E, KernelSignsCheckpointsShipsThemAndVerifyChecksThem) {
  RunKernel(3);
  std::string out;
  EXPECT_EQ(Verify(&out), 0) << out;
  EXPECT_NE(out.find("OK ("), std::string::npos) << out;
  EXPECT_NE(out.find("signed checkpoints verified"), std::string::npos) << out;
  EXPECT_NE(out.find("are covered by a signature"), std::string::npos) << out;
  EXPECT_EQ(out.find("not covered"), std::string::npos) << out;

  // Shipped out of the state directory: the kernel's own output has them.
  const std::string output = kernel_->log();
  EXPECT_NE(output.find("audit checkpoint {\"checkpoint\":1,"), std::string::npos) << output;
  EXPECT_EQ(Verify(&out, {"--checkpoints", dir_.path() + "/airlockd.log"}), 0) << out;

  // Without the key: today's check, with a warning saying what it is.
  EXPECT_EQ(RunAirlockd({"audit", "verify", log_}, &out), 0) << out;
  EXPECT_NE(out.find("keyless chain check only"), std::string::npos) << out;

  // A wrong public key trusts nothing.
  ASSERT_EQ(RunAirlockd({"audit", "keygen", "--private-key", keys_ + "/b.key", "--public-key",
                         keys_ + "/b.pub"},
                        &out),
            0);
  EXPECT_EQ(RunAirlockd({"audit", "verify", log_, "--public-key", keys_ + "/b.pub"}, &out), 1);
  EXPECT_NE(out.find("not a trusted public key"), std::string::npos) << out;
  // Usage and unreadable files are 2.
  EXPECT_EQ(RunAirlockd({"audit", "verify", log_, "--public-key", keys_ + "/absent.pub"}, &out), 2);
  EXPECT_EQ(Verify(&out, {}, dir_.path() + "/absent.log"), 2) << out;
  EXPECT_EQ(RunAirlockd({"audit", "verify"}, &out), 2);
}

TEST_F(AuditE2E, TheSigningKeyAppearsNowhereButItsFile) {
  RunKernel(2);
  // The key's PEM body, line by line.
  std::vector<std::string> needles;
  std::istringstream pem(ReadAll(keys_ + "/audit.key"));
  for (std::string line; std::getline(pem, line);) {
    if (!line.starts_with("-----")) needles.push_back(line);
  }
  ASSERT_FALSE(needles.empty());
  std::vector<std::string> files = {dir_.path() + "/airlockd.log", dir_.path() + "/airlock.json"};
  for (const auto& entry : fs::recursive_directory_iterator(dir_.path() + "/state")) {
    if (entry.is_regular_file()) files.push_back(entry.path().string());
  }
  ASSERT_GE(files.size(), 5u);  // log, anchor, checkpoints, state.db, ...
  for (const auto& needle : needles) {
    EXPECT_EQ(cmdline_.find(needle), std::string::npos) << "argv";
    for (const auto& file : files) EXPECT_EQ(ReadAll(file).find(needle), std::string::npos) << file;
  }
  // The configuration names only the reference.
  EXPECT_NE(ReadAll(dir_.path() + "/airlock.json").find("file:" + keys_), std::string::npos);
}

TEST_F(AuditE2E, EveryKeylessForgeryIsCaughtByVerifyAndByTheKernelAtStart) {
  RunKernel(3);
  SaveState();
  const auto original = ReadRecords(log_);
  ASSERT_GE(original.size(), 10u);
  const size_t n = original.size();

  struct Forgery {
    std::string name;
    std::function<void()> apply;
    std::string kernel_says;
  };
  const std::vector<Forgery> forgeries = {
      {"edit",
       [&] {
         auto records = original;
         records[3]["forged"] = "mallory approved this";
         WriteRechained(log_, records);
       },
       "contradicts its signed checkpoints"},
      {"insert",
       [&] {
         auto records = original;
         records.insert(records.begin() + 2, json{{"event", "request.approved"},
                                                  {"approver", "mallory"},
                                                  {"ts", original[2]["ts"]}});
         WriteRechained(log_, records);
       },
       "contradicts its signed checkpoints"},
      {"delete",
       [&] {
         auto records = original;
         records.erase(records.begin() + 2);
         WriteRechained(log_, records);
       },
       "contradicts its signed checkpoints"},
      {"reorder",
       [&] {
         auto records = original;
         std::swap(records[1], records[2]);
         WriteRechained(log_, records);
       },
       "contradicts its signed checkpoints"},
      {"truncate",
       [&] {
         auto records = original;
         records.resize(n - 4);
         WriteRechained(log_, records);
       },
       "were removed or rewritten"},
      {"truncate and drop the anchor",
       [&] {
         auto records = original;
         records.resize(n - 4);
         WriteRechained(log_, records);
         fs::remove(log_ + ".head");
       },
       ".head is missing"},
      {"empty the log and drop the anchor",
       [&] {
         WriteLines(log_, {});
         fs::remove(log_ + ".head");
       },
       "the log ends at seq 0"},
      {"rewrite and drop the checkpoints",
       [&] {
         auto records = original;
         records[3]["forged"] = "mallory approved this";
         WriteRechained(log_, records);
         fs::remove(log_ + ".checkpoints");
       },
       "no signed checkpoint"},
  };
  for (const auto& forgery : forgeries) {
    SCOPED_TRACE(forgery.name);
    RestoreState();
    forgery.apply();
    std::string out;
    EXPECT_EQ(Verify(&out), 1) << out;
    EXPECT_NE(out.find("TAMPERED"), std::string::npos) << out;
    const std::string refused = StartRefused();
    EXPECT_NE(refused.find("cannot start"), std::string::npos) << refused;
    EXPECT_NE(refused.find(forgery.kernel_says), std::string::npos) << refused;
  }

  // The untouched state still verifies and starts.
  RestoreState();
  std::string out;
  EXPECT_EQ(Verify(&out), 0) << out;
}

TEST_F(AuditE2E, RollbackOfBothFilesIsCaughtThroughTheShippedCheckpoints) {
  // Checkpoints at seq 0, after the first request, and at the stop.
  kernel_ = std::make_unique<KernelProcess>(dir_.path(), Config(3, 3600));
  ASSERT_TRUE(kernel_->Start()) << kernel_->log();
  HttpClient client("127.0.0.1", kernel_->port());
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(client.Post("/v1/requests", R"({"datasets":["orders"]})", Auth(kAlice)).status, 201u);
    if (i == 0) {
      // The checkpointer signs off the request path: wait for it.
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
      while (ReadLines(log_ + ".checkpoints").size() < 2 &&
             std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
  }
  ASSERT_EQ(kernel_->Stop(), 0);
  const std::string shipped = dir_.path() + "/shipped.log";
  fs::copy_file(dir_.path() + "/airlockd.log", shipped);
  // Roll the log and its checkpoints back to an earlier checkpoint.
  auto checkpoints = ReadLines(log_ + ".checkpoints");
  ASSERT_GE(checkpoints.size(), 3u);
  checkpoints.resize(2);
  const uint64_t seq = json::parse(checkpoints.back())["seq"];
  ASSERT_GT(seq, 0u);
  auto records = ReadRecords(log_);
  records.resize(seq);
  WriteRechained(log_, records);
  WriteLines(log_ + ".checkpoints", checkpoints);

  std::string out;
  EXPECT_EQ(Verify(&out), 0) << out;                              // a consistent earlier history...
  EXPECT_EQ(Verify(&out, {"--checkpoints", shipped}), 1) << out;  // ...that was shipped further
  EXPECT_NE(out.find("were removed or rewritten"), std::string::npos) << out;
  EXPECT_NE(out.find(shipped + " line"), std::string::npos) << out;
}

TEST_F(AuditE2E, TornFinalRecordHasItsOwnExitCodeAndTheKernelRecovers) {
  RunKernel(1);
  std::ofstream(log_, std::ios::app | std::ios::binary) << R"({"event":"request.sub)";
  std::string out;
  EXPECT_EQ(Verify(&out), 3) << out;
  EXPECT_NE(
      out.find("incomplete final record (recoverable: a write cut short by a crash or full disk)"),
      std::string::npos)
      << out;
  EXPECT_EQ(out.find("TAMPERED"), std::string::npos) << out;
  EXPECT_EQ(RunAirlockd({"audit", "verify", log_}, &out), 3) << out;

  RunKernel(1);  // cuts the torn line off and carries on
  EXPECT_EQ(Verify(&out), 0) << out;
}

TEST_F(AuditE2E, RecordsAfterTheLastCheckpointAreNamedAfterACrash) {
  RunKernel(2, /*every_records=*/1000000, /*every_seconds=*/3600, /*crash=*/true);
  std::string out;
  EXPECT_EQ(Verify(&out), 4) << out;
  EXPECT_NE(out.find("are not covered by a signature"), std::string::npos) << out;
  const size_t records = ReadLines(log_).size();
  EXPECT_NE(out.find("records 1.." + std::to_string(records)), std::string::npos) << out;

  // The next start covers them.
  RunKernel(0);
  EXPECT_EQ(Verify(&out), 0) << out;
}

TEST_F(AuditE2E, MissingAnchorNeedsTheOperatorsExplicitOverride) {
  RunKernel(1);
  fs::remove(log_ + ".head");
  const std::string refused = StartRefused();
  EXPECT_NE(refused.find(".head is missing"), std::string::npos) << refused;
  EXPECT_NE(refused.find("--accept-unverified-audit-history"), std::string::npos) << refused;

  KernelProcess accepted(dir_.path(), Config(3, 3600));
  accepted.set_extra_args({"--accept-unverified-audit-history"});
  ASSERT_TRUE(accepted.Start()) << accepted.log();
  EXPECT_EQ(accepted.Stop(), 0);
  EXPECT_TRUE(fs::exists(log_ + ".head"));
  std::string out;
  EXPECT_EQ(Verify(&out), 0) << out;
}

TEST_F(AuditE2E, SigningKeyMustLiveOutsideTheStateDirectoryAndBePrivate) {
  json config = Config(3, 3600);
  fs::create_directories(dir_.path() + "/state/keys");
  config["audit"]["checkpoints"]["signing_key"] = "file:" + dir_.path() + "/state/keys/audit.key";
  std::ofstream(dir_.path() + "/inside.json") << config.dump();
  std::string out;
  EXPECT_NE(RunAirlockd({"check-config", "--config", dir_.path() + "/inside.json"}, &out), 0);
  EXPECT_NE(out.find("must live outside the state directory"), std::string::npos) << out;

  ASSERT_EQ(::chmod((keys_ + "/audit.key").c_str(), 0644), 0);
  const std::string refused = StartRefused();
  EXPECT_NE(refused.find("chmod 600"), std::string::npos) << refused;
  EXPECT_EQ(refused.find("BEGIN PRIVATE KEY"), std::string::npos);
}

}  // namespace
// The policy's audit_query_text obligation keeps what was read in the
// audit, and the grant tells the requester; without it only the hash is kept.
TEST(QueryTextAudit, KeptWhenThePolicySaysAndTheGrantSaysSo) {
  for (const bool keep : {true, false}) {
    SCOPED_TRACE(keep ? "kept" : "not kept");
    TempDir dir("airlock-query-text-");
    const TestPki pki = GenerateTestPki(dir.path());
    json config = OrdersKernelConfig(dir.path(), pki, AliceAndBobIdentity(kAlice, kBob));
    json rule = {{"name", "analysts"},
                 {"effect", "allow"},
                 {"subjects", {{"groups", {"analysts"}}}},
                 {"datasets", {"orders"}},
                 {"approval", {{"groups", {"owners"}}, {"count", 1}}}};
    if (keep) rule["obligations"] = {{"orders", {{"audit_query_text", true}}}};
    config["policy"] = RulesPolicyRef({{"version", 1}, {"rules", {rule}}});
    KernelProcess kernel(dir.path(), config);
    ASSERT_TRUE(kernel.Start()) << kernel.log();
    HttpClient api("127.0.0.1", kernel.port());
    auto created =
        api.Post("/v1/requests", R"({"datasets":["orders"],"purpose":"text"})", Auth(kAlice));
    ASSERT_EQ(created.status, 201u) << created.body;
    const std::string id = created.json().value("id", "");
    ASSERT_EQ(api.Post("/v1/requests/" + id + "/approve", "{}", Auth(kBob)).status, 200u);
    ASSERT_EQ(WaitForRequestState(api, id, Auth(kAlice), "ready"), "ready");
    ClientResponse grant;
    TunnelSession tunnel = ConnectTunnel(api, id, Auth(kAlice), pki.ca.cert_file, &grant);
    ASSERT_EQ(grant.status, 200u) << grant.body;
    EXPECT_EQ(grant.json().value("audit_query_text", false), keep) << grant.body;
    const std::string sql = "SELECT order_id FROM orders WHERE amount > 15";
    ASSERT_EQ(TunnelQuery(tunnel, sql).status, 200u);

    auto trail = api.Get("/v1/audit?request=" + id, Auth(kAlice));
    ASSERT_EQ(trail.status, 200u) << trail.body;
    int queries = 0;
    const json body = trail.json();
    for (const json& record : body["records"]) {
      if (record.value("event", "") != "tunnel.query") continue;
      ++queries;
      EXPECT_FALSE(record.value("sql_sha256", "").empty());
      if (keep) {
        EXPECT_EQ(record.value("sql", ""), sql) << record.dump();
      } else {
        EXPECT_FALSE(record.contains("sql")) << record.dump();
      }
    }
    EXPECT_EQ(queries, 1) << trail.body;
  }
}

}  // namespace airlock::test
