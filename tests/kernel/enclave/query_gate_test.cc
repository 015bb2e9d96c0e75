// The enclave's query gate (query_gate.h): the SQL it writes for aggregate
// calls, and what it refuses, word for word.
#include "kernel/enclave/query_gate.h"

#include <gtest/gtest.h>

#include "tests/kernel/enclave/clean_room_gate.h"

namespace airlock::enclave {
namespace {

QueryGate GateWithCleanRoom() {
  return SalesCleanRoomGate(5);
}

TEST(QueryGate, WritesTheSqlOfAnAggregateCallWithTheMinimumGroupSize) {
  const QueryGate gate = GateWithCleanRoom();
  auto sql = gate.Admit(
      R"(  aggregate {"dataset":"sales","dimensions":["region"],"metrics":[{"function":"count"},)"
      R"({"function":"sum","column":"amount"}],"filters":[{"column":"region","op":"in",)"
      R"("value":["EU","it's"]}]})");
  ASSERT_TRUE(sql.ok()) << sql.status().ToString();
  EXPECT_EQ(*sql,
            "SELECT \"region\", COUNT(*) AS \"count\", SUM(\"amount\") AS \"sum_amount\" FROM "
            "\"sales\" WHERE \"region\" IN ('EU', 'it''s') GROUP BY \"region\" HAVING COUNT(*) "
            ">= 5 ORDER BY \"region\"");
  // A table without the obligation: any column, groups of any size.
  sql =
      gate.Admit(R"(AGGREGATE{"dataset":"plain","metrics":[{"function":"max","column":"a\"b"}]})");
  ASSERT_TRUE(sql.ok()) << sql.status().ToString();
  EXPECT_EQ(*sql, "SELECT MAX(\"a\"\"b\") AS \"max_a\"\"b\" FROM \"plain\" HAVING COUNT(*) >= 1");
}

TEST(QueryGate, RefusesWhatTheCleanRoomForbidsWithTheReason) {
  const QueryGate gate = GateWithCleanRoom();
  const auto refusal = [&](const std::string& text) {
    auto admitted = gate.Admit(text);
    EXPECT_FALSE(admitted.ok()) << text;
    return admitted.ok() ? std::string() : admitted.status().message();
  };
  EXPECT_NE(refusal("SELECT * FROM plain").find("aggregate_only obligation on sales"),
            std::string::npos);
  EXPECT_NE(refusal(R"(AGGREGATE {"dataset":"sales","metrics":[{"function":"count"}],)"
                    R"("filters":[{"column":"id","op":"eq","value":7}]})")
                .find("filters may name dimensions only, not 'id'"),
            std::string::npos);
  EXPECT_NE(
      refusal(R"(AGGREGATE {"dataset":"sales","metrics":[{"function":"avg","column":"amount"}]})")
          .find("function avg is not allowed"),
      std::string::npos);
  EXPECT_NE(refusal(R"(AGGREGATE {"dataset":"nope","metrics":[{"function":"count"}]})")
                .find("no table 'nope'"),
            std::string::npos);
  EXPECT_NE(refusal("AGGREGATE [1]").find("one JSON object"), std::string::npos);
  EXPECT_NE(refusal(R"(AGGREGATE {"dataset":"sales","metrics":[]})").find("at least one"),
            std::string::npos);
}

// Found by fuzz_query_gate: members of the wrong type are refused, not
// thrown on.
TEST(QueryGate, MembersOfTheWrongTypeAreRefused) {
  const QueryGate gate = GateWithCleanRoom();
  for (
      const char* text :
      {R"(AGGREGATE {"dataset":"sales","dimensions":["region"],"metrics":[{"function":["EU","US"]}]})",
       R"(AGGREGATE {"dataset":"sales","metrics":[{"function":"count"}],"filters":[{"column":"region","op":7,"value":1}]})",
       R"(AGGREGATE {"dataset":7,"metrics":[{"function":"count"}]})"}) {
    auto admitted = gate.Admit(text);
    ASSERT_FALSE(admitted.ok()) << text;
    EXPECT_EQ(admitted.status().code(), StatusCode::kInvalidArgument) << text;
  }
}

}  // namespace
}  // namespace airlock::enclave
