// Loads the built airlock_tunnel_pgwire.so through the C ABI and talks to it
// with the real psql binary, with libpq, and with hand-made protocol bytes
// over 127.0.0.1. Statements run on SQLite in memory (the https suite's
// channel), whose rows reach the tunnel as Arrow batches.
#include <arpa/inet.h>
#include <libpq-fe.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <nlohmann/json.hpp>

#include "airlock/c/airlock_plugin.h"
#include "airlock/cpp/abi_util.hpp"
#include "tests/plugins/tunnels/https/sqlite_channel.h"
#include "tests/support/connection_flood.h"
#include "tests/support/dl_plugin.h"
#include "tests/support/shell_command.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

namespace {

using airlock::abi::BufferHolder;
using airlock::abi::ErrorHolder;
using airlock::testing::DlPlugin;
using airlock::testing::FakeHost;
using airlock::testing::SqliteChannel;
using nlohmann::json;
namespace net = boost::asio;
using tcp = net::ip::tcp;

constexpr char kPluginPath[] = AIRLOCK_PLUGIN_DIR "/airlock_tunnel_pgwire.so";

int64_t NowMicros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Opened {
  void* endpoint = nullptr;
  json grant;
  std::string user;
  std::string password;
  uint16_t port = 0;
};

using CommandResult = airlock::test::ShellResult;

// Runs a shell command line; its stderr is read with its stdout.
CommandResult RunCommand(const std::string& command) {
  return airlock::test::RunShell(command + " 2>&1");
}

struct PgConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct PgResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Conn = std::unique_ptr<PGconn, PgConnDeleter>;
using Res = std::unique_ptr<PGresult, PgResultDeleter>;

std::string SqlState(const PGresult* res) {
  const char* state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
  return state != nullptr ? state : "";
}

uint32_t BigEndian32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return ntohl(v);
}
uint64_t BigEndian64(const char* p) {
  return (uint64_t{BigEndian32(p)} << 32) | BigEndian32(p + 4);
}

// Protocol bytes by hand, optionally over TLS (after an SSLRequest).
class RawClient {
 public:
  explicit RawClient(uint16_t port) : ssl_(net::ssl::context::tls_client), socket_(io_) {
    socket_.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  }

  // SSLRequest, expects 'S', then the TLS handshake (no verification: the
  // certificate is not what these tests are about).
  void StartTls() {
    SendRaw(std::string("\0\0\0\x08\x04\xd2\x16\x2f", 8));
    char answer = 0;
    net::read(socket_, net::buffer(&answer, 1));
    ASSERT_EQ(answer, 'S');
    tls_ = std::make_unique<net::ssl::stream<tcp::socket&>>(socket_, ssl_);
    tls_->handshake(net::ssl::stream_base::client);
  }

  static std::string Startup(const std::string& user, const std::string& database) {
    std::string body;
    const auto put32 = [&](uint32_t v) {
      v = htonl(v);
      body.append(reinterpret_cast<const char*>(&v), 4);
    };
    put32(196608);
    for (const auto& [k, v] :
         std::vector<std::pair<std::string, std::string>>{{"user", user}, {"database", database}}) {
      body += k;
      body.push_back('\0');
      body += v;
      body.push_back('\0');
    }
    body.push_back('\0');
    std::string packet;
    uint32_t length = htonl(static_cast<uint32_t>(body.size() + 4));
    packet.append(reinterpret_cast<const char*>(&length), 4);
    return packet + body;
  }

  void SendRaw(const std::string& bytes) {
    boost::system::error_code ec;
    if (tls_ != nullptr) {
      net::write(*tls_, net::buffer(bytes), ec);
    } else {
      net::write(socket_, net::buffer(bytes), ec);
    }
  }

  // Reads one backend message; type 0 at end of stream.
  std::pair<char, std::string> Read() {
    char header[5];
    boost::system::error_code ec;
    ReadExact(header, 5, ec);
    if (ec) return {0, ""};
    const uint32_t length = BigEndian32(header + 1);
    std::string body(length - 4, '\0');
    ReadExact(body.data(), body.size(), ec);
    if (ec) return {0, ""};
    return {header[0], body};
  }

  // The SQLSTATE (field 'C') of an ErrorResponse body.
  static std::string ErrorCode(const std::string& body) {
    size_t i = 0;
    while (i < body.size() && body[i] != '\0') {
      const char field = body[i];
      const size_t end = body.find('\0', i + 1);
      if (field == 'C') return body.substr(i + 1, end - i - 1);
      i = end + 1;
    }
    return "";
  }

  // True once the server closed the connection (reads drain what is left).
  bool ClosedByServer() {
    for (int i = 0; i < 100; ++i) {
      if (Read().first == 0) return true;
    }
    return false;
  }

 private:
  void ReadExact(char* out, size_t n, boost::system::error_code& ec) {
    if (tls_ != nullptr) {
      net::read(*tls_, net::buffer(out, n), ec);
    } else {
      net::read(socket_, net::buffer(out, n), ec);
    }
  }

  net::io_context io_;
  net::ssl::context ssl_;
  tcp::socket socket_;
  std::unique_ptr<net::ssl::stream<tcp::socket&>> tls_;
};

class PgwireTunnelTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new airlock::test::TempDir("airlock-pgwire-");
    pki_ = new airlock::test::TestPki(airlock::test::GenerateTestPki(dir_->path()));
  }
  static void TearDownTestSuite() {
    delete pki_;
    delete dir_;
  }

  void SetUp() override {
    host_.set_now_micros(NowMicros());
    std::string error;
    plugin_ = DlPlugin::Load(kPluginPath, host_.services(), &error);
    ASSERT_NE(plugin_, nullptr) << error;
    ASSERT_EQ(plugin_->info().kind, AIRLOCK_KIND_TUNNEL);
    ASSERT_STREQ(plugin_->info().name, "pgwire");
    table_ = &plugin_->vtable<airlock_type_tunnel_vtable>();
    ASSERT_EQ("",
              db_.Exec("CREATE TABLE teams (id INTEGER, title TEXT);"
                       "INSERT INTO teams VALUES (1, 'Analytical Engines'), (2, 'Compilers');"
                       "CREATE TABLE people (id INTEGER, name TEXT, team_id INTEGER, "
                       "score REAL, active BOOLEAN, born DATE, photo BLOB, seen TIMESTAMPTZ);"
                       "INSERT INTO people VALUES (1, 'Ada', 1, 2.5, 1, '1815-12-10', "
                       "x'00ff10', 1700000000123456);"
                       "INSERT INTO people VALUES (2, 'Grace O''Hara', 2, -0.25, 0, "
                       "'1906-12-09', x'', 0);"
                       "INSERT INTO people VALUES (3, 'Charles', 1, NULL, 1, NULL, NULL, NULL);"));
  }

  void TearDown() override {
    for (auto& [instance, endpoint] : open_endpoints_) {
      if (endpoint != nullptr) table_->close(instance, endpoint);
    }
    for (void* instance : instances_) table_->destroy(instance);
    plugin_.reset();
  }

  json BaseConfig() const {
    return json{{"listen_address", "127.0.0.1"},
                {"port", 0},
                {"public_host", "127.0.0.1"},
                {"tls",
                 {{"certificate_file", pki_->server.cert_file},
                  {"private_key_file", pki_->server.key_file}}}};
  }

  void* CreateTunnel(const json& config) {
    const std::string text = config.dump();
    void* instance = nullptr;
    ErrorHolder error;
    EXPECT_EQ(table_->create(text.data(), text.size(), &instance, error.get()), AIRLOCK_OK)
        << error.message();
    if (instance != nullptr) instances_.push_back(instance);
    return instance;
  }

  Opened Open(void* instance, const std::string& request_id) {
    const std::string spec = json{
        {"request_id", request_id},
        {"principal", {{"subject", "alice"}}},
        {"not_after", NowMicros() / 1000000 +
                          3600}}.dump();
    Opened opened;
    BufferHolder grant;
    ErrorHolder error;
    EXPECT_EQ(table_->open(instance, spec.data(), spec.size(), db_.channel(), &opened.endpoint,
                           grant.get(), error.get()),
              AIRLOCK_OK)
        << error.message();
    if (opened.endpoint == nullptr) return opened;
    open_endpoints_.emplace_back(instance, opened.endpoint);
    opened.grant = json::parse(grant.view());
    opened.user = opened.grant.at("user");
    opened.password = opened.grant.at("credential");
    opened.port = opened.grant.at("port");
    return opened;
  }

  // close(), or close_with_reason() (ABI 1.1) when `reason` is given.
  void Close(void* instance, Opened& opened,
             std::optional<airlock_type_close_reason> reason = std::nullopt) {
    for (auto& [inst, endpoint] : open_endpoints_) {
      if (endpoint == opened.endpoint) endpoint = nullptr;
    }
    if (reason) {
      ASSERT_GE(table_->size, AIRLOCK_TUNNEL_VTABLE_1_1_SIZE);
      ASSERT_NE(table_->close_with_reason, nullptr);
      table_->close_with_reason(instance, opened.endpoint, *reason);
    } else {
      table_->close(instance, opened.endpoint);
    }
    opened.endpoint = nullptr;
  }

  // psql with the grant's URL; -X ignores ~/.psqlrc; unaligned, tuples only.
  static CommandResult Psql(const Opened& opened, const std::string& sql,
                            const std::string& password, const std::string& url = "") {
    const std::string target = url.empty() ? opened.grant.at("url").get<std::string>() : url;
    return RunCommand("PGPASSWORD='" + password + "' PGCONNECT_TIMEOUT=10 PGGSSENCMODE=disable " +
                      "psql -X -A -t -F '|' -v ON_ERROR_STOP=1 '" + target + "' -c \"" + sql +
                      "\"");
  }

  static Conn Connect(const Opened& opened, const std::string& password) {
    const std::string info = "host=127.0.0.1 port=" + std::to_string(opened.port) +
                             " user=" + opened.user + " dbname=" + opened.user +
                             " password=" + password +
                             " sslmode=require gssencmode=disable connect_timeout=10";
    return Conn(PQconnectdb(info.c_str()));
  }

  static airlock::test::TempDir* dir_;
  static airlock::test::TestPki* pki_;

  FakeHost host_;
  SqliteChannel db_;
  std::unique_ptr<DlPlugin> plugin_;
  const airlock_type_tunnel_vtable* table_ = nullptr;
  std::vector<void*> instances_;
  std::vector<std::pair<void*, void*>> open_endpoints_;
};

airlock::test::TempDir* PgwireTunnelTest::dir_ = nullptr;
airlock::test::TestPki* PgwireTunnelTest::pki_ = nullptr;

// ---------------------------------------------------------------------------
// psql

TEST_F(PgwireTunnelTest, GrantDescribesAConnection) {
  void* instance = CreateTunnel(BaseConfig());
  const Opened opened = Open(instance, "req-grant");
  EXPECT_EQ(opened.grant.at("url"), "postgresql://req-grant@127.0.0.1:" +
                                        std::to_string(opened.port) + "/req-grant?sslmode=require");
  EXPECT_EQ(opened.grant.at("user"), "req-grant");
  EXPECT_EQ(opened.grant.at("database"), "req-grant");
  EXPECT_EQ(opened.grant.at("host"), "127.0.0.1");
  EXPECT_NE(opened.port, 0);
  EXPECT_EQ(opened.password.size(), 43u);
  // The password is never logged.
  for (const auto& line : host_.logs()) EXPECT_EQ(line.find(opened.password), std::string::npos);
}

TEST_F(PgwireTunnelTest, PsqlRunsAJoinAcrossTwoTables) {
  void* instance = CreateTunnel(BaseConfig());
  const Opened opened = Open(instance, "req-join");
  const auto result = Psql(opened,
                           "SELECT p.name, t.title FROM people p JOIN teams t ON t.id = p.team_id "
                           "ORDER BY p.id",
                           opened.password);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(result.output,
            "Ada|Analytical Engines\nGrace O'Hara|Compilers\nCharles|Analytical Engines\n");
}

TEST_F(PgwireTunnelTest, PsqlMultipleStatementsAndTypedValues) {
  void* instance = CreateTunnel(BaseConfig());
  const Opened opened = Open(instance, "req-multi");
  const auto result = Psql(opened,
                           "SELECT id, score, active, born, photo, seen FROM people WHERE id = 1; "
                           "SELECT COUNT(*) FROM teams",
                           opened.password);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(result.output, "1|2.5|t|1815-12-10|\\x00ff10|2023-11-14 22:13:20.123456+00\n2\n");
}

TEST_F(PgwireTunnelTest, PsqlWrongPasswordIsRefused) {
  void* instance = CreateTunnel(BaseConfig());
  const Opened opened = Open(instance, "req-wrong");
  std::string wrong = opened.password;
  wrong[0] = wrong[0] == 'A' ? 'B' : 'A';
  const auto result = Psql(opened, "SELECT 1", wrong);
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find("password authentication failed for user \"req-wrong\""),
            std::string::npos)
      << result.output;
  EXPECT_EQ(db_.queries_started(), 0);
}

TEST_F(PgwireTunnelTest, PsqlUnknownUserIsRefused) {
  void* instance = CreateTunnel(BaseConfig());
  const Opened opened = Open(instance, "req-known");
  const std::string url =
      "postgresql://nobody@127.0.0.1:" + std::to_string(opened.port) + "/nobody?sslmode=require";
  const auto result = Psql(opened, "SELECT 1", opened.password, url);
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find("no open endpoint for user \"nobody\""), std::string::npos)
      << result.output;

  // The SQLSTATE, read off the wire.
  RawClient raw(opened.port);
  raw.StartTls();
  raw.SendRaw(RawClient::Startup("nobody", "nobody"));
  const auto [type, body] = raw.Read();
  ASSERT_EQ(type, 'E');
  EXPECT_EQ(RawClient::ErrorCode(body), "28000");
}

TEST_F(PgwireTunnelTest, PsqlWrongDatabaseIsRefused) {
  void* instance = CreateTunnel(BaseConfig());
  const Opened opened = Open(instance, "req-db");
  const std::string url =
      "postgresql://req-db@127.0.0.1:" + std::to_string(opened.port) + "/postgres?sslmode=require";
  const auto result = Psql(opened, "SELECT 1", opened.password, url);
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find("database \"postgres\" does not exist"), std::string::npos)
      << result.output;
}

TEST_F(PgwireTunnelTest, PsqlAfterCloseIsRefused) {
  void* instance = CreateTunnel(BaseConfig());
  Opened opened = Open(instance, "req-revoked");
  ASSERT_EQ(Psql(opened, "SELECT 1", opened.password).exit_code, 0);
  const Opened copy = opened;
  Close(instance, opened);
  const auto result = Psql(copy, "SELECT 1", copy.password);
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find("has been revoked"), std::string::npos) << result.output;
}

TEST_F(PgwireTunnelTest, WindowEndIsToldApartFromRevocation) {
  void* instance = CreateTunnel(BaseConfig());
  Opened ended = Open(instance, "req-window");
  Opened revoked = Open(instance, "req-revoke");
  Conn live = Connect(ended, ended.password);
  ASSERT_EQ(PQstatus(live.get()), CONNECTION_OK);
  ASSERT_EQ(PQsendQuery(live.get(), "SELECT 'wait_for_cancel'"), 1);
  ASSERT_TRUE(db_.WaitUntilBlocked(std::chrono::seconds(10)));
  const Opened ended_copy = ended;
  const Opened revoked_copy = revoked;

  Close(instance, ended, AIRLOCK_CLOSE_WINDOW_ENDED);
  // The connected client hears why its session ends (57P01, reason in DETAIL).
  Res res(PQgetResult(live.get()));
  ASSERT_EQ(PQresultStatus(res.get()), PGRES_FATAL_ERROR);
  EXPECT_EQ(SqlState(res.get()), "57P01");
  const char* primary = PQresultErrorField(res.get(), PG_DIAG_MESSAGE_PRIMARY);
  const std::string message = primary != nullptr ? primary : "";
  EXPECT_NE(message.find("access window for request \"req-window\" has ended"), std::string::npos)
      << message;
  EXPECT_EQ(message.find("revoked"), std::string::npos) << message;
  if (const char* detail = PQresultErrorField(res.get(), PG_DIAG_MESSAGE_DETAIL)) {
    EXPECT_EQ(std::string(detail), "reason: window_ended");
  } else {
    ADD_FAILURE() << "no DETAIL";
  }
  // psql connecting afterwards is refused, told the window ended.
  auto later = Psql(ended_copy, "SELECT 1", ended_copy.password);
  EXPECT_NE(later.exit_code, 0);
  EXPECT_NE(later.output.find("has ended"), std::string::npos) << later.output;
  EXPECT_EQ(later.output.find("revoked"), std::string::npos) << later.output;

  // A revocation still says so, through either close function.
  Close(instance, revoked, AIRLOCK_CLOSE_REVOKED);
  later = Psql(revoked_copy, "SELECT 1", revoked_copy.password);
  EXPECT_NE(later.exit_code, 0);
  EXPECT_NE(later.output.find("has been revoked"), std::string::npos) << later.output;
}

TEST_F(PgwireTunnelTest, PsqlReportsSqlErrorsWithTheirSqlstate) {
  void* instance = CreateTunnel(BaseConfig());
  const Opened opened = Open(instance, "req-psql-errors");
  auto result = RunCommand("PGPASSWORD='" + opened.password + "' psql -X -v VERBOSITY=verbose '" +
                           opened.grant.at("url").get<std::string>() + "' -c 'DELETE FROM people'");
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find("25006"), std::string::npos) << result.output;
  EXPECT_EQ(db_.Exec("SELECT 1"), "");
}

// ---------------------------------------------------------------------------
// libpq: extended protocol, types, errors

TEST_F(PgwireTunnelTest, ExecParamsWithTextAndBinaryParameters) {
  void* instance = CreateTunnel(BaseConfig());
  const Opened opened = Open(instance, "req-params");
  Conn conn = Connect(opened, opened.password);
  ASSERT_EQ(PQstatus(conn.get()), CONNECTION_OK) << PQerrorMessage(conn.get());
  EXPECT_STREQ(PQparameterStatus(conn.get(), "server_version"), "15.0 (airlock)");
  EXPECT_EQ(PQserverVersion(conn.get()), 150000);

  // Text parameters, text results; a quote in the value is escaped, not injected.
  {
    const char* values[] = {"Grace O'Hara"};
    Res res(PQexecParams(conn.get(), "SELECT id, name, score FROM people WHERE name = $1", 1,
                         nullptr, values, nullptr, nullptr, 0));
    ASSERT_EQ(PQresultStatus(res.get()), PGRES_TUPLES_OK) << PQerrorMessage(conn.get());
    ASSERT_EQ(PQntuples(res.get()), 1);
    EXPECT_EQ(PQftype(res.get(), 0), 20u);   // int8
    EXPECT_EQ(PQftype(res.get(), 1), 25u);   // text
    EXPECT_EQ(PQftype(res.get(), 2), 701u);  // float8
    EXPECT_STREQ(PQgetvalue(res.get(), 0, 0), "2");
    EXPECT_STREQ(PQgetvalue(res.get(), 0, 2), "-0.25");
    EXPECT_STREQ(PQcmdStatus(res.get()), "SELECT 1");
  }
  {
    const char* values[] = {"x' OR '1'='1"};
    Res res(PQexecParams(conn.get(), "SELECT id FROM people WHERE name = $1", 1, nullptr, values,
                         nullptr, nullptr, 0));
    ASSERT_EQ(PQresultStatus(res.get()), PGRES_TUPLES_OK) << PQerrorMessage(conn.get());
    EXPECT_EQ(PQntuples(res.get()), 0);
  }
  // Binary parameters (int4, float8), binary results.
  {
    const Oid types[] = {23, 701};
    uint32_t id = htonl(1);
    double threshold = 1.0;
    uint64_t bits;
    std::memcpy(&bits, &threshold, 8);
    bits = (uint64_t{htonl(static_cast<uint32_t>(bits))} << 32) |
           htonl(static_cast<uint32_t>(bits >> 32));
    const char* values[] = {reinterpret_cast<const char*>(&id),
                            reinterpret_cast<const char*>(&bits)};
    const int lengths[] = {4, 8};
    const int formats[] = {1, 1};
    Res res(PQexecParams(conn.get(),
                         "SELECT id, name, score, active, born, photo FROM people "
                         "WHERE id = $1 AND score > $2",
                         2, types, values, lengths, formats, 1));
    ASSERT_EQ(PQresultStatus(res.get()), PGRES_TUPLES_OK) << PQerrorMessage(conn.get());
    ASSERT_EQ(PQntuples(res.get()), 1);
    EXPECT_EQ(PQfformat(res.get(), 0), 1);
    EXPECT_EQ(PQftype(res.get(), 0), 20u);
    ASSERT_EQ(PQgetlength(res.get(), 0, 0), 8);
    EXPECT_EQ(BigEndian64(PQgetvalue(res.get(), 0, 0)), 1u);
    EXPECT_EQ(std::string(PQgetvalue(res.get(), 0, 1), PQgetlength(res.get(), 0, 1)), "Ada");
    ASSERT_EQ(PQgetlength(res.get(), 0, 2), 8);
    const uint64_t score_bits = BigEndian64(PQgetvalue(res.get(), 0, 2));
    double score;
    std::memcpy(&score, &score_bits, 8);
    EXPECT_EQ(score, 2.5);
    EXPECT_EQ(PQftype(res.get(), 3), 16u);
    ASSERT_EQ(PQgetlength(res.get(), 0, 3), 1);
    EXPECT_EQ(PQgetvalue(res.get(), 0, 3)[0], 1);
    EXPECT_EQ(PQftype(res.get(), 4), 1082u);  // date: days since 2000-01-01
    EXPECT_EQ(static_cast<int32_t>(BigEndian32(PQgetvalue(res.get(), 0, 4))), -67227);
    EXPECT_EQ(PQftype(res.get(), 5), 17u);  // bytea
    EXPECT_EQ(std::string(PQgetvalue(res.get(), 0, 5), PQgetlength(res.get(), 0, 5)),
              std::string("\x00\xff\x10", 3));
  }
  // NULL parameter and NULL results.
  {
    const char* values[] = {nullptr};
    Res res(PQexecParams(conn.get(), "SELECT score, $1 IS NULL FROM people WHERE id = 3", 1,
                         nullptr, values, nullptr, nullptr, 0));
    ASSERT_EQ(PQresultStatus(res.get()), PGRES_TUPLES_OK) << PQerrorMessage(conn.get());
    EXPECT_EQ(PQgetisnull(res.get(), 0, 0), 1);
    // A comparison is a boolean, as in PostgreSQL (the engine says 1).
    EXPECT_EQ(PQftype(res.get(), 1), 16u);
    EXPECT_STREQ(PQgetvalue(res.get(), 0, 1), "t");
  }
  // The describe + execute pair ran the statement once.
  const int before = db_.queries_started();
  Res once(PQexecParams(conn.get(), "SELECT 1", 0, nullptr, nullptr, nullptr, nullptr, 0));
  EXPECT_EQ(PQresultStatus(once.get()), PGRES_TUPLES_OK);
  EXPECT_EQ(db_.queries_started(), before + 1);
}

TEST_F(PgwireTunnelTest, PrepareDescribeAndExecutePrepared) {
  void* instance = CreateTunnel(BaseConfig());
  const Opened opened = Open(instance, "req-prepared");
  Conn conn = Connect(opened, opened.password);
  ASSERT_EQ(PQstatus(conn.get()), CONNECTION_OK) << PQerrorMessage(conn.get());

  const Oid types[] = {20};
  Res prepared(PQprepare(conn.get(), "by_team",
                         "SELECT p.name, t.title FROM people p JOIN teams t ON t.id = p.team_id "
                         "WHERE p.team_id = $1 ORDER BY p.id",
                         1, types));
  ASSERT_EQ(PQresultStatus(prepared.get()), PGRES_COMMAND_OK) << PQerrorMessage(conn.get());

  Res described(PQdescribePrepared(conn.get(), "by_team"));
  ASSERT_EQ(PQresultStatus(described.get()), PGRES_COMMAND_OK) << PQerrorMessage(conn.get());
  EXPECT_EQ(PQnparams(described.get()), 1);
  EXPECT_EQ(PQparamtype(described.get(), 0), 20u);
  ASSERT_EQ(PQnfields(described.get()), 2);
  EXPECT_STREQ(PQfname(described.get(), 0), "name");
  EXPECT_EQ(PQftype(described.get(), 1), 25u);

  for (int run = 0; run < 2; ++run) {  // a prepared statement runs again and again
    const char* values[] = {"1"};
    Res res(PQexecPrepared(conn.get(), "by_team", 1, values, nullptr, nullptr, 0));
    ASSERT_EQ(PQresultStatus(res.get()), PGRES_TUPLES_OK) << PQerrorMessage(conn.get());
    ASSERT_EQ(PQntuples(res.get()), 2);
    EXPECT_STREQ(PQgetvalue(res.get(), 0, 0), "Ada");
    EXPECT_STREQ(PQgetvalue(res.get(), 1, 0), "Charles");
    EXPECT_STREQ(PQgetvalue(res.get(), 1, 1), "Analytical Engines");
  }
  // Binary int8 parameter.
  {
    uint64_t two = 2;
    two = (uint64_t{htonl(static_cast<uint32_t>(two))} << 32) |
          htonl(static_cast<uint32_t>(two >> 32));
    const char* values[] = {reinterpret_cast<const char*>(&two)};
    const int lengths[] = {8};
    const int formats[] = {1};
    Res res(PQexecPrepared(conn.get(), "by_team", 1, values, lengths, formats, 0));
    ASSERT_EQ(PQresultStatus(res.get()), PGRES_TUPLES_OK) << PQerrorMessage(conn.get());
    ASSERT_EQ(PQntuples(res.get()), 1);
    EXPECT_STREQ(PQgetvalue(res.get(), 0, 0), "Grace O'Hara");
  }
  // Text that is not an integer for an int8 parameter.
  {
    const char* values[] = {"1 OR 1=1"};
    Res res(PQexecPrepared(conn.get(), "by_team", 1, values, nullptr, nullptr, 0));
    EXPECT_EQ(PQresultStatus(res.get()), PGRES_FATAL_ERROR);
    EXPECT_EQ(SqlState(res.get()), "22P02");
  }
  Res duplicate(PQprepare(conn.get(), "by_team", "SELECT 1", 0, nullptr));
  EXPECT_EQ(SqlState(duplicate.get()), "42P05");
  Res missing(PQexecPrepared(conn.get(), "nope", 0, nullptr, nullptr, nullptr, 0));
  EXPECT_EQ(SqlState(missing.get()), "26000");
  // The connection is still usable after errors (Sync recovers).
  Res ok(PQexec(conn.get(), "SELECT COUNT(*) FROM people"));
  ASSERT_EQ(PQresultStatus(ok.get()), PGRES_TUPLES_OK) << PQerrorMessage(conn.get());
  EXPECT_STREQ(PQgetvalue(ok.get(), 0, 0), "3");
}

TEST_F(PgwireTunnelTest, ErrorsCarrySqlstates) {
  void* instance = CreateTunnel(BaseConfig());
  const Opened opened = Open(instance, "req-errors");
  Conn conn = Connect(opened, opened.password);
  ASSERT_EQ(PQstatus(conn.get()), CONNECTION_OK) << PQerrorMessage(conn.get());
  const auto state_of = [&](const char* sql) {
    Res res(PQexec(conn.get(), sql));
    return SqlState(res.get());
  };
  EXPECT_EQ(state_of("SELECT * FROM nowhere"), "42P01");
  EXPECT_EQ(state_of("SELEKT 1"), "42601");
  EXPECT_EQ(state_of("SELECT nope FROM people"), "42703");
  EXPECT_EQ(state_of("DELETE FROM people"), "25006");
  EXPECT_EQ(state_of("INSERT INTO teams VALUES (3, 'x')"), "25006");
  EXPECT_EQ(state_of("SHOW no_such_setting"), "42704");
  // With the extended protocol, too.
  Res res(PQexecParams(conn.get(), "SELECT * FROM nowhere WHERE id = $1", 1, nullptr,
                       std::array<const char*, 1>{"1"}.data(), nullptr, nullptr, 0));
  EXPECT_EQ(SqlState(res.get()), "42P01");

  // Session statements answered by the tunnel; the data is untouched.
  Res show(PQexec(conn.get(), "SHOW TimeZone"));
  ASSERT_EQ(PQresultStatus(show.get()), PGRES_TUPLES_OK);
  EXPECT_STREQ(PQgetvalue(show.get(), 0, 0), "UTC");
  // Settings tools ask for on connect.
  Res path(PQexec(conn.get(), "SHOW search_path"));
  ASSERT_EQ(PQresultStatus(path.get()), PGRES_TUPLES_OK);
  EXPECT_STREQ(PQgetvalue(path.get(), 0, 0), "\"$user\", public");
  Res version(PQexec(conn.get(), "SHOW server_version_num"));
  EXPECT_STREQ(PQgetvalue(version.get(), 0, 0), "150000");
  Res timeout(PQexec(conn.get(), "SHOW statement_timeout"));
  EXPECT_STREQ(PQgetvalue(timeout.get(), 0, 0), "300000ms");
  Res begin(PQexec(conn.get(), "BEGIN"));
  EXPECT_EQ(PQresultStatus(begin.get()), PGRES_COMMAND_OK);
  Res empty(PQexec(conn.get(), ""));
  EXPECT_EQ(PQresultStatus(empty.get()), PGRES_EMPTY_QUERY);
  Res count(PQexec(conn.get(), "SELECT COUNT(*) FROM teams"));
  EXPECT_STREQ(PQgetvalue(count.get(), 0, 0), "2");
}

TEST_F(PgwireTunnelTest, CancelRequestStopsTheRunningStatement) {
  void* instance = CreateTunnel(BaseConfig());
  const Opened opened = Open(instance, "req-cancel");
  Conn conn = Connect(opened, opened.password);
  ASSERT_EQ(PQstatus(conn.get()), CONNECTION_OK) << PQerrorMessage(conn.get());
  ASSERT_EQ(PQsendQuery(conn.get(), "SELECT 'wait_for_cancel'"), 1);
  ASSERT_TRUE(db_.WaitUntilBlocked(std::chrono::seconds(10)));

  PGcancel* cancel = PQgetCancel(conn.get());
  char error[256];
  EXPECT_EQ(PQcancel(cancel, error, sizeof error), 1) << error;
  PQfreeCancel(cancel);

  Res res(PQgetResult(conn.get()));
  EXPECT_EQ(PQresultStatus(res.get()), PGRES_FATAL_ERROR);
  EXPECT_EQ(SqlState(res.get()), "57014");
  while (PGresult* rest = PQgetResult(conn.get())) PQclear(rest);
  EXPECT_TRUE(db_.saw_cancel());
  // The connection carries on.
  Res after(PQexec(conn.get(), "SELECT 7"));
  EXPECT_STREQ(PQgetvalue(after.get(), 0, 0), "7");
}

TEST_F(PgwireTunnelTest, CancelWithWrongKeyDoesNothing) {
  void* instance = CreateTunnel(BaseConfig());
  const Opened opened = Open(instance, "req-cancel-key");
  Conn conn = Connect(opened, opened.password);
  ASSERT_EQ(PQstatus(conn.get()), CONNECTION_OK);
  ASSERT_EQ(PQsendQuery(conn.get(), "SELECT 'wait_for_cancel'"), 1);
  ASSERT_TRUE(db_.WaitUntilBlocked(std::chrono::seconds(10)));
  // A CancelRequest with the right process id but a wrong key.
  RawClient raw(opened.port);
  std::string packet("\0\0\0\x10\x04\xd2\x16\x2e", 8);
  uint32_t pid = htonl(static_cast<uint32_t>(PQbackendPID(conn.get())));
  uint32_t key = htonl(12345);
  packet.append(reinterpret_cast<const char*>(&pid), 4);
  packet.append(reinterpret_cast<const char*>(&key), 4);
  raw.SendRaw(packet);
  EXPECT_TRUE(raw.ClosedByServer());
  EXPECT_FALSE(db_.WaitUntilUnblocked(std::chrono::milliseconds(300)));
  // The right key still works.
  PGcancel* cancel = PQgetCancel(conn.get());
  char error[256];
  EXPECT_EQ(PQcancel(cancel, error, sizeof error), 1);
  PQfreeCancel(cancel);
  Res res(PQgetResult(conn.get()));
  EXPECT_EQ(SqlState(res.get()), "57014");
}

TEST_F(PgwireTunnelTest, CloseDropsConnectedClientsWithAdminShutdown) {
  void* instance = CreateTunnel(BaseConfig());
  Opened opened = Open(instance, "req-close");
  Conn busy = Connect(opened, opened.password);
  Conn idle = Connect(opened, opened.password);
  ASSERT_EQ(PQstatus(busy.get()), CONNECTION_OK);
  ASSERT_EQ(PQstatus(idle.get()), CONNECTION_OK);
  ASSERT_EQ(PQsendQuery(busy.get(), "SELECT 'wait_for_cancel'"), 1);
  ASSERT_TRUE(db_.WaitUntilBlocked(std::chrono::seconds(10)));

  Close(instance, opened);  // returns once the running statement left the channel
  EXPECT_EQ(db_.queries_running(), 0);

  Res res(PQgetResult(busy.get()));
  EXPECT_EQ(PQresultStatus(res.get()), PGRES_FATAL_ERROR);
  EXPECT_EQ(SqlState(res.get()), "57P01");
  Res later(PQexec(idle.get(), "SELECT 1"));
  EXPECT_NE(PQresultStatus(later.get()), PGRES_TUPLES_OK);
  EXPECT_EQ(PQstatus(idle.get()), CONNECTION_BAD);
}

// ---------------------------------------------------------------------------
// Refusals and bounds

TEST_F(PgwireTunnelTest, PlaintextStartupIsRefusedWhenTlsIsRequired) {
  void* instance = CreateTunnel(BaseConfig());
  const Opened opened = Open(instance, "req-plain");
  RawClient raw(opened.port);
  raw.SendRaw(RawClient::Startup(opened.user, opened.user));
  const auto [type, body] = raw.Read();
  ASSERT_EQ(type, 'E');
  EXPECT_EQ(RawClient::ErrorCode(body), "28000");
  EXPECT_NE(body.find("TLS is required"), std::string::npos);
  EXPECT_TRUE(raw.ClosedByServer());

  const auto result =
      RunCommand("PGPASSWORD='" + opened.password + "' psql -X '" + "postgresql://" + opened.user +
                 "@127.0.0.1:" + std::to_string(opened.port) + "/" + opened.user +
                 "?sslmode=disable' -c 'SELECT 1'");
  EXPECT_NE(result.exit_code, 0);
  EXPECT_NE(result.output.find("TLS is required"), std::string::npos) << result.output;
}

TEST_F(PgwireTunnelTest, PlaintextFromLoopbackWhenAllowed) {
  json config = BaseConfig();
  config.erase("tls");
  config["allow_plaintext"] = true;
  void* instance = CreateTunnel(config);
  const Opened opened = Open(instance, "req-dev");
  EXPECT_EQ(opened.grant.at("sslmode"), "disable");
  const auto result = Psql(opened, "SELECT name FROM people WHERE id = 3", opened.password);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(result.output, "Charles\n");
}

TEST_F(PgwireTunnelTest, OversizedMessagesAreRefused) {
  json config = BaseConfig();
  config["max_message_bytes"] = 4096;
  void* instance = CreateTunnel(config);
  const Opened opened = Open(instance, "req-big");
  Conn conn = Connect(opened, opened.password);
  ASSERT_EQ(PQstatus(conn.get()), CONNECTION_OK);
  const std::string sql = "SELECT '" + std::string(8192, 'x') + "'";
  ASSERT_EQ(PQsendQuery(conn.get(), sql.c_str()), 1);
  Res res(PQgetResult(conn.get()));  // the server's FATAL, before the connection loss
  EXPECT_EQ(PQresultStatus(res.get()), PGRES_FATAL_ERROR);
  EXPECT_EQ(SqlState(res.get()), "08P01") << PQerrorMessage(conn.get());
  EXPECT_NE(std::string(PQerrorMessage(conn.get())).find("exceeds the limit of 4096"),
            std::string::npos);
  while (PGresult* rest = PQgetResult(conn.get())) PQclear(rest);
  EXPECT_EQ(PQstatus(conn.get()), CONNECTION_BAD);
  EXPECT_EQ(db_.queries_started(), 0);

  // An oversized startup packet.
  RawClient raw(opened.port);
  std::string packet("\x00\x01\x00\x00", 4);
  raw.SendRaw(packet);
  const auto [type, body] = raw.Read();
  ASSERT_EQ(type, 'E');
  EXPECT_EQ(RawClient::ErrorCode(body), "08P01");
}

TEST_F(PgwireTunnelTest, GarbageIsRefusedAndTheListenerLivesOn) {
  json config = BaseConfig();
  config["startup_timeout_ms"] = 300;  // incomplete packets wait for it
  void* instance = CreateTunnel(config);
  const Opened opened = Open(instance, "req-garbage");
  const std::vector<std::string> garbage = {
      std::string("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
      std::string("\x00\x00\x00\x08\x00\x00\x00\x00", 8),                   // protocol 0.0
      std::string("\xff\xff\xff\xff", 4),                                   // negative length
      std::string("\x00\x00\x00\x10\x04\xd2\x16\x2e\x00\x00\x00\x01", 12),  // short cancel
      std::string(3, '\x00'),
  };
  for (const auto& bytes : garbage) {
    RawClient raw(opened.port);
    raw.SendRaw(bytes);
    EXPECT_TRUE(raw.ClosedByServer());
  }
  // After TLS, garbage in place of a message.
  {
    RawClient raw(opened.port);
    raw.StartTls();
    raw.SendRaw(std::string("\x01\x02\x03\x04\x05\x06\x07\x08", 8));
    EXPECT_TRUE(raw.ClosedByServer());
  }
  const auto result = Psql(opened, "SELECT COUNT(*) FROM people", opened.password);
  ASSERT_EQ(result.exit_code, 0) << result.output;
  EXPECT_EQ(result.output, "3\n");
}

TEST_F(PgwireTunnelTest, ConnectionsPerEndpointAreBounded) {
  json config = BaseConfig();
  config["max_connections_per_endpoint"] = 1;
  void* instance = CreateTunnel(config);
  const Opened opened = Open(instance, "req-bounded");
  Conn first = Connect(opened, opened.password);
  ASSERT_EQ(PQstatus(first.get()), CONNECTION_OK);
  Conn second = Connect(opened, opened.password);
  EXPECT_EQ(PQstatus(second.get()), CONNECTION_BAD);
  EXPECT_NE(std::string(PQerrorMessage(second.get())).find("too many connections"),
            std::string::npos);
}

TEST_F(PgwireTunnelTest, IdleConnectionsTimeOut) {
  json config = BaseConfig();
  config["idle_timeout_ms"] = 200;
  config["startup_timeout_ms"] = 200;
  void* instance = CreateTunnel(config);
  const Opened opened = Open(instance, "req-idle");
  RawClient raw(opened.port);
  raw.StartTls();
  // Nothing more is sent: the server closes the connection by itself.
  const auto started = std::chrono::steady_clock::now();
  EXPECT_TRUE(raw.ClosedByServer());
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(11));
}

TEST_F(PgwireTunnelTest, SilentConnectionsCloseAtTheStartupTimeout) {
  json config = BaseConfig();
  config["startup_timeout_ms"] = 300;
  void* instance = CreateTunnel(config);
  const Opened opened = Open(instance, "req-silent");
  // Connected, never a byte: the listener holds it without a session thread
  // and closes it once the startup timeout has passed since the accept.
  RawClient silent(opened.port);
  const auto started = std::chrono::steady_clock::now();
  EXPECT_TRUE(silent.ClosedByServer());
  const auto waited = std::chrono::steady_clock::now() - started;
  EXPECT_GE(waited, std::chrono::milliseconds(250));
  EXPECT_LT(waited, std::chrono::seconds(5));
  // A client that speaks after a pause within the timeout is still served
  // (StartTls asserts the 'S' answer and completes the handshake), and held
  // to the same startup timeout.
  RawClient late(opened.port);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  late.StartTls();
  EXPECT_TRUE(late.ClosedByServer());
}

TEST_F(PgwireTunnelTest, BadConfigurationsAreRefused) {
  for (const json& bad :
       {json{{"port", 70000}}, json{{"listen_address", "nowhere"}}, json{{"tls", nullptr}},
        json{{"surprise", 1}}, json{{"scram_iterations", 10}}}) {
    json config = BaseConfig();
    config.update(bad);
    if (bad.contains("tls")) config.erase("tls");
    const std::string text = config.dump();
    void* instance = nullptr;
    ErrorHolder error;
    EXPECT_NE(table_->create(text.data(), text.size(), &instance, error.get()), AIRLOCK_OK) << text;
    EXPECT_EQ(instance, nullptr);
    // check_config (ABI 1.1) refuses the same configurations.
    ErrorHolder checked;
    EXPECT_NE(plugin_->info().check_config(text.data(), text.size(), checked.get()), AIRLOCK_OK)
        << text;
  }
}

TEST_F(PgwireTunnelTest, CheckConfigLoadsTlsFilesButBindsNothing) {
  ASSERT_GE(plugin_->info().size, AIRLOCK_PLUGIN_INFO_1_1_SIZE);
  ASSERT_NE(plugin_->info().check_config, nullptr);
  // A port already taken: create() would fail to bind, a check does not bind.
  void* instance = CreateTunnel(BaseConfig());
  const Opened opened = Open(instance, "req-port");
  json config = BaseConfig();
  config["port"] = opened.port;
  std::string text = config.dump();
  ErrorHolder error;
  EXPECT_EQ(plugin_->info().check_config(text.data(), text.size(), error.get()), AIRLOCK_OK)
      << error.message();

  config["tls"]["private_key_file"] = pki_->client.key_file;  // not the certificate's key
  text = config.dump();
  ErrorHolder mismatch;
  EXPECT_NE(plugin_->info().check_config(text.data(), text.size(), mismatch.get()), AIRLOCK_OK);
  // OpenSSL refuses the key itself ("key values mismatch") or the pair ("does not match").
  EXPECT_NE(mismatch.message().find("match"), std::string::npos) << mismatch.message();
}

// ---------------------------------------------------------------------------
// The connection budget: sockets without a credential, held or reconnecting
// from several client addresses (127.0.0.x), do not keep another request's
// user out.

// Connects with libpq and runs one statement; "" on success, else why not.
std::string ConnectAndCount(const Opened& opened, std::chrono::milliseconds* took) {
  const auto start = std::chrono::steady_clock::now();
  const std::string info = "host=127.0.0.1 port=" + std::to_string(opened.port) +
                           " user=" + opened.user + " dbname=" + opened.user +
                           " password=" + opened.password +
                           " sslmode=require gssencmode=disable connect_timeout=10";
  Conn conn(PQconnectdb(info.c_str()));
  std::string problem;
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    problem = std::string("connect: ") + PQerrorMessage(conn.get());
  } else {
    Res res(PQexec(conn.get(), "SELECT COUNT(*) FROM people"));
    if (PQresultStatus(res.get()) != PGRES_TUPLES_OK) {
      problem = std::string("query: ") + PQerrorMessage(conn.get());
    } else if (std::string(PQgetvalue(res.get(), 0, 0)) != "3") {
      problem = std::string("query answered ") + PQgetvalue(res.get(), 0, 0);
    }
  }
  *took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                start);
  return problem;
}

TEST_F(PgwireTunnelTest, IdleSocketsDoNotLockOutAnotherRequestsUser) {
  constexpr size_t kIdle = 300;  // several times max_connections
  ASSERT_TRUE(airlock::test::EnsureDescriptorLimit(2 * kIdle + 512));
  void* instance = CreateTunnel(BaseConfig());  // the default budget
  const Opened mine = Open(instance, "req-held");
  const Opened theirs = Open(instance, "req-other");
  Conn connected = Connect(mine, mine.password);
  ASSERT_EQ(PQstatus(connected.get()), CONNECTION_OK) << PQerrorMessage(connected.get());

  airlock::test::IdleConnections idle;
  size_t opened = 0;
  for (int i = 1; i <= 6; ++i) {
    opened += idle.Open("127.0.0." + std::to_string(i), mine.port, kIdle / 6);
  }
  ASSERT_GE(opened, kIdle * 9 / 10);
  // Every idle socket accepted: all but the startup pool's worth (16) were
  // shed (a new client waits behind a burst still in the backlog).
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (idle.ServerClosed() + 16 < opened && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_GE(idle.ServerClosed() + 16, opened);

  for (int i = 0; i < 3; ++i) {
    std::chrono::milliseconds took{0};
    EXPECT_EQ(ConnectAndCount(theirs, &took), "");
    EXPECT_LT(took, std::chrono::seconds(5));
  }
  // The session that authenticated before the flood was never touched.
  Res res(PQexec(connected.get(), "SELECT 1"));
  EXPECT_EQ(PQresultStatus(res.get()), PGRES_TUPLES_OK) << PQerrorMessage(connected.get());
  EXPECT_GT(idle.ServerClosed(), kIdle / 2) << "idle sockets were not shed";
}

TEST_F(PgwireTunnelTest, AnotherRequestsUserConnectsThroughAReconnectStorm) {
  ASSERT_TRUE(airlock::test::EnsureDescriptorLimit(4096));
  void* instance = CreateTunnel(BaseConfig());
  const Opened theirs = Open(instance, "req-storm");
  // Each address reconnects every millisecond, keeping its last 50
  // connections open: over its quota, and together over the pool.
  airlock::test::ConnectionStorm storm({"127.0.0.2", "127.0.0.3", "127.0.0.4"}, theirs.port,
                                       /*window=*/50, "", std::chrono::milliseconds(1));
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (storm.connects() < 500 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_GE(storm.connects(), 500u) << "the storm did not get going";
  std::chrono::milliseconds slowest{0};
  for (int i = 0; i < 5; ++i) {
    std::chrono::milliseconds took{0};
    EXPECT_EQ(ConnectAndCount(theirs, &took), "");
    slowest = std::max(slowest, took);
  }
  EXPECT_LT(slowest, std::chrono::seconds(5));
  std::printf("[ measured ] 5 psql-style sessions through %llu storm connects, slowest %lld ms\n",
              static_cast<unsigned long long>(storm.connects()),
              static_cast<long long>(slowest.count()));
}

TEST_F(PgwireTunnelTest, ConnectionBudgetConfigurationIsChecked) {
  json config = BaseConfig();
  config["max_connections"] = 8;
  config["max_preauth_connections"] = 8;
  const std::string text = config.dump();
  void* instance = nullptr;
  ErrorHolder error;
  EXPECT_NE(table_->create(text.data(), text.size(), &instance, error.get()), AIRLOCK_OK);
  EXPECT_NE(error.message().find("max_preauth_connections must be smaller than max_connections"),
            std::string::npos)
      << error.message();
}

// ---------------------------------------------------------------------------
// Cursors (DECLARE / FETCH / MOVE / CLOSE)

TEST_F(PgwireTunnelTest, CursorsFetchForwardAndEndWithTheirTransaction) {
  void* instance = CreateTunnel(BaseConfig());
  const Opened opened = Open(instance, "req-cursors");
  Conn conn = Connect(opened, opened.password);
  ASSERT_EQ(PQstatus(conn.get()), CONNECTION_OK) << PQerrorMessage(conn.get());
  const auto exec = [&](const char* sql) { return Res(PQexec(conn.get(), sql)); };
  const auto state_of = [&](const char* sql) { return SqlState(exec(sql).get()); };

  ASSERT_EQ(PQresultStatus(exec("BEGIN").get()), PGRES_COMMAND_OK);
  Res declared(exec("DECLARE c CURSOR FOR SELECT id, name FROM people ORDER BY id"));
  ASSERT_EQ(PQresultStatus(declared.get()), PGRES_COMMAND_OK) << PQerrorMessage(conn.get());
  EXPECT_STREQ(PQcmdStatus(declared.get()), "DECLARE CURSOR");
  Res two(exec("FETCH 2 FROM c"));
  ASSERT_EQ(PQresultStatus(two.get()), PGRES_TUPLES_OK) << PQerrorMessage(conn.get());
  ASSERT_EQ(PQntuples(two.get()), 2);
  EXPECT_STREQ(PQgetvalue(two.get(), 1, 1), "Grace O'Hara");
  EXPECT_STREQ(PQcmdStatus(two.get()), "FETCH 2");
  Res rest(exec("FETCH ALL IN c"));
  ASSERT_EQ(PQntuples(rest.get()), 1);
  EXPECT_STREQ(PQgetvalue(rest.get(), 0, 0), "3");
  Res none(exec("FETCH NEXT FROM c"));
  EXPECT_EQ(PQntuples(none.get()), 0);
  EXPECT_STREQ(PQcmdStatus(none.get()), "FETCH 0");

  EXPECT_EQ(state_of("DECLARE c CURSOR FOR SELECT 1"), "42P03");
  EXPECT_EQ(state_of("FETCH 1 FROM nowhere"), "34000");
  EXPECT_EQ(state_of("FETCH BACKWARD 1 FROM c"), "0A000");
  EXPECT_EQ(state_of("DECLARE s SCROLL CURSOR FOR SELECT 1"), "0A000");
  EXPECT_EQ(state_of("DECLARE bad CURSOR FOR SELECT * FROM nowhere"), "42P01");

  // MOVE skips; WITH HOLD outlives COMMIT, the others do not.
  ASSERT_EQ(PQresultStatus(
                exec("DECLARE h CURSOR WITH HOLD FOR SELECT id FROM people ORDER BY id").get()),
            PGRES_COMMAND_OK);
  Res moved(exec("MOVE 2 IN h"));
  EXPECT_STREQ(PQcmdStatus(moved.get()), "MOVE 2");
  ASSERT_EQ(PQresultStatus(exec("COMMIT").get()), PGRES_COMMAND_OK);
  EXPECT_EQ(state_of("FETCH c"), "34000");
  Res held(exec("FETCH h"));
  ASSERT_EQ(PQntuples(held.get()), 1) << PQerrorMessage(conn.get());
  EXPECT_STREQ(PQgetvalue(held.get(), 0, 0), "3");
  ASSERT_EQ(PQresultStatus(exec("CLOSE h").get()), PGRES_COMMAND_OK);
  EXPECT_EQ(state_of("CLOSE h"), "34000");

  // A connection holds at most 16 cursors; CLOSE ALL frees them.
  for (int i = 0; i < 16; ++i) {
    const std::string sql = "DECLARE k" + std::to_string(i) + " CURSOR FOR SELECT 1";
    ASSERT_EQ(PQresultStatus(exec(sql.c_str()).get()), PGRES_COMMAND_OK) << i;
  }
  EXPECT_EQ(state_of("DECLARE k16 CURSOR FOR SELECT 1"), "54000");
  ASSERT_EQ(PQresultStatus(exec("CLOSE ALL").get()), PGRES_COMMAND_OK);
  EXPECT_EQ(PQresultStatus(exec("DECLARE k16 CURSOR FOR SELECT 1").get()), PGRES_COMMAND_OK);
}

// A cursor pauses its statement between fetches, holding the endpoint's
// channel; closing the endpoint must not wait for the client to fetch.
TEST_F(PgwireTunnelTest, ClosingTheEndpointStopsAPausedCursor) {
  db_.set_batch_rows(1);  // every row its own batch: the statement pauses at the second
  void* instance = CreateTunnel(BaseConfig());
  Opened opened = Open(instance, "req-paused");
  Conn conn = Connect(opened, opened.password);
  ASSERT_EQ(PQstatus(conn.get()), CONNECTION_OK) << PQerrorMessage(conn.get());
  ASSERT_EQ(
      PQresultStatus(
          Res(PQexec(conn.get(), "DECLARE p CURSOR FOR SELECT id FROM people ORDER BY id")).get()),
      PGRES_COMMAND_OK);
  Res first(PQexec(conn.get(), "FETCH 1 FROM p"));
  ASSERT_EQ(PQntuples(first.get()), 1);
  const auto started = std::chrono::steady_clock::now();
  Close(instance, opened);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(5));
  Res after(PQexec(conn.get(), "FETCH 1 FROM p"));
  EXPECT_NE(PQresultStatus(after.get()), PGRES_TUPLES_OK);
}

}  // namespace
