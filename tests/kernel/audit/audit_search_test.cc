// Audit search over the audit file: the backend contract
// (audit_search_contract.h), and what only the file does: positions are byte
// offsets, checked before they are used, and reads cross its 1 MiB spans.
#include "kernel/audit/audit_search.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kernel/audit/audit_log.h"
#include "tests/kernel/audit/audit_search_contract.h"
#include "tests/kernel/audit/audit_test_util.h"

namespace airlock {
namespace {

using testing_audit::ScratchDir;

std::unique_ptr<AuditLog> OpenOrDie(const std::string& path) {
  auto log = AuditLog::Open(path);
  EXPECT_TRUE(log.ok()) << log.status().ToString();
  return log.ok() ? std::move(log).value() : nullptr;
}

TEST(AuditSearchTest, TheFileKeepsTheSearchContract) {
  ScratchDir dir;
  auto log = OpenOrDie(dir.File("audit.log"));
  ASSERT_TRUE(log);
  testing_audit::CheckAuditSearchContract(*log);
}

TEST(AuditSearchTest, TheContractHoldsAfterReopening) {
  ScratchDir dir;
  {
    auto log = OpenOrDie(dir.File("audit.log"));
    ASSERT_TRUE(log);
    testing_audit::AppendSearchRecords(*log);
  }
  auto log = OpenOrDie(dir.File("audit.log"));
  ASSERT_TRUE(log);
  auto newest = log->ReadBackward(std::nullopt, 1);
  ASSERT_TRUE(newest.ok());
  ASSERT_EQ(newest->size(), 1u);
  EXPECT_EQ((*newest)[0].record.value("seq", 0), testing_audit::kSearchRecords);
}

TEST(AuditSearchTest, APositionThatIsNotARecordsStartIsRefused) {
  ScratchDir dir;
  auto log = OpenOrDie(dir.File("audit.log"));
  ASSERT_TRUE(log);
  ASSERT_TRUE(log->Append({{"event", "one"}}).ok());
  ASSERT_TRUE(log->Append({{"event", "two"}}).ok());
  auto both = log->ReadBackward(std::nullopt, 10);
  ASSERT_TRUE(both.ok());
  ASSERT_EQ(both->size(), 2u);
  const uint64_t second_start = (*both)[0].before;
  EXPECT_EQ((*both)[1].before, 0u);
  for (uint64_t bad : {second_start - 1, second_start + 1, uint64_t{1} << 40}) {
    auto read = log->ReadBackward(bad, 10);
    EXPECT_EQ(read.status().code(), StatusCode::kInvalidArgument) << bad;
  }
  auto first = log->ReadBackward(second_start, 10);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->size(), 1u);
  EXPECT_EQ((*first)[0].record.value("event", ""), "one");
  EXPECT_TRUE(log->ReadBackward(uint64_t{0}, 10)->empty());
}

TEST(AuditSearchTest, ReadsCrossSpansOfLargeRecords) {
  ScratchDir dir;
  auto log = OpenOrDie(dir.File("audit.log"));
  ASSERT_TRUE(log);
  // 40 records of ~100 KiB: a read holds about ten of them.
  const std::string bulk(100 * 1024, 'x');
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(log->Append({{"event", "big"}, {"n", i}, {"bulk", bulk}}).ok());
  }
  std::vector<int> seen;
  std::optional<uint64_t> position;
  while (true) {
    auto batch = log->ReadBackward(position, 1000);
    ASSERT_TRUE(batch.ok()) << batch.status().ToString();
    if (batch->empty()) break;
    EXPECT_LT(batch->size(), 40u);
    for (const auto& at : *batch) seen.push_back(at.record.value("n", -1));
    position = batch->back().before;
  }
  ASSERT_EQ(seen.size(), 40u);
  for (int i = 0; i < 40; ++i) EXPECT_EQ(seen[i], 39 - i);
}

TEST(AuditSearchTest, EventPatternsAreExactOrAFamily) {
  EXPECT_TRUE(AuditEventMatches({}, "anything"));
  EXPECT_TRUE(AuditEventMatches({"request.approved"}, "request.approved"));
  EXPECT_FALSE(AuditEventMatches({"request.approved"}, "request.approved_extension"));
  EXPECT_TRUE(AuditEventMatches({"request.*"}, "request.denied"));
  EXPECT_FALSE(AuditEventMatches({"request.*"}, "requester.x"));
  EXPECT_FALSE(AuditEventMatches({"request.*"}, "tunnel.query"));
  EXPECT_TRUE(AuditEventMatches({"tunnel.query", "request.*"}, "tunnel.query"));
}

}  // namespace
}  // namespace airlock
