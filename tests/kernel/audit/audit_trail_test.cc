// The keyed audit trail against an attacker who can write the state
// directory but does not hold the signing key: every forgery, with hashes
// and anchor recomputed, must be caught both by the verifier holding the
// public key and by the kernel opening the trail at start.
#include "kernel/audit/audit_trail.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "kernel/audit/audit_verify.h"
#include "kernel/audit/checkpoint_file.h"
#include "tests/kernel/audit/audit_test_util.h"

namespace airlock {
namespace {

using nlohmann::json;
using testing_audit::ReadAll;
using testing_audit::ReadLines;
using testing_audit::ReadRecords;
using testing_audit::ScratchDir;
using testing_audit::WriteLines;
using testing_audit::WriteRechained;

constexpr int kRecords = 8;

// Waits until `done` holds (re-checked every few ms), for at most `limit`.
template <typename Condition>
bool WaitFor(Condition done, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

class AuditTrailTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto pair = GenerateCheckpointKeyPair();
    ASSERT_TRUE(pair.ok());
    pair_ = std::make_unique<CheckpointKeyPair>(std::move(pair).value());
    ASSERT_TRUE(verifier_.AddPublicKeyPem(pair_->public_pem).ok());
    path_ = dir_.File("audit.log");
  }

  AuditTrailOptions Options(uint64_t every_records = 1000000,
                            std::chrono::seconds every = std::chrono::seconds(3600)) {
    AuditTrailOptions options;
    auto signer = CheckpointSigner::FromPem(pair_->private_pem);
    EXPECT_TRUE(signer.ok());
    options.signer = std::move(signer).value();
    options.policy.every_records = every_records;
    options.policy.every_seconds = every;
    options.syslog = false;
    return options;
  }

  std::unique_ptr<AuditTrail> OpenTrail(AuditTrailOptions options) {
    auto trail = AuditTrail::Open(path_, std::move(options));
    EXPECT_TRUE(trail.ok()) << trail.status().ToString();
    return trail.ok() ? std::move(trail).value() : nullptr;
  }

  static json Event(int i) {
    return {{"event", "request.approved"},
            {"request_id", "req_" + std::to_string(i)},
            {"approver", "bob"}};
  }

  // Records 1..8 with checkpoints at seq 0 (genesis), 4 and 8 (on close).
  void WriteCoveredLog() {
    auto trail = OpenTrail(Options());
    ASSERT_TRUE(trail);
    for (int i = 1; i <= kRecords; ++i) {
      ASSERT_TRUE(trail->log()->Append(Event(i)).ok());
      if (i == kRecords / 2) {
        ASSERT_TRUE(trail->checkpointer()->CheckpointNow().ok());
      }
    }
    trail.reset();
    ASSERT_EQ(ReadLines(CheckpointsPathFor(path_)).size(), 3u);
    records_ = ReadRecords(path_);
    ASSERT_EQ(records_.size(), static_cast<size_t>(kRecords));
  }

  AuditVerifyReport VerifyKeyed(std::vector<std::string> shipped = {}) {
    AuditVerifyOptions options;
    options.verifier = &verifier_;
    options.shipped_checkpoint_files = std::move(shipped);
    return VerifyAuditFile(path_, options);
  }

  // Opening as the kernel does at start.
  Status OpenAtStart(bool accept = false) {
    AuditTrailOptions options = Options();
    options.accept_unverified_history = accept;
    return AuditTrail::Open(path_, std::move(options)).status();
  }

  // Both detectors refuse the current files, naming `where` (kernel) and
  // reporting a tampered log at `bad_line` (verifier).
  void ExpectForgeryCaught(uint64_t bad_line, const std::string& kernel_says) {
    const auto keyless = VerifyAuditFile(path_);
    EXPECT_TRUE(keyless.ok) << "the forgery should fool the chain alone: " << keyless.problem;

    const auto report = VerifyKeyed();
    EXPECT_EQ(report.verdict, AuditVerdict::kTampered) << report.problem;
    EXPECT_EQ(report.bad_line, bad_line) << report.problem;

    const Status start = OpenAtStart();
    EXPECT_EQ(start.code(), StatusCode::kFailedPrecondition) << start.ToString();
    EXPECT_NE(start.message().find(kernel_says), std::string::npos) << start.message();
    // Accepting an unverifiable history never accepts a contradiction.
    EXPECT_FALSE(OpenAtStart(/*accept=*/true).ok());
  }

  ScratchDir dir_;
  std::string path_;
  std::unique_ptr<CheckpointKeyPair> pair_;
  CheckpointVerifier verifier_;
  std::vector<json> records_;
};

TEST_F(AuditTrailTest, CoveredLogVerifiesAndReopens) {
  WriteCoveredLog();
  const auto report = VerifyKeyed();
  EXPECT_EQ(report.verdict, AuditVerdict::kIntact) << report.problem;
  EXPECT_TRUE(report.signatures_checked);
  EXPECT_EQ(report.checkpoints, 3u);
  EXPECT_EQ(report.covered_seq, static_cast<uint64_t>(kRecords));
  EXPECT_FALSE(report.covered_time.empty());

  auto trail = OpenTrail(Options());
  ASSERT_TRUE(trail);
  EXPECT_EQ(trail->log()->last_sequence(), static_cast<uint64_t>(kRecords));
  ASSERT_TRUE(trail->log()->Append(Event(9)).ok());
  trail.reset();
  EXPECT_EQ(VerifyKeyed().covered_seq, static_cast<uint64_t>(kRecords + 1));
}

TEST_F(AuditTrailTest, EditedRecordIsCaught) {
  WriteCoveredLog();
  records_[2]["approver"] = "mallory";  // seq 3: change who approved
  WriteRechained(path_, records_);
  ExpectForgeryCaught(4, "records between seq 1 and 4 were edited, inserted, removed or reordered");
  EXPECT_NE(VerifyKeyed().problem.find("checkpoint of"), std::string::npos);
}

TEST_F(AuditTrailTest, EditAfterAnIntactCheckpointIsLocatedBetweenTheTwo) {
  WriteCoveredLog();
  records_[5]["approver"] = "mallory";  // seq 6
  WriteRechained(path_, records_);
  ExpectForgeryCaught(8, "records between seq 5 and 8");
}

TEST_F(AuditTrailTest, InsertedRecordIsCaught) {
  WriteCoveredLog();
  records_.insert(records_.begin() + 5, json{{"event", "request.approved"},
                                             {"request_id", "req_forged"},
                                             {"approver", "mallory"},
                                             {"ts", records_[4]["ts"]}});
  WriteRechained(path_, records_);
  ExpectForgeryCaught(8, "between seq 5 and 8");
}

TEST_F(AuditTrailTest, DeletedRecordIsCaught) {
  WriteCoveredLog();
  records_.erase(records_.begin() + 1);  // seq 2
  WriteRechained(path_, records_);
  ExpectForgeryCaught(4, "between seq 1 and 4");
}

TEST_F(AuditTrailTest, ReorderedRecordsAreCaught) {
  WriteCoveredLog();
  std::swap(records_[5], records_[6]);
  WriteRechained(path_, records_);
  ExpectForgeryCaught(8, "between seq 5 and 8");
}

TEST_F(AuditTrailTest, TruncatedLogIsCaught) {
  WriteCoveredLog();
  records_.resize(kRecords - 3);
  WriteRechained(path_, records_);
  ExpectForgeryCaught(kRecords - 2, "records after seq 4 were removed or rewritten");
}

TEST_F(AuditTrailTest, TruncatedLogWithoutItsAnchorIsCaught) {
  WriteCoveredLog();
  records_.resize(kRecords - 3);
  WriteRechained(path_, records_);
  std::filesystem::remove(path_ + ".head");
  const auto report = VerifyKeyed();
  EXPECT_EQ(report.verdict, AuditVerdict::kTampered);
  EXPECT_NE(report.problem.find("truncated"), std::string::npos) << report.problem;
  const Status start = OpenAtStart();
  EXPECT_NE(start.message().find("anchor"), std::string::npos) << start.message();
  EXPECT_NE(OpenAtStart(/*accept=*/true).message().find("contradicts its signed checkpoints"),
            std::string::npos);
}

TEST_F(AuditTrailTest, EmptiedLogWithoutAnchorIsCaught) {
  WriteCoveredLog();
  WriteLines(path_, {});
  std::filesystem::remove(path_ + ".head");
  const auto report = VerifyKeyed();
  EXPECT_EQ(report.verdict, AuditVerdict::kTampered);
  EXPECT_EQ(report.bad_line, 1u);
  const Status start = OpenAtStart(/*accept=*/true);
  EXPECT_EQ(start.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(start.message().find("the log ends at seq 0"), std::string::npos) << start.message();

  // A removed log file is no better than an emptied one.
  std::filesystem::remove(path_);
  EXPECT_FALSE(OpenAtStart(/*accept=*/true).ok());
}

TEST_F(AuditTrailTest, DroppedAnchorAloneIsRefusedAtStartUnlessAccepted) {
  WriteCoveredLog();
  std::filesystem::remove(path_ + ".head");
  const Status start = OpenAtStart();
  EXPECT_EQ(start.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(start.message().find("is missing"), std::string::npos) << start.message();
  EXPECT_NE(start.message().find("--accept-unverified-audit-history"), std::string::npos);
  // The signatures still cover every record: nothing else is wrong.
  EXPECT_EQ(VerifyKeyed().verdict, AuditVerdict::kIntact);
  EXPECT_TRUE(OpenAtStart(/*accept=*/true).ok());
  EXPECT_TRUE(std::filesystem::exists(path_ + ".head"));
}

TEST_F(AuditTrailTest, RemovedCheckpointsFileIsCaught) {
  WriteCoveredLog();
  records_[2]["approver"] = "mallory";
  WriteRechained(path_, records_);
  std::filesystem::remove(CheckpointsPathFor(path_));
  const auto report = VerifyKeyed();
  EXPECT_EQ(report.verdict, AuditVerdict::kTampered);
  EXPECT_NE(report.problem.find("no signed checkpoint"), std::string::npos) << report.problem;
  const Status start = OpenAtStart();
  EXPECT_NE(start.message().find("no signed checkpoint"), std::string::npos) << start.message();
}

TEST_F(AuditTrailTest, CheckpointSignedWithAnotherKeyIsCaught) {
  WriteCoveredLog();
  records_[2]["approver"] = "mallory";
  WriteRechained(path_, records_);
  // The attacker signs the forged head with a key of their own...
  auto theirs = GenerateCheckpointKeyPair();
  auto signer = CheckpointSigner::FromPem(theirs->private_pem);
  const auto forged_head = ReadRecords(path_).back();
  const std::string line = FormatCheckpointLine(*(*signer)->Sign(
      AuditHead{kRecords, forged_head["hash"].get<std::string>()}, "2030-01-01T00:00:00.000000Z"));
  // ...and replaces every checkpoint with theirs.
  WriteLines(CheckpointsPathFor(path_), {line});
  const auto report = VerifyKeyed();
  EXPECT_EQ(report.verdict, AuditVerdict::kTampered);
  EXPECT_NE(report.problem.find("not a trusted public key"), std::string::npos) << report.problem;
  EXPECT_NE(OpenAtStart(true).message().find("not a trusted public key"), std::string::npos);

  // Re-labelling it with our key id fails the signature instead.
  auto relabelled = json::parse(line);
  relabelled["key_id"] = pair_->key_id;
  WriteLines(CheckpointsPathFor(path_), {relabelled.dump()});
  EXPECT_NE(VerifyKeyed().problem.find("does not verify"), std::string::npos);
  EXPECT_NE(OpenAtStart(true).message().find("does not verify"), std::string::npos);
}

TEST_F(AuditTrailTest, EditedCheckpointIsCaught) {
  WriteCoveredLog();
  records_[2]["approver"] = "mallory";
  WriteRechained(path_, records_);
  // Point the last checkpoint at the forged head, keeping its signature.
  auto lines = ReadLines(CheckpointsPathFor(path_));
  auto last = json::parse(lines.back());
  last["hash"] = ReadRecords(path_).back()["hash"];
  lines.back() = last.dump();
  WriteLines(CheckpointsPathFor(path_), lines);
  EXPECT_NE(VerifyKeyed().problem.find("does not verify"), std::string::npos);
  EXPECT_NE(OpenAtStart().message().find("line 3"), std::string::npos);
}

TEST_F(AuditTrailTest, RollbackToAnEarlierCheckpointIsCaughtOnlyByShippedCopies) {
  WriteCoveredLog();
  // What syslog or the kernel's output received while it ran.
  std::vector<std::string> shipped;
  for (const auto& line : ReadLines(CheckpointsPathFor(path_))) {
    shipped.push_back("Jan  1 00:00:00 host airlockd[7]: " + std::string(kShippedCheckpointTag) +
                      line);
  }
  WriteLines(dir_.File("syslog"), shipped);
  // Roll both files back to the state at the checkpoint of seq 4.
  records_.resize(4);
  WriteRechained(path_, records_);
  auto checkpoints = ReadLines(CheckpointsPathFor(path_));
  checkpoints.resize(2);
  WriteLines(CheckpointsPathFor(path_), checkpoints);

  // The state directory alone is a consistent earlier history...
  EXPECT_EQ(VerifyKeyed().verdict, AuditVerdict::kIntact);
  EXPECT_TRUE(OpenAtStart().ok());
  // ...which the shipped checkpoints contradict.
  const auto report = VerifyKeyed({dir_.File("syslog")});
  EXPECT_EQ(report.verdict, AuditVerdict::kTampered);
  EXPECT_NE(report.problem.find("covers seq 8"), std::string::npos) << report.problem;
  EXPECT_NE(report.problem.find(dir_.File("syslog") + " line 3"), std::string::npos)
      << report.problem;
}

TEST_F(AuditTrailTest, RecordsAfterTheLastCheckpointAreReportedAsNotCovered) {
  WriteCoveredLog();
  {
    // A kernel that crashed before its next checkpoint leaves this tail.
    auto log = AuditLog::Open(path_);
    ASSERT_TRUE(log.ok());
    ASSERT_TRUE((*log)->Append(Event(9)).ok());
    ASSERT_TRUE((*log)->Append(Event(10)).ok());
  }
  auto report = VerifyKeyed();
  EXPECT_EQ(report.verdict, AuditVerdict::kIntact) << report.problem;
  EXPECT_EQ(report.records, 10u);
  EXPECT_EQ(report.covered_seq, static_cast<uint64_t>(kRecords));

  // The next start warns and covers the tail with its first checkpoint.
  ASSERT_TRUE(OpenAtStart().ok());
  report = VerifyKeyed();
  EXPECT_EQ(report.covered_seq, 10u);
}

TEST_F(AuditTrailTest, TornFinalRecordIsIncompleteNotTampered) {
  WriteCoveredLog();
  std::ofstream(path_, std::ios::binary | std::ios::app) << R"({"event":"request.appr)";
  const auto report = VerifyKeyed();
  EXPECT_EQ(report.verdict, AuditVerdict::kIncompleteTail) << report.problem;
  EXPECT_EQ(report.bad_line, static_cast<uint64_t>(kRecords + 1));
  EXPECT_NE(report.problem.find(
                "incomplete final record (recoverable: a write cut short by a crash or full disk)"),
            std::string::npos)
      << report.problem;
  EXPECT_EQ(VerifyAuditFile(path_).verdict, AuditVerdict::kIncompleteTail);
  // The kernel's recovery cuts it off, as before.
  ASSERT_TRUE(OpenAtStart().ok());
  EXPECT_EQ(VerifyKeyed().verdict, AuditVerdict::kIntact);
}

TEST_F(AuditTrailTest, TornFinalCheckpointLineIsRecoverable) {
  WriteCoveredLog();
  std::ofstream(CheckpointsPathFor(path_), std::ios::binary | std::ios::app)
      << R"({"checkpoint":1,"seq":)";
  EXPECT_EQ(VerifyKeyed().verdict, AuditVerdict::kIncompleteTail);
  ASSERT_TRUE(OpenAtStart().ok());
  EXPECT_EQ(VerifyKeyed().verdict, AuditVerdict::kIntact);
}

TEST_F(AuditTrailTest, LogWithoutCheckpointsIsRefusedUntilAccepted) {
  {
    auto log = AuditLog::Open(path_);  // written before checkpoints were configured
    ASSERT_TRUE(log.ok());
    ASSERT_TRUE((*log)->Append(Event(1)).ok());
  }
  EXPECT_EQ(OpenAtStart().code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(OpenAtStart(/*accept=*/true).ok());
  EXPECT_EQ(VerifyKeyed().covered_seq, 1u);
  EXPECT_TRUE(OpenAtStart().ok());
}

TEST_F(AuditTrailTest, CheckpointsFollowRecordCountAndTimeOffTheAppendPath) {
  auto trail = OpenTrail(Options(/*every_records=*/5));
  ASSERT_TRUE(trail);
  EXPECT_EQ(trail->checkpointer()->checkpoints_signed(), 1u);  // genesis
  for (int i = 1; i <= 12; ++i) ASSERT_TRUE(trail->log()->Append(Event(i)).ok());
  // Signed by record count: the time trigger is an hour away.
  EXPECT_TRUE(WaitFor([&] { return trail->checkpointer()->last_checkpoint_seq() >= 5; }))
      << trail->checkpointer()->last_checkpoint_seq();
  trail.reset();

  ScratchDir other;
  path_ = other.File("audit.log");
  trail = OpenTrail(Options(/*every_records=*/1000000, std::chrono::seconds(1)));
  ASSERT_TRUE(trail);
  ASSERT_TRUE(trail->log()->Append(Event(1)).ok());
  EXPECT_TRUE(WaitFor([&] { return trail->checkpointer()->last_checkpoint_seq() == 1; }));
  trail.reset();
}

TEST_F(AuditTrailTest, ConcurrentAppendsAreNotSignedOneByOne) {
  auto trail = OpenTrail(Options());
  ASSERT_TRUE(trail);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) EXPECT_TRUE(trail->log()->Append(Event(t * 1000 + i)).ok());
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(trail->log()->last_sequence(), 800u);
  EXPECT_EQ(trail->checkpointer()->checkpoints_signed(), 1u);  // only the genesis one so far
  trail.reset();
  const auto report = VerifyKeyed();
  EXPECT_EQ(report.verdict, AuditVerdict::kIntact);
  EXPECT_EQ(report.checkpoints, 2u);
  EXPECT_EQ(report.covered_seq, 800u);
}

TEST_F(AuditTrailTest, RotatedKeyKeepsTrustingCheckpointsOfThePreviousKey) {
  WriteCoveredLog();
  auto next = GenerateCheckpointKeyPair();
  ASSERT_TRUE(next.ok());
  auto rotated = [&](bool trust_previous) {
    AuditTrailOptions options = Options();
    options.signer = std::move(CheckpointSigner::FromPem(next->private_pem)).value();
    if (trust_previous) options.previous_public_keys = {pair_->public_pem};
    return AuditTrail::Open(path_, std::move(options));
  };
  EXPECT_NE(rotated(false).status().message().find("not a trusted public key"), std::string::npos);
  {
    auto trail = rotated(true);
    ASSERT_TRUE(trail.ok()) << trail.status().ToString();
    ASSERT_TRUE((*trail)->log()->Append(Event(9)).ok());
  }
  // The verifier needs both public keys.
  EXPECT_EQ(VerifyKeyed().verdict, AuditVerdict::kTampered);
  ASSERT_TRUE(verifier_.AddPublicKeyPem(next->public_pem).ok());
  const auto report = VerifyKeyed();
  EXPECT_EQ(report.verdict, AuditVerdict::kIntact) << report.problem;
  EXPECT_EQ(report.covered_seq, static_cast<uint64_t>(kRecords + 1));
}

TEST_F(AuditTrailTest, TheKeyAppearsInNoFileOfTheStateDirectory) {
  WriteCoveredLog();
  // The key's PEM body lines and its raw 32-byte seed in hex.
  std::vector<std::string> needles;
  {
    std::istringstream pem{std::string(pair_->private_pem.Reveal())};
    for (std::string line; std::getline(pem, line);) {
      if (!line.starts_with("-----")) needles.push_back(line);
    }
    BIO* bio = BIO_new_mem_buf(pair_->private_pem.Reveal().data(),
                               static_cast<int>(pair_->private_pem.Reveal().size()));
    EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
    unsigned char seed[32];
    size_t length = sizeof(seed);
    ASSERT_EQ(EVP_PKEY_get_raw_private_key(key, seed, &length), 1);
    needles.push_back(HexEncode(std::string_view(reinterpret_cast<char*>(seed), length)));
    EVP_PKEY_free(key);
    BIO_free(bio);
  }
  ASSERT_GE(needles.size(), 2u);
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir_.path())) {
    const std::string text = ReadAll(entry.path().string());
    ++files;
    for (const auto& needle : needles) {
      EXPECT_EQ(text.find(needle), std::string::npos) << entry.path();
    }
  }
  EXPECT_EQ(files, 3);  // audit.log, .head, .checkpoints
}

}  // namespace
}  // namespace airlock
