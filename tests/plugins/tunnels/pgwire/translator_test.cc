// The translator alone: what PostgreSQL text becomes, the types parameters
// get, and what is refused. Whether the translated SQL answers as
// PostgreSQL does is the differential test's part
// (tests/kernel/e2e_pg_clients); these pin the decisions behind it.
#include "plugins/tunnels/pgwire/translator.h"

#include <gtest/gtest.h>

#include "plugins/tunnels/pgwire/types.h"

namespace airlock::tunnels::pgwire {
namespace {

GrantSchema OrdersSchema() {
  GrantSchema schema;
  schema.tables.push_back(TableSchema{"orders",
                                      3,
                                      {{"id", oid::kInt8},
                                       {"amount", oid::kFloat8},
                                       {"placed", oid::kDate},
                                       {"updated_at", oid::kTimestamptz},
                                       {"customer", oid::kText},
                                       {"paid", oid::kBool}}});
  return schema;
}

Translation Ok(std::string_view sql, std::vector<uint32_t> declared = {}) {
  auto result = Translate(sql, OrdersSchema(), declared, SessionFacts{"req_1", "req_1", "psql"});
  if (auto* error = std::get_if<PgError>(&result)) {
    ADD_FAILURE() << sql << ": " << error->sqlstate << " " << error->message;
    return {};
  }
  return std::get<Translation>(result);
}

PgError Refused(std::string_view sql) {
  auto result = Translate(sql, OrdersSchema(), {}, SessionFacts{"req_1", "req_1", "psql"});
  if (auto* error = std::get_if<PgError>(&result)) return *error;
  ADD_FAILURE() << sql << " was translated to " << std::get<Translation>(result).sql;
  return {};
}

TEST(Translator, UntypedParametersTakeTheTypeOfWhatTheyAreComparedWith) {
  EXPECT_EQ(Ok("SELECT id FROM orders WHERE id % 7 = $1").parameter_types,
            std::vector<uint32_t>{oid::kInt8});
  EXPECT_EQ(Ok("SELECT id FROM orders WHERE $1 < amount").parameter_types,
            std::vector<uint32_t>{oid::kFloat8});
  EXPECT_EQ(Ok("SELECT id FROM orders o WHERE o.placed BETWEEN $1 AND $2").parameter_types,
            (std::vector<uint32_t>{oid::kDate, oid::kDate}));
  EXPECT_EQ(Ok("SELECT id FROM orders WHERE paid IN ($1)").parameter_types,
            std::vector<uint32_t>{oid::kBool});
  EXPECT_EQ(Ok("SELECT $1::int, $2").parameter_types,
            (std::vector<uint32_t>{oid::kInt4, oid::kText}));
  EXPECT_EQ(Ok("SELECT id FROM orders LIMIT $1").parameter_types,
            std::vector<uint32_t>{oid::kInt8});
  // Declared types win over inference.
  EXPECT_EQ(Ok("SELECT id FROM orders WHERE id = $1", {oid::kText}).parameter_types,
            std::vector<uint32_t>{oid::kText});
  // A column of a subquery in FROM is typed through it.
  EXPECT_EQ(Ok("SELECT s.x FROM (SELECT amount AS x FROM orders) s WHERE s.x > $1").parameter_types,
            std::vector<uint32_t>{oid::kFloat8});
}

TEST(Translator, ConstantsAreConvertedWhenTheStatementIsRead) {
  EXPECT_NE(Ok("SELECT '2026-08-01T10:00:00'::timestamp").sql.find("'2026-08-01 10:00:00'"),
            std::string::npos);
  EXPECT_NE(Ok("SELECT '2026-08-01 12:00:00+02'::timestamptz").sql.find("'2026-08-01 10:00:00+00'"),
            std::string::npos);
  EXPECT_EQ(Refused("SELECT '2026-02-30'::date").sqlstate, "22007");
  // As JDBC sends a date: with a zone and no time.
  EXPECT_NE(Ok("SELECT '2026-02-01 +00'::date").sql.find("'2026-02-01'"), std::string::npos);
  EXPECT_EQ(Refused("SELECT '2026-02-01 x'::date").sqlstate, "22007");
  // Byte strings: PostgreSQL's hex bytea input and X'...' as whole bytes.
  const std::string bytes = Ok("SELECT '\\x00ff'::bytea, 'AB'::bytea, X'0aFF'").sql;
  for (const char* literal : {"X'00ff' AS", "X'4142' AS", "X'0aFF' AS"}) {
    EXPECT_NE(bytes.find(literal), std::string::npos) << literal << " in " << bytes;
  }
  EXPECT_EQ(Refused("SELECT '\\x0'::bytea").sqlstate, "22P02");
  EXPECT_EQ(Refused("SELECT B'101'").sqlstate, "0A000");
  EXPECT_EQ(Refused("SELECT '12x'::int").sqlstate, "22P02");
  EXPECT_EQ(Refused("SELECT '99999999999'::int4").sqlstate, "22003");
}

TEST(Translator, CastsOfNumbersRoundAsPostgresDoes) {
  // A double's halves go to the even neighbour (rint), as PostgreSQL's
  // float8-to-integer cast does; the parser's JSON drops negative integers,
  // which are read back from the text.
  const std::string sql = Ok("SELECT amount::int, abs(-3), - 7, 0 FROM orders").sql;
  EXPECT_NE(sql.find("2 * round(\"amount\" / 2.0)"), std::string::npos) << sql;
  EXPECT_NE(sql.find("-7 AS"), std::string::npos) << sql;
  EXPECT_NE(sql.find(", 0 AS"), std::string::npos) << sql;
  EXPECT_NE(sql.find("abs(-3)"), std::string::npos) << sql;
}

TEST(Translator, LikeStaysCaseSensitive) {
  EXPECT_NE(Ok("SELECT id FROM orders WHERE customer LIKE 'A%\\_*'").sql.find("GLOB 'A*_[*]'"),
            std::string::npos);
  const Translation bound = Ok("SELECT id FROM orders WHERE customer LIKE $1");
  ASSERT_EQ(bound.derived.size(), 1u);
  EXPECT_EQ(bound.derived[0].source, 1);
  EXPECT_NE(bound.sql.find("$" + std::to_string(kFirstDerivedParameter)), std::string::npos);
  EXPECT_EQ(std::get<std::string>(LikeToGlob("a[b]?%_\\%", '\\')), "a[[]b][?]*?%");
  EXPECT_EQ(std::get<PgError>(LikeToGlob("ab\\", '\\')).sqlstate, "22025");
}

TEST(Translator, NullsSortAsInPostgres) {
  const std::string sql = Ok("SELECT id FROM orders ORDER BY amount, id DESC").sql;
  EXPECT_NE(sql.find("\"amount\" ASC NULLS LAST, \"id\" DESC NULLS FIRST"), std::string::npos)
      << sql;
}

TEST(Translator, ColumnsAreNamedAsPostgresNamesThem) {
  const std::string sql =
      Ok("SELECT count(*), amount::int, 1, coalesce(customer, ''), CASE WHEN paid THEN 1 END, "
         "EXISTS (SELECT 1) FROM orders")
          .sql;
  for (const char* name : {"AS \"count\"", "AS \"amount\"", "AS \"?column?\"", "AS \"coalesce\"",
                           "AS \"case\"", "AS \"exists\""}) {
    EXPECT_NE(sql.find(name), std::string::npos) << name << " in " << sql;
  }
}

TEST(Translator, ConstructsWithoutAnEquivalentAreRefusedByName) {
  for (const auto& [sql, names] : std::vector<std::pair<std::string, std::string>>{
           {"SELECT id FROM orders WHERE customer ~ 'x'", "regular-expression"},
           {"SELECT DISTINCT ON (id) id FROM orders", "DISTINCT ON"},
           {"SELECT * FROM generate_series(1, 2)", "generate_series"},
           {"SELECT * FROM orders, LATERAL (SELECT 1) x", "LATERAL"},
           {"SELECT string_agg(customer, ',' ORDER BY customer) FROM orders", "ORDER BY inside"},
           {"SELECT id FROM orders FOR UPDATE", "FOR UPDATE"},
           {"SELECT * FROM pg_catalog.pg_stat_activity", "pg_catalog.pg_stat_activity"},
           {"SELECT * FROM orders, pg_catalog.pg_class", "both catalog relations and"},
           {"EXPLAIN SELECT 1", "EXPLAIN"},
       }) {
    const PgError error = Refused(sql);
    EXPECT_EQ(error.sqlstate, "0A000") << sql;
    EXPECT_NE(error.message.find(names), std::string::npos) << sql << ": " << error.message;
  }
  // A quoted function name could hold any text: only plain names go to the
  // engine (found by the translator's fuzz target).
  const PgError quoted = Refused("SELECT \"x; DROP TABLE orders; --\"(1)");
  EXPECT_EQ(quoted.sqlstate, "42883");
  EXPECT_NE(Ok("SELECT json_extract(customer, '$.a') FROM orders").sql.find("json_extract("),
            std::string::npos);
  const PgError syntax = Refused("SELECT FROM FROM");
  EXPECT_EQ(syntax.sqlstate, "42601");
  EXPECT_NE(syntax.message.find("syntax error at or near"), std::string::npos) << syntax.message;
}

TEST(Translator, CatalogStatementsGoToTheCatalog) {
  const Translation t =
      Ok("SELECT c.relname FROM pg_catalog.pg_class c WHERE c.relname OPERATOR(pg_catalog.~) "
         "'^(orders)$' COLLATE pg_catalog.default AND pg_catalog.pg_table_is_visible(c.oid) "
         "AND c.oid = 'orders'::regclass");
  EXPECT_TRUE(t.catalog);
  EXPECT_NE(t.sql.find("pg_regex_match("), std::string::npos) << t.sql;
  EXPECT_NE(t.sql.find("pg_regclass_oid('orders')"), std::string::npos) << t.sql;
  EXPECT_TRUE(Ok("SELECT pg_catalog.format_type(23, -1)").catalog);
  EXPECT_FALSE(Ok("SELECT id FROM orders").catalog);
  // Outside the catalog, regular expressions have no equivalent.
  EXPECT_EQ(Refused("SELECT id FROM orders WHERE customer ~ 'x'").sqlstate, "0A000");
}

TEST(Translator, CopyOutReadsItsOptions) {
  const Translation csv =
      Ok("COPY (SELECT id FROM orders) TO STDOUT WITH (FORMAT csv, HEADER, DELIMITER ';')");
  EXPECT_EQ(csv.kind, StatementKind::kCopyOut);
  EXPECT_TRUE(csv.copy.csv);
  EXPECT_TRUE(csv.copy.header);
  EXPECT_EQ(csv.copy.delimiter, ';');
  EXPECT_EQ(csv.copy.null_text, "");
  const Translation text = Ok("COPY orders (id, customer) TO STDOUT");
  EXPECT_FALSE(text.copy.csv);
  EXPECT_EQ(text.copy.null_text, "\\N");
  EXPECT_NE(text.sql.find("SELECT \"id\", \"customer\" FROM \"orders\""), std::string::npos);
  EXPECT_EQ(Refused("COPY orders FROM STDIN").sqlstate, "0A000");
  EXPECT_EQ(Refused("COPY orders TO '/etc/passwd'").sqlstate, "0A000");
}

TEST(Translator, SessionFunctionsAnswerFromTheSession) {
  const std::string sql = Ok("SELECT current_user, current_database(), version()").sql;
  EXPECT_NE(sql.find("'req_1' AS \"current_user\""), std::string::npos) << sql;
  EXPECT_NE(sql.find("'PostgreSQL 15"), std::string::npos) << sql;
}

}  // namespace
}  // namespace airlock::tunnels::pgwire
