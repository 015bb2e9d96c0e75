// PostgreSQL clients as their users use them, through the pgwire tunnel of a
// real airlockd: a real PostgreSQL 15 cluster holds the data, the postgres
// connector pulls it into the enclave, and then
//   - libpq runs a set of queries through the tunnel and on PostgreSQL
//     itself: the rows and column names must be equal (the differential);
//   - node-postgres (untyped parameters, as it always sends them) and
//     psycopg2 (parameters written into the text with casts) get the same
//     rows with parameters as with literals;
//   - COPY ... TO STDOUT (psql's \copy, psycopg2's copy_expert) writes what
//     PostgreSQL writes.
#include <libpq-fe.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/kernel/e2e/kernel_process.h"
#include "tests/support/http_client.h"
#include "tests/support/postgres/pg_cluster.h"
#include "tests/support/shell_command.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

namespace airlock::test {
namespace {

using nlohmann::json;

constexpr const char* kAlice = "alk_pgclients_alice_token";
constexpr const char* kBob = "alk_pgclients_bob_token";
constexpr const char* kPgPassword = "pg-clients-reader-5c1e";

constexpr const char* kSchema =
    "CREATE TABLE orders (id int8 PRIMARY KEY, customer text, amount float8, paid bool, "
    "placed date, shipped_at timestamp, updated_at timestamptz, note text);"
    "INSERT INTO orders VALUES"
    " (1, 'Ada', 120.5, true, '2026-01-15', '2026-01-16 09:30:00', '2026-01-16 09:30:00+00', "
    "'first'),"
    " (2, 'ada', 15.25, false, '2026-02-01', '2026-02-03 17:00:00.25', '2026-02-03 18:00:00+01', "
    "NULL),"
    " (3, 'Grace', 100, true, '2026-02-28', '2026-03-01 00:00:00', '2026-03-01 00:00:00+00', "
    "'rush'),"
    " (4, 'Edsger', NULL, NULL, '2026-03-01', NULL, NULL, NULL),"
    " (5, 'O''Brien', 250, true, '2026-03-15', '2026-04-01 11:59:59', '2026-04-01 11:59:59+00', "
    "'gift 50%'),"
    " (6, 'Alan', 99.75, false, '2026-04-30', '2026-05-02 08:00:00', '2026-05-02 08:00:00+00', "
    "'A_b'),"
    " (7, 'ADA', 0.5, true, '2025-12-31', '2026-01-02 10:00:00', '2026-01-02 10:00:00+00', 'x'),"
    " (8, 'Barbara', 1000, false, NULL, '2026-06-01 00:00:00', NULL, 'first'),"
    " (9, 'Ada', -3.75, true, '2026-06-30', '2026-07-01 12:00:00', '2026-07-01 12:00:00+00', ''),"
    " (10, 'Grace', 42, NULL, '2026-08-01', '2026-08-01 12:30:00.5', '2026-08-01 12:30:00.5+00', "
    "'rush'),"
    " (17, 'Ken', 7, true, '2026-09-09', '2026-09-10 10:10:10', '2026-09-10 10:10:10+00', NULL);"
    "CREATE TABLE customers (name text, country text, tier int4);"
    "INSERT INTO customers VALUES ('Ada', 'GB', 1), ('Grace', 'US', 2), ('Edsger', 'NL', 2),"
    " ('Alan', 'GB', NULL), ('Ken', 'US', 3);";

// Queries whose answer through the tunnel must equal PostgreSQL's, cell for
// cell and column name for column name.
const std::vector<std::string>& DifferentialQueries() {
  static const std::vector<std::string> queries = {
      "SELECT * FROM orders ORDER BY id",
      "SELECT id, customer FROM orders WHERE id % 7 = 3 ORDER BY id",
      "SELECT id FROM orders WHERE placed >= '2026-03-01'::date ORDER BY id",
      "SELECT id FROM orders WHERE shipped_at < '2026-04-01T12:00:00'::timestamp ORDER BY id",
      "SELECT id FROM orders WHERE updated_at >= '2026-03-01 01:00:00+01'::timestamptz "
      "ORDER BY id",
      "SELECT id FROM orders WHERE placed = CAST('2026-3-1' AS date)",
      "SELECT id, amount FROM orders ORDER BY amount, id",
      "SELECT id, amount FROM orders ORDER BY amount DESC, id",
      "SELECT id, amount FROM orders ORDER BY amount NULLS FIRST, id",
      "SELECT id FROM orders WHERE customer LIKE 'A%' ORDER BY id",
      "SELECT id FROM orders WHERE customer NOT LIKE '%a' ORDER BY id",
      "SELECT id FROM orders WHERE customer ILIKE 'ada' ORDER BY id",
      "SELECT id FROM orders WHERE note LIKE '%50\\%' ORDER BY id",
      "SELECT id FROM orders WHERE note LIKE 'A\\_b' ORDER BY id",
      "SELECT id FROM orders WHERE note LIKE 'A!_%' ESCAPE '!' ORDER BY id",
      "SELECT customer, count(*), sum(amount), min(placed), max(shipped_at) FROM orders "
      "GROUP BY customer HAVING count(*) > 1 ORDER BY customer",
      "SELECT date_trunc('month', placed) AS m, count(*) FROM orders WHERE placed IS NOT NULL "
      "GROUP BY 1 ORDER BY 1",
      "SELECT date_trunc('day', shipped_at), date_trunc('hour', updated_at) FROM orders "
      "ORDER BY id",
      "SELECT extract(year FROM placed), extract(month FROM placed), date_part('day', placed), "
      "extract(dow FROM placed), extract(quarter FROM placed) FROM orders ORDER BY id",
      "SELECT id, placed + 1, placed - 1, 1 + placed FROM orders ORDER BY id",
      "SELECT id, placed - '2026-01-01'::date FROM orders ORDER BY id",
      "SELECT id, placed + interval '1 day', shipped_at - interval '2 hours' FROM orders "
      "ORDER BY id",
      "SELECT id, coalesce(note, 'none'), nullif(note, ''), greatest(amount, 50), "
      "least(amount, 50) FROM orders ORDER BY id",
      "SELECT id, CASE WHEN amount > 100 THEN 'big' WHEN amount > 10 THEN 'mid' ELSE 'small' END "
      "FROM orders ORDER BY id",
      "SELECT id, CASE customer WHEN 'Ada' THEN 1 WHEN 'Grace' THEN 2 END FROM orders "
      "ORDER BY id",
      "SELECT c.country, count(o.id) FROM customers c LEFT JOIN orders o ON o.customer = c.name "
      "GROUP BY c.country ORDER BY c.country",
      "SELECT o.id, c.country FROM orders o JOIN customers c ON c.name = o.customer "
      "WHERE c.tier >= 2 ORDER BY o.id",
      "SELECT name FROM customers WHERE name IN (SELECT customer FROM orders WHERE paid) "
      "ORDER BY name",
      "SELECT name FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer = "
      "c.name AND o.amount > 100) ORDER BY name",
      "SELECT name, (SELECT count(*) FROM orders o WHERE o.customer = c.name) AS n "
      "FROM customers c ORDER BY name",
      "WITH big AS (SELECT * FROM orders WHERE amount > 50) "
      "SELECT customer, count(*) FROM big GROUP BY customer ORDER BY customer",
      "SELECT customer FROM orders UNION SELECT name FROM customers ORDER BY 1",
      "SELECT customer FROM orders EXCEPT SELECT name FROM customers ORDER BY 1",
      "SELECT name FROM customers INTERSECT SELECT customer FROM orders ORDER BY 1",
      "SELECT id FROM orders WHERE id < 3 UNION ALL SELECT tier FROM customers "
      "WHERE tier IS NOT NULL ORDER BY 1",
      "SELECT id, row_number() OVER (PARTITION BY customer ORDER BY id), "
      "sum(amount) OVER (ORDER BY id ROWS BETWEEN 1 PRECEDING AND CURRENT ROW), "
      "rank() OVER w FROM orders WINDOW w AS (ORDER BY customer) ORDER BY id",
      "SELECT DISTINCT customer FROM orders ORDER BY customer LIMIT 3 OFFSET 1",
      "SELECT id FROM orders ORDER BY id OFFSET 8",
      "SELECT id FROM orders ORDER BY id FETCH FIRST 2 ROWS ONLY",
      "SELECT id FROM orders WHERE amount BETWEEN 10 AND 120 ORDER BY id",
      "SELECT id FROM orders WHERE amount NOT BETWEEN 10 AND 120 ORDER BY id",
      "SELECT id FROM orders WHERE paid IS DISTINCT FROM true ORDER BY id",
      "SELECT id FROM orders WHERE paid IS NOT TRUE ORDER BY id",
      "SELECT id FROM orders WHERE note IS NULL ORDER BY id",
      "SELECT id::text || '-' || customer, length(customer), upper(customer), "
      "lower(customer), substring(customer from 2 for 2), position('a' in customer), "
      "strpos(customer, 'a'), left(customer, 2), right(customer, 2), "
      "replace(customer, 'a', 'A') FROM orders ORDER BY id",
      "SELECT trim('  x  '), ltrim('xxy', 'x'), concat('a', NULL, 1), 'a' || 'b'",
      "SELECT '42'::int + 1, 7 / 2, 7 % 3, 2 ^ 10, abs(-3), -id, round(2.567, 2), "
      "CAST('12' AS bigint) * 2 FROM orders WHERE id = 1",
      "SELECT id, amount::int, amount::bigint FROM orders WHERE amount IS NOT NULL "
      "ORDER BY id",
      "SELECT id, placed::timestamp, shipped_at::date, updated_at::date FROM orders "
      "ORDER BY id",
      "SELECT count(*) FILTER (WHERE paid), count(DISTINCT customer), count(note) FROM orders",
      "SELECT string_agg(customer, ', ') FROM orders WHERE id = 3",
      "SELECT customer, max(amount) AS top FROM orders GROUP BY customer ORDER BY top DESC, "
      "customer LIMIT 4",
      "SELECT t.a, t.b FROM (SELECT id AS a, customer AS b FROM orders) t WHERE t.a > 8 "
      "ORDER BY t.a",
      "SELECT x.i, x.c FROM orders AS x(i, c) WHERE x.i < 3 ORDER BY x.i",
      "VALUES (1, 'one'), (2, 'two')",
      "TABLE customers ORDER BY name",
      "SELECT id FROM orders WHERE (id, customer) = (1, 'Ada')",
      "SELECT current_database() = current_database(), 1 < 2",
      "SELECT id, paid AND amount > 50, NOT paid, EXISTS (SELECT 1 FROM customers WHERE name "
      "= orders.customer) FROM orders ORDER BY id",
  };
  return queries;
}

struct PgConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct PgResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Conn = std::unique_ptr<PGconn, PgConnDeleter>;
using Res = std::unique_ptr<PGresult, PgResultDeleter>;

// A result as column names and text rows ("NULL" marks NULL), or the error.
struct Table {
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;
  std::string error;
};

Table RunSql(PGconn* conn, const std::string& sql) {
  Res res(PQexec(conn, sql.c_str()));
  Table t;
  if (PQresultStatus(res.get()) != PGRES_TUPLES_OK) {
    const char* state = PQresultErrorField(res.get(), PG_DIAG_SQLSTATE);
    t.error = std::string(state != nullptr ? state : "") + " " + PQresultErrorMessage(res.get());
    return t;
  }
  for (int c = 0; c < PQnfields(res.get()); ++c) t.columns.push_back(PQfname(res.get(), c));
  for (int r = 0; r < PQntuples(res.get()); ++r) {
    std::vector<std::string> row;
    for (int c = 0; c < PQnfields(res.get()); ++c) {
      row.push_back(PQgetisnull(res.get(), r, c) ? "NULL" : PQgetvalue(res.get(), r, c));
    }
    t.rows.push_back(std::move(row));
  }
  return t;
}

std::string Show(const Table& t) {
  if (!t.error.empty()) return "error: " + t.error;
  std::ostringstream out;
  for (const auto& c : t.columns) out << c << " | ";
  out << "\n";
  for (const auto& row : t.rows) {
    for (const auto& v : row) out << v << " | ";
    out << "\n";
  }
  return out.str();
}

// One kernel, one ready request and its pgwire grant for the whole suite.
class PgClientsE2E : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir("airlock-pgclients-");
    pki_ = new TestPki(GenerateTestPki(dir_->path()));
    pg_ = PgCluster::Start().release();
    pg_->Exec(std::string("CREATE ROLE reader LOGIN PASSWORD '") + kPgPassword + "';" + kSchema +
              "GRANT SELECT ON orders, customers TO reader;");
    ::setenv("AIRLOCK_TEST_PG_PASSWORD", kPgPassword, 1);
    const std::string ca_file = dir_->path() + "/pg-ca.crt";
    std::filesystem::copy_file(pg_->ca_file(), ca_file);

    const json policy = {{"version", 1},
                         {"rules",
                          {{{"name", "analysts"},
                            {"effect", "allow"},
                            {"subjects", {{"groups", {"analysts"}}}},
                            {"datasets", {"*"}},
                            {"approval", {{"groups", {"owners"}}, {"count", 1}}}}}}};
    json tunnel = PgwireTunnelRef(*pki_);
    // A pool of 20 connections must work with the defaults.
    const json config = {
        {"server", {{"listen_address", "127.0.0.1"}, {"port", 0}}},
        {"state_dir", dir_->path() + "/state"},
        {"identity", AliceAndBobIdentity(kAlice, kBob)},
        {"policy", RulesPolicyRef(policy)},
        {"isolator", {{"name", "inprocess"}, {"plugin", PluginPath("airlock_isolator_inprocess")}}},
        {"tunnel", tunnel},
        {"connectors",
         {{"pg",
           {{"plugin", PluginPath("airlock_connector_postgres")},
            {"config",
             {{"host", "127.0.0.1"},
              {"port", pg_->port()},
              {"database", "postgres"},
              {"user", "reader"},
              {"password", "env:AIRLOCK_TEST_PG_PASSWORD"},
              {"sslmode", "verify-ca"},
              {"ca_file", ca_file},
              {"datasets",
               {{{"name", "orders"}, {"table", "public.orders"}},
                {{"name", "customers"}, {"table", "public.customers"}}}}}}}}}},
        {"datasets",
         {{{"name", "orders"}, {"connector", "pg"}, {"object", "orders"}},
          {{"name", "customers"}, {"connector", "pg"}, {"object", "customers"}}}}};
    kernel_ = new KernelProcess(dir_->path(), config);
    ASSERT_TRUE(kernel_->Start()) << kernel_->log();
    HttpClient api("127.0.0.1", kernel_->port());
    auto created = api.Post(
        "/v1/requests",
        json{{"datasets", {"orders", "customers"}}, {"purpose", "client compatibility"}}.dump(),
        Auth(kAlice));
    ASSERT_EQ(created.status, 201u) << created.body;
    const std::string id = created.json().value("id", "");
    ASSERT_EQ(api.Post("/v1/requests/" + id + "/approve", "{}", Auth(kBob)).status, 200u);
    std::string state;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      state = api.Get("/v1/requests/" + id, Auth(kAlice)).json().value("state", "");
      if (state == "ready" || state == "failed") break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_EQ(state, "ready") << api.Get("/v1/requests/" + id, Auth(kAlice)).body << kernel_->log();
    auto grant = api.Post("/v1/requests/" + id + "/credentials", "", Auth(kAlice));
    ASSERT_EQ(grant.status, 200u) << grant.body;
    grant_ = new json(grant.json());
  }

  static void TearDownTestSuite() {
    delete grant_;
    delete kernel_;
    delete pg_;
    delete pki_;
    delete dir_;
  }

  static std::string Url() { return grant_->value("url", ""); }
  static std::string Password() { return grant_->value("credential", ""); }
  // The environment a client needs: the password and the CA.
  static std::string ClientEnvironment() {
    return "PGPASSWORD='" + Password() + "' PGSSLROOTCERT='" + pki_->ca.cert_file +
           "' PGSSLMODE=verify-ca PGCONNECT_TIMEOUT=10 PGGSSENCMODE=disable ";
  }

  static Conn ConnectTunnel() {
    const std::string root = pki_->ca.cert_file;
    const std::string password = Password();
    const std::string url = Url();
    const char* keys[] = {"dbname", "password", "sslmode", "sslrootcert", "gssencmode", nullptr};
    const char* values[] = {url.c_str(),  password.c_str(), "verify-ca",
                            root.c_str(), "disable",        nullptr};
    return Conn(PQconnectdbParams(keys, values, /*expand_dbname=*/1));
  }

  static Conn ConnectPostgres() {
    const std::string port = std::to_string(pg_->port());
    const char* keys[] = {"host", "port", "user", "dbname", "options", nullptr};
    const char* values[] = {
        pg_->socket_dir().c_str(),          port.c_str(), "postgres", "postgres",
        "-c TimeZone=UTC -c DateStyle=ISO", nullptr};
    return Conn(PQconnectdbParams(keys, values, 0));
  }

  static TempDir* dir_;
  static TestPki* pki_;
  static PgCluster* pg_;
  static KernelProcess* kernel_;
  static json* grant_;
};

TempDir* PgClientsE2E::dir_ = nullptr;
TestPki* PgClientsE2E::pki_ = nullptr;
PgCluster* PgClientsE2E::pg_ = nullptr;
KernelProcess* PgClientsE2E::kernel_ = nullptr;
json* PgClientsE2E::grant_ = nullptr;

TEST_F(PgClientsE2E, QueriesAnswerAsPostgresItselfDoes) {
  Conn tunnel = ConnectTunnel();
  ASSERT_EQ(PQstatus(tunnel.get()), CONNECTION_OK) << PQerrorMessage(tunnel.get());
  Conn postgres = ConnectPostgres();
  ASSERT_EQ(PQstatus(postgres.get()), CONNECTION_OK) << PQerrorMessage(postgres.get());
  for (const std::string& sql : DifferentialQueries()) {
    const Table expected = RunSql(postgres.get(), sql);
    ASSERT_TRUE(expected.error.empty()) << sql << ": " << expected.error;
    const Table got = RunSql(tunnel.get(), sql);
    EXPECT_EQ(Show(got), Show(expected)) << sql;
  }
}

TEST_F(PgClientsE2E, UntypedLibpqParametersTakeTheTypeOfWhatTheyMeet) {
  Conn conn = ConnectTunnel();
  ASSERT_EQ(PQstatus(conn.get()), CONNECTION_OK) << PQerrorMessage(conn.get());
  // The silent wrong answer of old: 3 as text never equalled id % 7.
  const char* three[] = {"3"};
  Res res(PQexecParams(conn.get(), "SELECT id FROM orders WHERE id % 7 = $1 ORDER BY id", 1,
                       nullptr, three, nullptr, nullptr, 0));
  ASSERT_EQ(PQresultStatus(res.get()), PGRES_TUPLES_OK) << PQerrorMessage(conn.get());
  ASSERT_EQ(PQntuples(res.get()), 3);
  EXPECT_STREQ(PQgetvalue(res.get(), 0, 0), "3");
  EXPECT_STREQ(PQgetvalue(res.get(), 1, 0), "10");
  EXPECT_STREQ(PQgetvalue(res.get(), 2, 0), "17");

  // Describe reports the inferred types, as PostgreSQL does.
  Res prepared(PQprepare(conn.get(), "typed",
                         "SELECT id FROM orders WHERE id = $1 AND placed < $2 AND customer = $3 "
                         "AND paid = $4 AND amount > $5",
                         5, nullptr));
  ASSERT_EQ(PQresultStatus(prepared.get()), PGRES_COMMAND_OK) << PQerrorMessage(conn.get());
  Res described(PQdescribePrepared(conn.get(), "typed"));
  ASSERT_EQ(PQresultStatus(described.get()), PGRES_COMMAND_OK) << PQerrorMessage(conn.get());
  ASSERT_EQ(PQnparams(described.get()), 5);
  EXPECT_EQ(PQparamtype(described.get(), 0), 20u);    // int8
  EXPECT_EQ(PQparamtype(described.get(), 1), 1082u);  // date
  EXPECT_EQ(PQparamtype(described.get(), 2), 25u);    // text
  EXPECT_EQ(PQparamtype(described.get(), 3), 16u);    // bool
  EXPECT_EQ(PQparamtype(described.get(), 4), 701u);   // float8

  // A value that is not of the inferred type is an error, not no rows.
  const char* word[] = {"three"};
  Res bad(PQexecParams(conn.get(), "SELECT id FROM orders WHERE id = $1", 1, nullptr, word, nullptr,
                       nullptr, 0));
  EXPECT_EQ(PQresultStatus(bad.get()), PGRES_FATAL_ERROR);
  EXPECT_STREQ(PQresultErrorField(bad.get(), PG_DIAG_SQLSTATE), "22P02");
  // Dates in the spellings clients send match the stored ones.
  const char* iso[] = {"2026-03-01T00:00:00.000Z"};
  Res date(PQexecParams(conn.get(), "SELECT id FROM orders WHERE placed = $1", 1, nullptr, iso,
                        nullptr, nullptr, 0));
  ASSERT_EQ(PQresultStatus(date.get()), PGRES_TUPLES_OK) << PQerrorMessage(conn.get());
  ASSERT_EQ(PQntuples(date.get()), 1);
  EXPECT_STREQ(PQgetvalue(date.get(), 0, 0), "4");
}

TEST_F(PgClientsE2E, WhatHasNoEquivalentIsRefusedByName) {
  Conn conn = ConnectTunnel();
  ASSERT_EQ(PQstatus(conn.get()), CONNECTION_OK) << PQerrorMessage(conn.get());
  struct Case {
    const char* sql;
    const char* state;
    const char* names;
  };
  const Case cases[] = {
      {"SELECT id FROM orders WHERE customer ~ '^A'", "0A000", "regular-expression"},
      {"SELECT DISTINCT ON (customer) id FROM orders", "0A000", "DISTINCT ON"},
      {"SELECT * FROM generate_series(1, 3)", "0A000", "generate_series"},
      {"SELECT ARRAY[1, 2]", "0A000", "ARRAY"},
      {"SELEC 1", "42601", "syntax error at or near \"SELEC\""},
      {"SELECT '2026-02-30'::date", "22007", "invalid input syntax for type date"},
      {"SELECT 'x'::int", "22P02", "invalid input syntax for type int4"},
      {"SELECT $1", "42P02", "there is no parameter $1"},
      {"INSERT INTO orders (id) VALUES (99)", "25006", ""},
  };
  for (const Case& c : cases) {
    Res res(PQexec(conn.get(), c.sql));
    EXPECT_EQ(PQresultStatus(res.get()), PGRES_FATAL_ERROR) << c.sql;
    const char* state = PQresultErrorField(res.get(), PG_DIAG_SQLSTATE);
    EXPECT_STREQ(state != nullptr ? state : "", c.state)
        << c.sql << ": " << PQresultErrorMessage(res.get());
    EXPECT_NE(std::string(PQresultErrorMessage(res.get())).find(c.names), std::string::npos)
        << c.sql << ": " << PQresultErrorMessage(res.get());
  }
  // Session facts clients ask for on connect.
  Res facts(PQexec(conn.get(), "SELECT version(), current_user, current_schema()"));
  ASSERT_EQ(PQresultStatus(facts.get()), PGRES_TUPLES_OK) << PQerrorMessage(conn.get());
  EXPECT_EQ(std::string(PQgetvalue(facts.get(), 0, 0)).rfind("PostgreSQL 15", 0), 0u);
  EXPECT_STREQ(PQgetvalue(facts.get(), 0, 2), "public");
}

TEST_F(PgClientsE2E, NodePostgresParametersGiveTheRowsOfLiterals) {
  const std::string script =
      std::string(AIRLOCK_SOURCE_DIR) + "/tests/support/pgclients/node_params.mjs";
  ASSERT_TRUE(std::filesystem::exists(std::string(AIRLOCK_SOURCE_DIR) +
                                      "/tests/support/pgclients/node_modules/pg"))
      << "node-postgres is not installed: scripts/test.sh installs it (npm ci in "
         "tests/support/pgclients)";
  const ShellResult run = RunShell(ClientEnvironment() + "node " + script + " '" + Url() + "' '" +
                                   pki_->ca.cert_file + "'");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const json report = json::parse(run.output, nullptr, false);
  ASSERT_TRUE(report.is_object()) << run.output;
  ASSERT_FALSE(report.contains("error")) << report.dump(2);
  EXPECT_EQ(report.size(), 12u) << report.dump(2);
  for (const auto& [name, result] : report.items()) {
    EXPECT_FALSE(result["literals"].empty()) << name;  // no case passes by matching nothing
    EXPECT_EQ(result["parameters"], result["literals"]) << name;
  }
  EXPECT_EQ(report["integer modulo"]["literals"], json::parse(R"([["3"], ["10"], ["17"]])"));
}

TEST_F(PgClientsE2E, Psycopg2ParametersAndCopyExpert) {
  const std::string script =
      std::string(AIRLOCK_SOURCE_DIR) + "/tests/support/pgclients/psycopg2_client.py";
  const ShellResult run =
      RunShell(ClientEnvironment() + "/usr/bin/python3 " + script + " '" + Url() + "'");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const json report = json::parse(run.output, nullptr, false);
  ASSERT_TRUE(report.is_object()) << run.output;
  ASSERT_FALSE(report.contains("error")) << report.dump(2);
  for (const auto& [name, result] : report.items()) {
    if (name == "copy") continue;
    EXPECT_FALSE(result["literals"].empty()) << name;
    EXPECT_EQ(result["parameters"], result["literals"]) << name;
  }
  ASSERT_TRUE(report.contains("named cursor")) << report.dump(2);
  EXPECT_EQ(report["named cursor"].value("first", 0), 3);
  // COPY writes what PostgreSQL writes.
  const std::string expected = pg_->Psql(
      "COPY (SELECT id, customer, amount, placed, note FROM orders ORDER BY id) TO STDOUT "
      "WITH (FORMAT csv, HEADER)");
  EXPECT_EQ(report.value("copy", ""), expected);
}

TEST_F(PgClientsE2E, PsqlCopiesToAFileAsPostgresDoes) {
  for (const std::string& options :
       {std::string("(FORMAT csv, HEADER)"), std::string("(FORMAT text)"),
        std::string("(FORMAT csv, DELIMITER ';', NULL 'null')")}) {
    const std::string query =
        "SELECT id, customer, amount, paid, placed, updated_at, note FROM orders ORDER BY id";
    const std::string file = dir_->path() + "/copy.out";
    std::filesystem::remove(file);
    const ShellResult run =
        RunShell(ClientEnvironment() + "psql -X -q -v ON_ERROR_STOP=1 '" + Url() +
                 "' -c \"\\copy (" + query + ") to '" + file + "' with " + options + "\" 2>&1");
    ASSERT_EQ(run.exit_code, 0) << run.output;
    std::ifstream in(file);
    std::stringstream got;
    got << in.rdbuf();
    const std::string expected =
        pg_->Psql("COPY (" + query + ") TO STDOUT WITH " + options, "postgres", "-c TimeZone=UTC");
    EXPECT_EQ(got.str(), expected) << options;
    EXPECT_FALSE(expected.empty());
  }
}

TEST_F(PgClientsE2E, PgCursorReadsInBoundedBatches) {
  const std::string script =
      std::string(AIRLOCK_SOURCE_DIR) + "/tests/support/pgclients/node_cursor.mjs";
  const std::string sql =
      "SELECT o.id, o.customer, c.country FROM orders o LEFT JOIN customers c ON c.name = "
      "o.customer ORDER BY o.id";
  const ShellResult run = RunShell(ClientEnvironment() + "node " + script + " '" + Url() + "' '" +
                                   pki_->ca.cert_file + "' 3 \"" + sql + "\"");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const json report = json::parse(run.output, nullptr, false);
  ASSERT_TRUE(report.is_object()) << run.output;
  ASSERT_FALSE(report.contains("error")) << report.dump(2);
  // 11 rows in reads of 3: each Execute stopped at its limit.
  EXPECT_EQ(report["batches"], json::parse("[3, 3, 3, 2]"));
  Conn postgres = ConnectPostgres();
  const Table expected = RunSql(postgres.get(), sql);
  ASSERT_EQ(report["rows"].size(), expected.rows.size());
  for (size_t i = 0; i < expected.rows.size(); ++i) {
    for (size_t c = 0; c < expected.rows[i].size(); ++c) {
      const json& cell = report["rows"][i][c];
      EXPECT_EQ(cell.is_null() ? "NULL" : cell.get<std::string>(), expected.rows[i][c]);
    }
  }
  EXPECT_EQ(report["after"], json::parse(R"([["11"]])"));
}

TEST_F(PgClientsE2E, PsqlFetchCountReadsThroughACursor) {
  const std::string query = "SELECT id, customer, placed FROM orders ORDER BY id";
  const ShellResult whole =
      RunShell(ClientEnvironment() + "psql -X -A -t '" + Url() + "' -c \"" + query + "\"");
  ASSERT_EQ(whole.exit_code, 0) << whole.output;
  const ShellResult fetched =
      RunShell(ClientEnvironment() + "psql -X -A -t -v ON_ERROR_STOP=1 -v FETCH_COUNT=4 '" + Url() +
               "' -c \"" + query + "\"");
  ASSERT_EQ(fetched.exit_code, 0) << fetched.output;
  EXPECT_EQ(fetched.output, whole.output);
  EXPECT_EQ(std::count(whole.output.begin(), whole.output.end(), '\n'), 11);
}

// psql's describe commands read pg_catalog: the tunnel answers them from
// the grant, as PostgreSQL answers them from its catalog.
TEST_F(PgClientsE2E, PsqlDescribesTheGrantAsPostgresDescribesItsTables) {
  const auto psql = [&](const std::string& command) {
    return RunShell(ClientEnvironment() + "psql -X -v ON_ERROR_STOP=1 '" + Url() + "' -c '" +
                    command + "' 2>&1");
  };
  const auto postgres = [&](const std::string& command) {
    return RunShell("PGPASSWORD='" + std::string(kPgPassword) +
                    "' PGSSLMODE=disable psql -X -v ON_ERROR_STOP=1 -h 127.0.0.1 -p " +
                    std::to_string(pg_->port()) + " -U reader postgres -c '" + command + "' 2>&1");
  };
  // \d of a table: columns and types as PostgreSQL prints them.
  for (const std::string table : {"customers", "orders"}) {
    const ShellResult got = psql("\\d " + table);
    ASSERT_EQ(got.exit_code, 0) << got.output;
    const ShellResult expected = postgres("\\d " + table);
    ASSERT_EQ(expected.exit_code, 0) << expected.output;
    // PostgreSQL's orders has a primary key (not null, an index) the
    // grant's tables document does not describe.
    std::string want = expected.output;
    if (table == "orders") {
      want = want.substr(0, want.find("Indexes:"));
      const std::string not_null = " not null ";
      if (auto at = want.find(not_null); at != std::string::npos) {
        want.replace(at, not_null.size(), std::string(not_null.size(), ' '));
      }
    }
    const auto trimmed = [](std::string text) {
      while (!text.empty() && text.back() == '\n') text.pop_back();
      return text;
    };
    EXPECT_EQ(trimmed(got.output), trimmed(want)) << table;
  }
  const ShellResult tables = psql("\\dt");
  ASSERT_EQ(tables.exit_code, 0) << tables.output;
  const std::string owner = grant_->value("user", "");
  EXPECT_NE(tables.output.find(" public | customers | table | " + owner), std::string::npos)
      << tables.output;
  EXPECT_NE(tables.output.find(" public | orders    | table | " + owner), std::string::npos)
      << tables.output;
  EXPECT_NE(tables.output.find("(2 rows)"), std::string::npos) << tables.output;
  const ShellResult pattern = psql("\\dt ord*");
  EXPECT_NE(pattern.output.find("(1 row)"), std::string::npos) << pattern.output;
  const ShellResult everything = psql("\\d");
  EXPECT_NE(everything.output.find("(2 rows)"), std::string::npos) << everything.output;
  const ShellResult databases = psql("\\l");
  ASSERT_EQ(databases.exit_code, 0) << databases.output;
  EXPECT_NE(databases.output.find(" " + owner + " | " + owner + " | UTF8"), std::string::npos)
      << databases.output;
  const ShellResult schemas = psql("\\dn");
  ASSERT_EQ(schemas.exit_code, 0) << schemas.output;
  EXPECT_NE(schemas.output.find(" public "), std::string::npos) << schemas.output;
  // information_schema too, for tools that read it.
  const ShellResult columns = psql(
      "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = "
      "$$customers$$ ORDER BY ordinal_position");
  EXPECT_EQ(columns.output, postgres("SELECT column_name, data_type FROM "
                                     "information_schema.columns WHERE table_name = "
                                     "$$customers$$ ORDER BY ordinal_position")
                                .output);
}

TEST_F(PgClientsE2E, JdbcMetadataAndTypedParametersMatchPostgres) {
  const std::string jar = "/usr/share/java/postgresql.jar";
  ASSERT_TRUE(std::filesystem::exists(jar))
      << "the PostgreSQL JDBC driver is not installed (libpostgresql-jdbc-java)";
  const std::string program =
      std::string(AIRLOCK_SOURCE_DIR) + "/tests/support/pgclients/JdbcClient.java";
  const auto run = [&](const std::string& environment, const std::string& url) {
    const ShellResult result =
        RunShell(environment + "java -cp " + jar + " " + program + " '" + url + "'");
    EXPECT_EQ(result.exit_code, 0) << result.output;
    json report = json::parse(result.output, nullptr, false);
    EXPECT_TRUE(report.is_object()) << result.output;
    return report;
  };
  const std::string ca = pki_->ca.cert_file;
  const std::string request = grant_->value("user", "");
  const std::string tunnel_port = Url().substr(Url().rfind(':') + 1);
  json tunnel = run("PGUSER='" + request + "' PGPASSWORD='" + Password() + "' ",
                    "jdbc:postgresql://127.0.0.1:" + tunnel_port.substr(0, tunnel_port.find('/')) +
                        "/" + request + "?sslmode=verify-ca&sslrootcert=" + ca);
  json postgres = run(
      "PGUSER=reader PGPASSWORD='" + std::string(kPgPassword) + "' ",
      "jdbc:postgresql://127.0.0.1:" + std::to_string(pg_->port()) + "/postgres?sslmode=disable");
  ASSERT_FALSE(tunnel.contains("error")) << tunnel.dump(2);
  ASSERT_FALSE(postgres.contains("error")) << postgres.dump(2);
  EXPECT_EQ(tunnel["tables"], json::parse(R"(["customers", "orders"])"));
  EXPECT_EQ(tunnel["tables"], postgres["tables"]);
  EXPECT_EQ(tunnel["columns"], postgres["columns"]);
  EXPECT_FALSE(tunnel["rows"].empty());
  EXPECT_EQ(tunnel["rows"], postgres["rows"]);
  EXPECT_EQ(tunnel.value("fetched", 0), 11);
  EXPECT_EQ(tunnel.value("product", ""), "PostgreSQL");
}

TEST_F(PgClientsE2E, APoolOfTwentyConnectionsWorksWithTheDefaults) {
  std::vector<Conn> pool;
  for (int i = 0; i < 20; ++i) {
    pool.push_back(ConnectTunnel());
    ASSERT_EQ(PQstatus(pool.back().get()), CONNECTION_OK)
        << i << ": " << PQerrorMessage(pool.back().get());
  }
  for (auto& conn : pool) {
    Res res(PQexec(conn.get(), "SELECT count(*) FROM orders"));
    ASSERT_EQ(PQresultStatus(res.get()), PGRES_TUPLES_OK) << PQerrorMessage(conn.get());
    EXPECT_STREQ(PQgetvalue(res.get(), 0, 0), "11");
  }
}

}  // namespace
}  // namespace airlock::test
