// Runs the connector conformance kit (sdk/include/airlock/testing/) against
// the postgres connector and a real PostgreSQL 15 cluster
// (tests/support/postgres), over TLS verify-full with password
// authentication, so the bad-credentials and permission-denied cases are the
// server's own answers (SQLSTATE 28P01 and 42501).
//
// A binary of its own: a plugin binds to the first host that enters it, and
// the kit brings its own host.
#include <memory>
#include <string>

#include "airlock/testing/connector_conformance.hpp"
#include "tests/support/postgres/pg_cluster.h"

namespace {

namespace conformance = airlock::conformance;

constexpr char kPluginPath[] = AIRLOCK_PLUGIN_DIR "/airlock_connector_postgres.so";
constexpr int64_t kLargeRows = 100000;
constexpr int64_t kBatchRows = 1000;
constexpr char kPassword[] = "conformance-pg-pw-4e7a";
constexpr char kWrongPassword[] = "wrong-pg-pw-hunter2-91bd";
constexpr char kPasswordRef[] = "env:AIRLOCK_PG_CONFORMANCE_PW";
constexpr char kWrongPasswordRef[] = "env:AIRLOCK_PG_CONFORMANCE_WRONG_PW";

// A SQL literal for test data (quotes doubled; the cluster uses
// standard_conforming_strings, so backslashes are plain characters).
std::string Literal(const std::optional<std::string>& text) {
  if (!text) return "NULL";
  std::string out = "'";
  for (char c : *text) {
    if (c == '\'') out.push_back('\'');
    out.push_back(c);
  }
  return out + "'";
}

class PostgresConformanceFixture : public conformance::ConnectorFixture {
 public:
  airlock::Result<conformance::ConformanceSetup> Prepare() override {
    try {
      cluster_ = airlock::test::PgCluster::Start();
      std::string sql =
          "CREATE ROLE reader LOGIN PASSWORD '" + std::string(kPassword) +
          "';"
          "CREATE TABLE typed (id int8 NOT NULL, name text, amount float8, active bool,"
          " created_at timestamptz);"
          "CREATE TABLE empty (id int8, name text);"
          "CREATE TABLE large (id int8, label text);"
          "INSERT INTO large SELECT g, 'row ' || g FROM generate_series(1, " +
          std::to_string(kLargeRows) +
          ") g;"
          "CREATE TABLE forbidden (id int8);"
          "GRANT SELECT ON typed, empty, large TO reader;";
      for (const auto& row : conformance::TypedRows()) {
        sql += "INSERT INTO typed VALUES (" + std::to_string(row.id) + ", " + Literal(row.name) +
               ", " +
               (row.amount ? conformance::detail::FormatDouble(*row.amount) : std::string("NULL")) +
               ", " + (row.active ? (*row.active ? "true" : "false") : "NULL") + ", " +
               Literal(row.created_at) + ");";
      }
      cluster_->Exec(sql);
    } catch (const std::exception& e) {
      return airlock::Status::Internal(std::string("test cluster: ") + e.what());
    }

    auto config = [this](const char* password_ref) {
      airlock::Json datasets = airlock::Json::array();
      for (const char* name : {"typed", "empty", "large", "forbidden", "missing"}) {
        datasets.push_back({{"name", name}, {"table", std::string("public.") + name}});
      }
      return airlock::Json{{"host", "127.0.0.1"},
                           {"port", cluster_->port()},
                           {"database", "postgres"},
                           {"user", "reader"},
                           {"password", password_ref},
                           {"sslmode", "verify-full"},
                           {"ca_file", cluster_->ca_file()},
                           {"batch_rows", kBatchRows},
                           {"datasets", datasets}}
          .dump();
    };

    conformance::ConformanceSetup setup;
    setup.connector.plugin_path = kPluginPath;
    setup.config_json = config(kPasswordRef);
    setup.typed = {"typed", ""};
    setup.empty = {"empty", ""};
    setup.empty_columns = {"id", "name"};
    setup.large = {"large", ""};
    setup.large_rows = kLargeRows;
    setup.max_batch_rows = kBatchRows;
    setup.missing = {"missing", ""};
    setup.bad_credentials = conformance::ErrorCase{config(kWrongPasswordRef), {}};
    setup.permission_denied = conformance::ErrorCase{"", {"forbidden", ""}};
    setup.secret_references = {{kPasswordRef, kPassword}, {kWrongPasswordRef, kWrongPassword}};
    setup.secret_values = {kWrongPassword};
    return setup;
  }

 private:
  std::unique_ptr<airlock::test::PgCluster> cluster_;
};

}  // namespace

AIRLOCK_CONNECTOR_CONFORMANCE_SUITE(Postgres, PostgresConformanceFixture);
