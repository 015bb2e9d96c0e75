// The audit chain's line checks (kernel/audit/audit_chain.h) against inputs
// found by fuzzing (tests/fuzz/fuzz_audit_lines.cc).
#include "kernel/audit/audit_chain.h"

#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "kernel/audit/audit_verify.h"
#include "tests/support/temp_dir.h"

namespace airlock::audit_internal {
namespace {

// One correctly chained first record whose "deep" member nests `levels`
// arrays. The canonical text is written out by hand: dumping such a record
// through nlohmann is exactly what must not happen.
std::string DeepRecordLine(int levels) {
  const std::string canonical = R"({"deep":)" + std::string(levels, '[') +
                                std::string(levels, ']') + R"(,"event":"x","prev":")" +
                                std::string(kGenesisHash) + R"(","seq":1,"ts":"t"})";
  std::string line;
  AppendRecordLine(canonical, ChainHash(kGenesisHash, canonical), &line);
  return line;
}

class AuditChainTest : public ::testing::Test {
 protected:
  std::string WriteLog(const std::string& text) {
    const std::string path = dir_.File("audit.log");
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
    return path;
  }
  airlock::test::TempDir dir_;
};

// Found by fuzz_audit_lines: a line nesting 100,000 levels (200 KB, well
// under the line limit) overflowed the verifier's stack while its hash was
// recomputed, crashing `airlockd audit verify` and the kernel's start-up scan
// instead of reporting the damage.
TEST_F(AuditChainTest, DeeplyNestedLineIsReportedNotACrash) {
  const AuditVerifyReport report = VerifyAuditFile(WriteLog(DeepRecordLine(100000)));
  EXPECT_FALSE(report.ok);
  EXPECT_EQ(report.records, 0u);
  EXPECT_EQ(report.bad_line, 1u);
  EXPECT_NE(report.problem.find("nests deeper than 128 levels"), std::string::npos)
      << report.problem;
}

TEST_F(AuditChainTest, NestingWithinTheBoundVerifies) {
  // The record object is one level, its member the rest.
  const AuditVerifyReport report = VerifyAuditFile(WriteLog(DeepRecordLine(kMaxRecordDepth - 1)));
  EXPECT_TRUE(report.ok) << report.problem;
  EXPECT_EQ(report.records, 1u);
}

}  // namespace
}  // namespace airlock::audit_internal
