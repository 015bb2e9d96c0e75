#include "kernel/audit/request_record_index.h"

#include <string>

#include <gtest/gtest.h>

namespace airlock::audit_internal {
namespace {

// The index holds at most its bound of requests, dropping the one audited
// least recently, and says from where the file must be read for what it
// dropped.
TEST(RequestRecordIndex, KeepsTheMostRecentlyAuditedRequestsAndSaysWhatToRead) {
  RequestRecordIndex index(2);
  index.Add("a", {0, 10}, true);
  index.Add("b", {10, 10}, true);
  index.Add("a", {20, 10}, false);  // a is now the more recent
  index.Add("c", {30, 10}, true);   // drops b, whose last record ends at 20
  EXPECT_EQ(index.requests(), 2u);
  auto a = index.Lookup("a");
  ASSERT_EQ(a.indexed.size(), 2u);
  EXPECT_EQ(a.indexed[1].offset, 20u);
  EXPECT_EQ(a.scan_before, 0u);
  auto b = index.Lookup("b");
  EXPECT_TRUE(b.indexed.empty());
  EXPECT_EQ(b.scan_before, 20u);
  // b again: its older records lie before 20; a new request has none.
  index.Add("b", {40, 10}, false);  // drops a (ends at 30)
  index.Add("d", {50, 10}, true);   // drops c (ends at 40)
  EXPECT_EQ(index.requests(), 2u);
  auto b2 = index.Lookup("b");
  ASSERT_EQ(b2.indexed.size(), 1u);
  EXPECT_EQ(b2.scan_before, 20u);
  EXPECT_EQ(index.Lookup("d").scan_before, 0u);
  EXPECT_EQ(index.Lookup("a").scan_before, 40u);
  for (int i = 0; i < 1000; ++i) index.Add("x" + std::to_string(i), {60u + i, 1}, true);
  EXPECT_EQ(index.requests(), 2u);
}

}  // namespace
}  // namespace airlock::audit_internal
