#include "kernel/audit/audit_verify.h"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kernel/audit/audit_log.h"
#include "kernel/common/crypto.h"
#include "tests/kernel/audit/audit_test_util.h"

namespace airlock {
namespace {

using testing_audit::ReadLines;
using testing_audit::ScratchDir;
using testing_audit::WriteLines;

constexpr int kRecords = 8;

class AuditVerifyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.File("audit.log");
    auto log = AuditLog::Open(path_);
    ASSERT_TRUE(log.ok()) << log.status().ToString();
    for (int i = 0; i < kRecords; ++i) {
      ASSERT_TRUE(
          (*log)
              ->Append({{"event", "step"}, {"request_id", "r" + std::to_string(i)}, {"n", i}})
              .ok());
    }
    lines_ = ReadLines(path_);
    ASSERT_EQ(lines_.size(), static_cast<size_t>(kRecords));
  }

  AuditVerifyReport Tamper(const std::vector<std::string>& lines) {
    WriteLines(path_, lines);
    return VerifyAuditFile(path_);
  }

  // A record a forger who knows the format would write: correct seq, prev
  // and hash for position `seq`.
  static std::string Forge(uint64_t seq, const std::string& prev) {
    nlohmann::json record = {
        {"event", "forged"}, {"seq", seq}, {"prev", prev}, {"ts", "2024-01-01T00:00:00.000000Z"}};
    record["hash"] = Sha256Hex(prev + record.dump());
    return record.dump();
  }

  static std::string HashOf(const std::string& line) { return nlohmann::json::parse(line)["hash"]; }

  ScratchDir dir_;
  std::string path_;
  std::vector<std::string> lines_;
};

TEST_F(AuditVerifyTest, IntactLogVerifies) {
  const auto report = VerifyAuditFile(path_);
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.records, static_cast<uint64_t>(kRecords));
  EXPECT_EQ(report.bad_line, 0u);
  EXPECT_TRUE(report.problem.empty());
  EXPECT_TRUE(report.anchor_checked);
}

TEST_F(AuditVerifyTest, EmptyLogVerifies) {
  ScratchDir other;
  const std::string path = other.File("empty.log");
  ASSERT_TRUE(AuditLog::Open(path).ok());
  const auto report = VerifyAuditFile(path);
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.records, 0u);
}

TEST_F(AuditVerifyTest, DetectsEditedRecord) {
  auto record = nlohmann::json::parse(lines_[3]);
  record["n"] = 99;
  lines_[3] = record.dump();
  const auto report = Tamper(lines_);
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.verdict, AuditVerdict::kTampered);
  EXPECT_EQ(report.bad_line, 4u);
  EXPECT_EQ(report.records, 3u);
  EXPECT_NE(report.problem.find("hash mismatch"), std::string::npos) << report.problem;
}

TEST_F(AuditVerifyTest, DetectsEditedRecordWhoseOwnHashWasRecomputed) {
  // Fixing the edited record's hash breaks the link to the next record.
  auto record = nlohmann::json::parse(lines_[3]);
  record["n"] = 99;
  record.erase("hash");
  record["hash"] = Sha256Hex(record["prev"].get<std::string>() + record.dump());
  lines_[3] = record.dump();
  const auto report = Tamper(lines_);
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.bad_line, 5u);
  EXPECT_NE(report.problem.find("prev"), std::string::npos) << report.problem;
}

TEST_F(AuditVerifyTest, DetectsDeletedRecord) {
  lines_.erase(lines_.begin() + 3);
  const auto report = Tamper(lines_);
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.bad_line, 4u);
  EXPECT_NE(report.problem.find("expected seq 4 but found 5"), std::string::npos) << report.problem;
}

TEST_F(AuditVerifyTest, DetectsSwappedRecords) {
  std::swap(lines_[2], lines_[3]);
  const auto report = Tamper(lines_);
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.bad_line, 3u);
  EXPECT_NE(report.problem.find("expected seq 3 but found 4"), std::string::npos) << report.problem;
}

TEST_F(AuditVerifyTest, DetectsDuplicatedRecordInserted) {
  lines_.insert(lines_.begin() + 4, lines_[1]);
  const auto report = Tamper(lines_);
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.bad_line, 5u);
  EXPECT_NE(report.problem.find("inserted"), std::string::npos) << report.problem;
}

TEST_F(AuditVerifyTest, DetectsWellFormedForgedRecordInserted) {
  // The forged line 5 chains correctly onto line 4, so the break shows on the
  // next line, whose seq (5) now repeats.
  lines_.insert(lines_.begin() + 4, Forge(5, HashOf(lines_[3])));
  const auto report = Tamper(lines_);
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.bad_line, 6u);
  EXPECT_NE(report.problem.find("expected seq 6 but found 5"), std::string::npos) << report.problem;
}

TEST_F(AuditVerifyTest, DetectsMalformedLines) {
  auto original = lines_;
  lines_[1] = "this is not json";
  auto report = Tamper(lines_);
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.bad_line, 2u);
  EXPECT_NE(report.problem.find("not valid JSON"), std::string::npos) << report.problem;

  lines_ = original;
  lines_[2] = "";
  report = Tamper(lines_);
  EXPECT_EQ(report.bad_line, 3u);

  lines_ = original;
  auto record = nlohmann::json::parse(lines_[4]);
  record.erase("seq");
  lines_[4] = record.dump();
  report = Tamper(lines_);
  EXPECT_EQ(report.bad_line, 5u);
  EXPECT_NE(report.problem.find("seq"), std::string::npos) << report.problem;
}

TEST_F(AuditVerifyTest, DetectsTruncatedTailThroughTheAnchor) {
  lines_.resize(kRecords - 2);
  const auto report = Tamper(lines_);
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.records, static_cast<uint64_t>(kRecords - 2));
  EXPECT_EQ(report.bad_line, static_cast<uint64_t>(kRecords - 1));
  EXPECT_NE(report.problem.find("truncated"), std::string::npos) << report.problem;
}

TEST_F(AuditVerifyTest, DetectsRewrittenLogThatNoLongerMatchesTheAnchor) {
  // A complete, self-consistent forged log of the same length.
  std::vector<std::string> forged;
  std::string prev(64, '0');
  for (int i = 1; i <= kRecords; ++i) {
    forged.push_back(Forge(i, prev));
    prev = HashOf(forged.back());
  }
  const auto report = Tamper(forged);
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.bad_line, static_cast<uint64_t>(kRecords));
  EXPECT_NE(report.problem.find("anchor"), std::string::npos) << report.problem;
}

TEST_F(AuditVerifyTest, WithoutAnchorTruncationGoesUnnoticedButIsReported) {
  std::filesystem::remove(path_ + ".head");
  lines_.resize(kRecords - 2);
  const auto report = Tamper(lines_);
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_FALSE(report.anchor_checked);
}

TEST_F(AuditVerifyTest, DetectsTornFinalLine) {
  {
    std::ofstream out(path_, std::ios::binary | std::ios::app);
    out << R"({"event":"half")";
  }
  const auto report = VerifyAuditFile(path_);
  EXPECT_FALSE(report.ok);
  // Not tampering: a write cut short, which the kernel recovers from.
  EXPECT_EQ(report.verdict, AuditVerdict::kIncompleteTail);
  EXPECT_EQ(report.records, static_cast<uint64_t>(kRecords));
  EXPECT_EQ(report.bad_line, static_cast<uint64_t>(kRecords + 1));
  EXPECT_NE(report.problem.find("incomplete final record (recoverable"), std::string::npos)
      << report.problem;
  EXPECT_NE(report.problem.find("incomplete final line"), std::string::npos) << report.problem;
}

TEST_F(AuditVerifyTest, MissingFileIsAProblem) {
  const auto report = VerifyAuditFile(dir_.File("absent.log"));
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.verdict, AuditVerdict::kUnreadable);
  EXPECT_NE(report.problem.find("cannot open"), std::string::npos);
}

}  // namespace
}  // namespace airlock
