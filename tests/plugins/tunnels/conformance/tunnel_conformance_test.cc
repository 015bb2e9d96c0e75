// The tunnel conformance kit (airlock/testing/tunnel_conformance.hpp) run
// against the in-tree tunnels, each with a client of its own protocol: the
// HTTPS tunnel through an HTTPS client, the PostgreSQL tunnel through libpq.
#include "airlock/testing/tunnel_conformance.hpp"

#include <libpq-fe.h>

#include <regex>

#include "tests/support/http_client.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

namespace {

using airlock::Result;
using airlock::Status;
using airlock::conformance::TunnelClient;
using airlock::conformance::TunnelSetup;
using nlohmann::json;

std::string Plugin(const std::string& name) {
  return std::string(AIRLOCK_PLUGIN_DIR) + "/" + name + ".so";
}

const airlock::test::TestPki& Pki() {
  static const airlock::test::TempDir dir("airlock-tunnel-conformance-");
  static const airlock::test::TestPki pki = airlock::test::GenerateTestPki(dir.path());
  return pki;
}

json Tls() {
  return {{"certificate_file", Pki().server.cert_file},
          {"private_key_file", Pki().server.key_file}};
}

// POST <prefix>/query with the bearer credential, on one kept connection.
class HttpsClient final : public TunnelClient {
 public:
  Status Connect(const json& grant, const std::string& credential) override {
    static const std::regex kUrl(R"(https://([^:/]+):(\d+)(/.*)?)");
    std::smatch m;
    const std::string url = grant.value("url", "");
    if (!std::regex_match(url, m, kUrl)) return Status::InvalidArgument("no https url: " + url);
    prefix_ = m[3];
    credential_ = credential;
    http_ = std::make_unique<airlock::test::HttpClient>(
        m[1], static_cast<uint16_t>(std::stoi(m[2])),
        airlock::test::ClientTls{Pki().ca.cert_file, "", ""});
    return Status::Ok();
  }

  Result<std::vector<std::vector<std::string>>> Query(const std::string& sql) override {
    auto answer = http_->Post(
        prefix_ + "/query", json{{"sql", sql}}.dump(),
        {{"Authorization", "Bearer " + credential_}, {"Content-Type", "application/json"}});
    if (answer.status != 200) {
      return Status::Unavailable("answered " + std::to_string(answer.status) + " " + answer.body);
    }
    std::vector<std::vector<std::string>> rows;
    for (const json& row : answer.json().value("rows", json::array())) {
      std::vector<std::string> cells;
      for (const json& cell : row)
        cells.push_back(cell.is_string() ? cell.get<std::string>() : cell.dump());
      rows.push_back(std::move(cells));
    }
    return rows;
  }

 private:
  std::unique_ptr<airlock::test::HttpClient> http_;
  std::string prefix_, credential_;
};

// libpq, with the grant's host, port, user and database.
class PgClient final : public TunnelClient {
 public:
  ~PgClient() override {
    if (conn_ != nullptr) PQfinish(conn_);
  }
  Status Connect(const json& grant, const std::string& credential) override {
    const std::string conninfo =
        "host=" + grant.value("host", "") + " port=" + std::to_string(grant.value("port", 0)) +
        " user=" + grant.value("user", "") + " dbname=" + grant.value("database", "") +
        " password=" + credential + " sslmode=require connect_timeout=10 gssencmode=disable";
    conn_ = PQconnectdb(conninfo.c_str());
    if (PQstatus(conn_) != CONNECTION_OK) return Status::Unauthenticated(PQerrorMessage(conn_));
    return Status::Ok();
  }
  Result<std::vector<std::vector<std::string>>> Query(const std::string& sql) override {
    if (conn_ == nullptr) return Status::Unavailable("not connected");
    PGresult* result = PQexec(conn_, sql.c_str());
    if (PQresultStatus(result) != PGRES_TUPLES_OK) {
      const std::string why = PQresultErrorMessage(result);
      PQclear(result);
      return Status::Unavailable(why.empty() ? PQerrorMessage(conn_) : why);
    }
    std::vector<std::vector<std::string>> rows;
    for (int r = 0; r < PQntuples(result); ++r) {
      std::vector<std::string> cells;
      for (int c = 0; c < PQnfields(result); ++c) cells.push_back(PQgetvalue(result, r, c));
      rows.push_back(std::move(cells));
    }
    PQclear(result);
    return rows;
  }

 private:
  PGconn* conn_ = nullptr;
};

class HttpsFixture : public airlock::conformance::TunnelFixture {
 public:
  Result<TunnelSetup> Prepare() override {
    return TunnelSetup{Plugin("airlock_tunnel_https"),
                       json{{"tls", Tls()}, {"query_timeout_ms", 20000}}.dump(),
                       [] { return std::make_unique<HttpsClient>(); }};
  }
};

class PgwireFixture : public airlock::conformance::TunnelFixture {
 public:
  Result<TunnelSetup> Prepare() override {
    return TunnelSetup{Plugin("airlock_tunnel_pgwire"), json{{"tls", Tls()}}.dump(),
                       [] { return std::make_unique<PgClient>(); }};
  }
};

}  // namespace

AIRLOCK_TUNNEL_CONFORMANCE_SUITE(Https, HttpsFixture);
AIRLOCK_TUNNEL_CONFORMANCE_SUITE(Pgwire, PgwireFixture);
