// The benchmark's joins answer exactly as PostgreSQL does: the join suite's
// data (bench/e2e/fixture.h) at a test's scale, in its three real sources
// (a throwaway PostgreSQL cluster, the MongoDB wire-protocol test double, a
// CSV file), pulled into an enclave under the `process` isolator and queried
// through each tunnel; PostgreSQL answers the same SQL over the same rows
// loaded locally, and the two answers are compared row for row.
#include <gtest/gtest.h>

#include <libpq-fe.h>

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "bench/e2e/fixture.h"
#include "bench/e2e/join_check.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

namespace airlock::bench {
namespace {

using nlohmann::json;

json PostgresAnswer(test::PgCluster& pg, const std::string& sql) {
  const std::string conninfo = "host=" + pg.socket_dir() + " port=" + std::to_string(pg.port()) +
                               " user=postgres dbname=baseline";
  PGconn* c = PQconnectdb(conninfo.c_str());
  EXPECT_EQ(PQstatus(c), CONNECTION_OK) << PQerrorMessage(c);
  PGresult* r = PQexec(c, sql.c_str());
  EXPECT_EQ(PQresultStatus(r), PGRES_TUPLES_OK) << PQresultErrorMessage(r);
  json rows = NormalizedRows(r);
  PQclear(r);
  PQfinish(c);
  return rows;
}

TEST(SameRows, NamesTheFirstCellThatDiffersAndToleratesSummationOrder) {
  const json pg =
      NormalizedRows(json::parse(R"([["a", "3", "0.30000000000000004"], ["b", "1", null]])"));
  std::string why;
  EXPECT_TRUE(SameRows(pg, NormalizedRows(json::parse(R"([["a", 3, 0.3], ["b", 1, null]])")), &why))
      << why;
  EXPECT_FALSE(
      SameRows(pg, NormalizedRows(json::parse(R"([["a", 3, 0.31], ["b", 1, null]])")), &why));
  EXPECT_EQ(why, "row 0 column 2: 0.31, expected 0.30000000000000004");
  EXPECT_FALSE(
      SameRows(pg, NormalizedRows(json::parse(R"([["a", 3, 0.3], ["b", 1, "x"]])")), &why));
  EXPECT_EQ(why, "row 1 column 2: \"x\", expected null");
  EXPECT_FALSE(SameRows(pg, NormalizedRows(json::parse(R"([["a", 3, 0.3]])")), &why));
  EXPECT_EQ(why, "1 rows, expected 2");
  EXPECT_FALSE(SameRows(pg, NormalizedRows(json::parse(R"([["a", 3], ["b", 1]])")), &why));
  EXPECT_EQ(why, "row 0 has 2 columns, expected 3");
}

TEST(JoinCorrectness, TheBenchJoinsAnswerRowForRowAsPostgreSQLThroughBothTunnels) {
  test::TempDir dir("airlock-join-check-");
  Sources sources(dir.path() + "/sources");
  const Scale scale{20'000, 20'000, 500, "check"};
  sources.Load(scale);
  sources.pg().Exec("CREATE DATABASE baseline");
  sources.pg().Exec(BaselineSql(scale, true), "baseline");
  const json expected_join = PostgresAnswer(sources.pg(), JoinSql());
  const json expected_full = PostgresAnswer(sources.pg(), FullJoinSql());
  ASSERT_EQ(expected_join.size(), 10u);
  // 50 regions × 8 countries meet in 200 pairs, each under 3 segments: an
  // answer large enough that a lost or doubled row shows.
  ASSERT_GE(expected_full.size(), 500u);

  const test::TestPki pki = test::GenerateTestPki(dir.path());
  for (const std::string transport : {"https", "pgwire"}) {
    SCOPED_TRACE(transport);
    const std::string kernel_dir = dir.path() + "/" + transport;
    std::filesystem::create_directories(kernel_dir);
    KernelOptions options;
    options.tunnel = transport;
    test::KernelProcess kernel(kernel_dir, KernelConfig(sources, scale, kernel_dir, pki, options));
    ASSERT_TRUE(kernel.Start()) << kernel.log();
    Api api(kernel.port());
    std::string error;
    const std::string id = api.Create(&error);
    ASSERT_FALSE(id.empty()) << error;
    ASSERT_TRUE(api.Approve(id, &error)) << error;
    ASSERT_TRUE(api.WaitReady(id, 120, 20, &error)) << error << kernel.log();
    Grant grant;
    ASSERT_TRUE(api.Credentials(id, &grant, &error)) << error;
    TunnelClient tunnel(grant, transport, pki.ca.cert_file);

    int64_t count = 0;
    json join, full;
    ASSERT_TRUE(tunnel.Query(JoinSql(), &count, &join, &error)) << error;
    ASSERT_TRUE(tunnel.Query(FullJoinSql(), &count, &full, &error)) << error;
    std::string difference;
    EXPECT_TRUE(SameRows(expected_join, join, &difference)) << difference;
    EXPECT_TRUE(SameRows(expected_full, full, &difference)) << difference;
    // The comparison sees a single order left out of the enclave's answer.
    json short_one;
    std::string sql = FullJoinSql();
    sql.insert(sql.find(" GROUP BY"), " WHERE o.order_id <> 777");
    ASSERT_TRUE(tunnel.Query(sql, &count, &short_one, &error)) << error;
    EXPECT_FALSE(SameRows(expected_full, short_one, &difference));
    EXPECT_NE(difference.find("column 3"), std::string::npos) << difference;
    EXPECT_EQ(kernel.Stop(), 0) << kernel.log();
  }
}

}  // namespace
}  // namespace airlock::bench
