// The HTTPS tunnel through its C ABI: configuration, grants, JSON queries,
// schema, authentication, limits, revocation and secrets (see
// tunnel_fixture.h for the setup).
#include "tunnel_fixture.h"

namespace airlock::testing::https_tunnel {
namespace {
// ---------------------------------------------------------------------------
// Configuration

TEST_F(HttpsTunnelTest, RefusesPlainHttpUnlessAllowed) {
  json config = BaseConfig();
  config.erase("tls");
  void* instance = nullptr;
  std::string message;
  EXPECT_EQ(TryCreate(config, &instance, &message), AIRLOCK_ERR_INVALID_ARGUMENT);
  EXPECT_NE(message.find("tls"), std::string::npos) << message;
  EXPECT_NE(message.find("allow_plaintext"), std::string::npos) << message;
}

TEST_F(HttpsTunnelTest, ConfigurationErrorsNameTheKey) {
  const auto expect_key = [&](json config, const std::string& key) {
    void* instance = nullptr;
    std::string message;
    EXPECT_EQ(TryCreate(config, &instance, &message), AIRLOCK_ERR_INVALID_ARGUMENT) << key;
    EXPECT_NE(message.find(key), std::string::npos) << "expected '" << key << "' in: " << message;
  };
  json c = BaseConfig();
  c["max_rows"] = 0;
  expect_key(c, "max_rows");
  c = BaseConfig();
  c["prot"] = 8443;
  expect_key(c, "prot");
  c = BaseConfig();
  c["port"] = "443";
  expect_key(c, "port");
  c = BaseConfig();
  c["listen_address"] = "localhost:99";
  expect_key(c, "listen_address");
  c = BaseConfig();
  c["tls"]["certificate_file"] = dir_->File("missing.crt");
  expect_key(c, "tls.certificate_file");
  c = BaseConfig();
  c["tls"]["private_key_file"] = pki_->client.key_file;  // does not match the certificate
  expect_key(c, "private_key_file");
  c = BaseConfig();
  c["public_host"] = "evil.example/x";
  expect_key(c, "public_host");
}

TEST_F(HttpsTunnelTest, PortInUseIsReported) {
  void* first = CreateTunnel(BaseConfig());
  ASSERT_NE(first, nullptr);
  const Opened opened = Open(first, "port-probe");
  json config = BaseConfig();
  config["port"] = opened.port;
  void* second = nullptr;
  std::string message;
  EXPECT_EQ(TryCreate(config, &second, &message), AIRLOCK_ERR_UNAVAILABLE);
  EXPECT_NE(message.find(std::to_string(opened.port)), std::string::npos) << message;
}

TEST_F(HttpsTunnelTest, RelativeTlsPathsResolveAgainstTheConfigDirectory) {
  json config = BaseConfig();
  config["$config_dir"] = dir_->path();
  config["tls"]["certificate_file"] =
      std::filesystem::path(pki_->server.cert_file).filename().string();
  config["tls"]["private_key_file"] =
      std::filesystem::path(pki_->server.key_file).filename().string();
  void* instance = CreateTunnel(config);
  ASSERT_NE(instance, nullptr);
  const Opened opened = Open(instance, "relative");
  auto client = Client(opened.port);
  EXPECT_EQ(Query(*client, opened, "SELECT 1").status, 200u);

  config.erase("$config_dir");  // the same relative names now miss
  void* other = nullptr;
  std::string message;
  EXPECT_EQ(TryCreate(config, &other, &message), AIRLOCK_ERR_INVALID_ARGUMENT);
  EXPECT_NE(message.find("tls.certificate_file"), std::string::npos) << message;
}

// ---------------------------------------------------------------------------
// Open and grants

TEST_F(HttpsTunnelTest, OpenReturnsAGrantWithAOneTimeCredential) {
  void* instance = CreateTunnel(BaseConfig());
  const json spec = Spec("req-42");
  const Opened opened = Open(instance, "req-42");
  ASSERT_NE(opened.endpoint, nullptr);
  EXPECT_EQ(opened.grant.at("transport"), "https");
  EXPECT_EQ(opened.grant.at("expires_at"), spec.at("not_after"));
  EXPECT_EQ(opened.grant.at("url"),
            "https://127.0.0.1:" + std::to_string(opened.port) + "/t/req-42");
  EXPECT_GT(opened.port, 0);
  // 32 random bytes, base64url without padding.
  EXPECT_TRUE(std::regex_match(opened.credential, std::regex("[A-Za-z0-9_-]{43}")))
      << opened.credential;

  const Opened other = Open(instance, "req-43");
  EXPECT_NE(other.credential, opened.credential);
  EXPECT_EQ(other.port, opened.port);  // one listener serves every endpoint
}

// Another kernel replica's tunnel, given the grant's verifier, serves the
// credential the requester already holds and issues none.
TEST_F(HttpsTunnelTest, AnEndpointOpenedAgainWithItsVerifierKeepsTheCredential) {
  void* first = CreateTunnel(BaseConfig());
  Opened opened = Open(first, "moved");
  const std::string verifier = opened.grant.value("verifier", "");
  EXPECT_TRUE(std::regex_match(verifier, std::regex("sha256:[0-9a-f]{64}"))) << verifier;
  const std::string credential = opened.credential;
  Close(first, opened);

  void* second = CreateTunnel(BaseConfig());
  json spec = Spec("moved");
  spec["verifier"] = verifier;
  Opened again;
  std::string message;
  ASSERT_EQ(TryOpen(second, spec, &again, &message), AIRLOCK_OK) << message;
  EXPECT_FALSE(again.grant.contains("credential")) << again.grant.dump();
  EXPECT_EQ(again.grant.value("verifier", ""), verifier);
  auto client = Client(again.port);
  again.credential = credential;
  EXPECT_EQ(Query(*client, again, "SELECT 1").status, 200u);
  again.credential = credential + "x";
  EXPECT_EQ(Query(*client, again, "SELECT 1").status, 401u);

  for (const std::string& bad :
       {std::string("sha256:abc"), std::string("md5:") + verifier.substr(7),
        "sha256:" + std::string(64, 'g')}) {
    json malformed = Spec("malformed");
    malformed["verifier"] = bad;
    Opened refused;
    EXPECT_EQ(TryOpen(second, malformed, &refused, &message), AIRLOCK_ERR_INVALID_ARGUMENT) << bad;
    EXPECT_NE(message.find("verifier"), std::string::npos) << message;
  }
}

TEST_F(HttpsTunnelTest, OpenValidatesTheSpec) {
  void* instance = CreateTunnel(BaseConfig());
  Opened opened;
  std::string message;
  EXPECT_EQ(TryOpen(instance, Spec("../etc"), &opened, &message), AIRLOCK_ERR_INVALID_ARGUMENT);
  EXPECT_NE(message.find("request_id"), std::string::npos) << message;
  EXPECT_EQ(TryOpen(instance, Spec("late", -10), &opened, &message), AIRLOCK_ERR_INVALID_ARGUMENT);
  EXPECT_NE(message.find("not_after"), std::string::npos) << message;
  json no_deadline = Spec("x");
  no_deadline.erase("not_after");
  EXPECT_EQ(TryOpen(instance, no_deadline, &opened, &message), AIRLOCK_ERR_INVALID_ARGUMENT);

  ASSERT_EQ(TryOpen(instance, Spec("twice"), &opened, &message), AIRLOCK_OK) << message;
  Opened again;
  EXPECT_EQ(TryOpen(instance, Spec("twice"), &again, &message), AIRLOCK_ERR_ALREADY_EXISTS);
}

// ---------------------------------------------------------------------------
// Queries

TEST_F(HttpsTunnelTest, QueryReturnsRowsWithJsonTypes) {
  void* instance = CreateTunnel(BaseConfig());
  const Opened opened = Open(instance, "typed");
  auto client = Client(opened.port);
  const auto res = Query(*client, opened, "SELECT * FROM people ORDER BY id");
  ASSERT_EQ(res.status, 200u) << res.body << res.error;
  EXPECT_EQ(res.header("Content-Type"), "application/json");
  EXPECT_EQ(res.header("Cache-Control"), "no-store");
  const json body = res.json();
  ASSERT_FALSE(body.is_discarded()) << res.body;

  const json expected_columns = json::parse(R"([
    {"name":"id","type":"int64"},{"name":"name","type":"utf8"},
    {"name":"score","type":"float64"},{"name":"photo","type":"binary"},
    {"name":"active","type":"bool"},{"name":"born","type":"date32"},
    {"name":"seen","type":"timestamp[us]","timezone":"UTC"},
    {"name":"local_seen","type":"timestamp[us]"},{"name":"wakes","type":"time64[us]"},
    {"name":"note","type":"utf8"}])");
  EXPECT_EQ(body.at("columns"), expected_columns);
  EXPECT_EQ(body.at("row_count"), 2);
  ASSERT_EQ(body.at("rows").size(), 2u);

  const json& ada = body["rows"][0];
  EXPECT_TRUE(ada[0].is_number_integer());
  EXPECT_EQ(ada[0], 1);
  EXPECT_EQ(ada[1], "Ada \"the\" Countess");
  EXPECT_TRUE(ada[2].is_number_float());
  EXPECT_DOUBLE_EQ(ada[2].get<double>(), 2.5);
  EXPECT_EQ(ada[3], "AP8Q");  // base64 of 00 ff 10
  EXPECT_EQ(ada[4], true);
  EXPECT_EQ(ada[5], "1815-12-10");
  EXPECT_EQ(ada[6], "2023-11-14T22:13:20.123456Z");
  EXPECT_EQ(ada[7], "1970-01-01T00:00:00");
  EXPECT_EQ(ada[8], "07:00:00");
  EXPECT_TRUE(ada[9].is_null());

  const json& grace = body["rows"][1];
  EXPECT_EQ(grace[0].get<int64_t>(), 9007199254740993);  // exact beyond 2^53
  EXPECT_EQ(grace[1], "Grace\nHopper ✓");
  EXPECT_EQ(grace[2], "Infinity");
  EXPECT_EQ(grace[3], "");
  EXPECT_EQ(grace[4], false);
  EXPECT_EQ(grace[5], "1906-12-09");
  EXPECT_EQ(grace[6], "1969-12-31T23:59:59.999999Z");
  EXPECT_EQ(grace[7], "1970-01-02T00:00:00");
  EXPECT_EQ(grace[8], "00:00:00");
  EXPECT_EQ(grace[9], "x");
}

TEST_F(HttpsTunnelTest, ExpressionsNegativeInfinityAndInvalidUtf8) {
  void* instance = CreateTunnel(BaseConfig());
  const Opened opened = Open(instance, "exprs");
  auto client = Client(opened.port);
  const auto res = Query(*client, opened,
                         "SELECT -9e999 AS neg, CAST(x'41ff42' AS TEXT) AS bad, 7 AS seven, "
                         "NULL AS no_value, char(1) AS ctl");
  ASSERT_EQ(res.status, 200u) << res.body;
  const json body = res.json();
  ASSERT_FALSE(body.is_discarded()) << res.body;
  EXPECT_EQ(body["rows"][0][0], "-Infinity");
  EXPECT_EQ(body["rows"][0][1],
            "A\xEF\xBF\xBD"
            "B");  // U+FFFD for the invalid byte
  EXPECT_EQ(body["rows"][0][2], 7);
  EXPECT_TRUE(body["rows"][0][3].is_null());
  EXPECT_EQ(body["rows"][0][4], "\x01");
  EXPECT_NE(res.body.find("\\u0001"), std::string::npos);
}

TEST_F(HttpsTunnelTest, NotANumberIsAString) {
  ASSERT_EQ("", db_.Exec("CREATE TABLE measures (v REAL); INSERT INTO measures VALUES ('NaN'), "
                         "(0.1), (-2.5e-300), (1e300);"));
  void* instance = CreateTunnel(BaseConfig());
  const Opened opened = Open(instance, "nan");
  auto client = Client(opened.port);
  const auto res = Query(*client, opened, "SELECT v FROM measures");
  ASSERT_EQ(res.status, 200u) << res.body;
  const json rows = res.json().at("rows");
  EXPECT_EQ(rows[0][0], "NaN");
  EXPECT_EQ(rows[1][0].get<double>(), 0.1);  // shortest form reads back exactly
  EXPECT_EQ(rows[2][0].get<double>(), -2.5e-300);
  EXPECT_EQ(rows[3][0].get<double>(), 1e300);
}

TEST_F(HttpsTunnelTest, EmptyResultHasColumnsAndNoRows) {
  void* instance = CreateTunnel(BaseConfig());
  const Opened opened = Open(instance, "empty");
  auto client = Client(opened.port);
  const auto res = Query(*client, opened, "SELECT id, name FROM people WHERE id < 0");
  ASSERT_EQ(res.status, 200u) << res.body;
  const json body = res.json();
  EXPECT_EQ(body.at("row_count"), 0);
  EXPECT_TRUE(body.at("rows").empty());
  EXPECT_EQ(body.at("columns").size(), 2u);
}

TEST_F(HttpsTunnelTest, QueryErrorsMapToStatuses) {
  void* instance = CreateTunnel(BaseConfig());
  const Opened opened = Open(instance, "errors");
  auto client = Client(opened.port);

  auto res = Query(*client, opened, "DELETE FROM people");
  EXPECT_EQ(res.status, 403u) << res.body;
  EXPECT_EQ(ErrorCode(res), "permission_denied");

  res = Query(*client, opened, "SELEKT 1");
  EXPECT_EQ(res.status, 400u) << res.body;
  EXPECT_EQ(ErrorCode(res), "invalid_argument");
  EXPECT_NE(res.json()["message"].get<std::string>().find("syntax"), std::string::npos);

  res = Query(*client, opened, "SELECT * FROM nowhere");
  EXPECT_EQ(res.status, 400u) << res.body;

  // The table is still there: the write was refused, not executed.
  res = Query(*client, opened, "SELECT COUNT(*) FROM people");
  ASSERT_EQ(res.status, 200u);
  EXPECT_EQ(res.json()["rows"][0][0], 2);
}

TEST_F(HttpsTunnelTest, TablesListsTheChannelsTables) {
  void* instance = CreateTunnel(BaseConfig());
  const Opened opened = Open(instance, "tables");
  auto client = Client(opened.port);
  const auto res = client->Get(opened.base_path + "/tables", Bearer(opened.credential));
  ASSERT_EQ(res.status, 200u) << res.body;
  const json body = res.json();
  ASSERT_EQ(body.at("tables").size(), 2u);
  EXPECT_EQ(body["tables"][0]["name"], "big");
  EXPECT_EQ(body["tables"][0]["rows"], 20000);
  EXPECT_EQ(body["tables"][1]["name"], "people");
  EXPECT_EQ(body["tables"][1]["columns"][0], (json{{"name", "id"}, {"type", "int64"}}));

  const auto unauthenticated = client->Get(opened.base_path + "/tables");
  EXPECT_EQ(unauthenticated.status, 401u);
}

// ---------------------------------------------------------------------------
// Authentication and request checks

TEST_F(HttpsTunnelTest, CredentialIsRequiredAndChecked) {
  void* instance = CreateTunnel(BaseConfig());
  const Opened opened = Open(instance, "auth");
  const Opened other = Open(instance, "auth-other");
  auto client = Client(opened.port);
  const std::string body = json{{"sql", "SELECT 1"}}.dump();

  auto res = client->Post(opened.base_path + "/query", body);
  EXPECT_EQ(res.status, 401u);
  EXPECT_EQ(ErrorCode(res), "unauthenticated");
  EXPECT_NE(res.header("WWW-Authenticate").find("Bearer"), std::string::npos);

  std::string wrong = opened.credential;
  wrong[0] = wrong[0] == 'A' ? 'B' : 'A';
  res = client->Post(opened.base_path + "/query", body, Bearer(wrong));
  EXPECT_EQ(res.status, 401u);
  EXPECT_EQ(ErrorCode(res), "unauthenticated");

  res = client->Post(opened.base_path + "/query", body, Bearer("short"));
  EXPECT_EQ(res.status, 401u);

  // Another endpoint's credential does not open this one.
  res = client->Post(opened.base_path + "/query", body, Bearer(other.credential));
  EXPECT_EQ(res.status, 401u);

  res = client->Post(opened.base_path + "/query", body,
                     {{"Authorization", "Basic " + opened.credential}});
  EXPECT_EQ(res.status, 401u);

  res = client->Post(opened.base_path + "/query", body,
                     {{"Authorization", "bearer " + opened.credential}});
  EXPECT_EQ(res.status, 200u) << res.body;  // the scheme is case-insensitive
}

TEST_F(HttpsTunnelTest, ExpiredWindowIsRefused) {
  void* instance = CreateTunnel(BaseConfig());
  const Opened opened = Open(instance, "expiring", 60);
  auto client = Client(opened.port);
  ASSERT_EQ(Query(*client, opened, "SELECT 1").status, 200u);

  const int64_t not_after = opened.grant.at("expires_at").get<int64_t>();
  host_.pinned_now_micros = not_after * 1000000;  // the last valid second
  EXPECT_EQ(Query(*client, opened, "SELECT 1").status, 200u);
  host_.pinned_now_micros = (not_after + 1) * 1000000;
  const auto res = Query(*client, opened, "SELECT 1");
  // The same answer as once the kernel closed the endpoint at window end.
  EXPECT_EQ(res.status, 410u);
  EXPECT_EQ(ErrorCode(res), "window_ended");
}

TEST_F(HttpsTunnelTest, WindowEndIsToldApartFromRevocation) {
  void* instance = CreateTunnel(BaseConfig());
  Opened ended = Open(instance, "window-ends");
  Opened revoked = Open(instance, "revoked-one");
  Opened legacy = Open(instance, "legacy-close");
  auto client = Client(ended.port);
  ASSERT_EQ(Query(*client, ended, "SELECT 1").status, 200u);
  const Opened ended_copy = ended;
  const Opened revoked_copy = revoked;
  const Opened legacy_copy = legacy;

  Close(instance, ended, AIRLOCK_CLOSE_WINDOW_ENDED);
  Close(instance, revoked, AIRLOCK_CLOSE_REVOKED);
  Close(instance, legacy);  // an ABI 1.0 host: close() without a reason

  auto res = Query(*client, ended_copy, "SELECT 1");
  EXPECT_EQ(res.status, 410u);
  EXPECT_EQ(ErrorCode(res), "window_ended") << res.body;
  EXPECT_NE(res.json().value("message", "").find("access window"), std::string::npos) << res.body;
  res = client->Get(ended_copy.base_path + "/tables", Bearer(ended_copy.credential));
  EXPECT_EQ(res.status, 410u);
  EXPECT_EQ(ErrorCode(res), "window_ended") << res.body;

  res = Query(*client, revoked_copy, "SELECT 1");
  EXPECT_EQ(res.status, 410u);
  EXPECT_EQ(ErrorCode(res), "revoked") << res.body;
  res = Query(*client, legacy_copy, "SELECT 1");
  EXPECT_EQ(res.status, 410u);
  EXPECT_EQ(ErrorCode(res), "revoked") << res.body;
}

TEST_F(HttpsTunnelTest, MalformedBodiesAreBadRequests) {
  void* instance = CreateTunnel(BaseConfig());
  const Opened opened = Open(instance, "malformed");
  auto client = Client(opened.port);
  const auto post = [&](const std::string& body) {
    return client->Post(opened.base_path + "/query", body, Bearer(opened.credential));
  };
  for (const std::string body : {"not json", "[\"SELECT 1\"]", "{\"query\":\"SELECT 1\"}",
                                 "{\"sql\":42}", "{\"sql\":\"   \"}", ""}) {
    const auto res = post(body);
    EXPECT_EQ(res.status, 400u) << "body: " << body << " -> " << res.body;
    EXPECT_EQ(ErrorCode(res), "invalid_request") << body;
  }
  EXPECT_EQ(post(R"({"sql":"SELECT 1","extra":true})").status, 200u);
}

TEST_F(HttpsTunnelTest, UnknownPathsMethodsAndEndpoints) {
  void* instance = CreateTunnel(BaseConfig());
  const Opened opened = Open(instance, "paths");
  auto client = Client(opened.port);
  auto res = client->Get("/t/nobody/tables", Bearer(opened.credential));
  EXPECT_EQ(res.status, 404u);
  EXPECT_EQ(ErrorCode(res), "not_found");
  res = client->Get("/", Bearer(opened.credential));
  EXPECT_EQ(res.status, 404u);
  res = client->Get(opened.base_path + "/other", Bearer(opened.credential));
  EXPECT_EQ(res.status, 404u);
  res = client->Get(opened.base_path + "/query", Bearer(opened.credential));
  EXPECT_EQ(res.status, 405u);
  EXPECT_EQ(res.header("Allow"), "POST");
  res = client->Post(opened.base_path + "/tables", "{}", Bearer(opened.credential));
  EXPECT_EQ(res.status, 405u);
  EXPECT_EQ(res.header("Allow"), "GET");
}

TEST_F(HttpsTunnelTest, OversizedBodyIs413) {
  json config = BaseConfig();
  config["max_body_bytes"] = 1024;
  void* instance = CreateTunnel(config);
  const Opened opened = Open(instance, "big-body");
  auto client = Client(opened.port);
  const std::string sql = "SELECT '" + std::string(2000, 'a') + "'";
  auto res = Query(*client, opened, sql);
  EXPECT_EQ(res.status, 413u) << res.error;
  EXPECT_EQ(ErrorCode(res), "payload_too_large");
  // A body just under the limit is served.
  res = Query(*client, opened, "SELECT '" + std::string(900, 'a') + "'");
  EXPECT_EQ(res.status, 200u) << res.body;
}

TEST_F(HttpsTunnelTest, RateLimitPerCredential) {
  json config = BaseConfig();
  config["rate_limit_per_minute"] = 3;
  void* instance = CreateTunnel(config);
  const Opened opened = Open(instance, "limited");
  const Opened other = Open(instance, "unlimited-neighbour");
  auto client = Client(opened.port);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(client->Get(opened.base_path + "/tables", Bearer(opened.credential)).status, 200u);
  }
  const auto res = client->Get(opened.base_path + "/tables", Bearer(opened.credential));
  EXPECT_EQ(res.status, 429u);
  EXPECT_EQ(ErrorCode(res), "rate_limited");
  EXPECT_GE(std::stoi(res.header("Retry-After")), 1);
  // Each credential has its own budget.
  EXPECT_EQ(client->Get(other.base_path + "/tables", Bearer(other.credential)).status, 200u);
}

// ---------------------------------------------------------------------------
// Large results

TEST_F(HttpsTunnelTest, LargeResultsStreamInChunks) {
  void* instance = CreateTunnel(BaseConfig());
  const Opened opened = Open(instance, "stream");
  auto client = Client(opened.port);
  const auto res = Query(*client, opened, "SELECT id, label FROM big ORDER BY id");
  ASSERT_EQ(res.status, 200u) << res.error;
  EXPECT_EQ(res.header("Transfer-Encoding"), "chunked");
  const json body = res.json();
  ASSERT_FALSE(body.is_discarded());
  EXPECT_EQ(body.at("row_count"), 20000);
  ASSERT_EQ(body.at("rows").size(), 20000u);
  EXPECT_EQ(body["rows"][0], (json{1, "row number 1"}));
  EXPECT_EQ(body["rows"][19999], (json{20000, "row number 20000"}));
  EXPECT_FALSE(body.contains("error"));
  // The connection stays usable after a streamed response.
  EXPECT_EQ(Query(*client, opened, "SELECT 1").status, 200u);
  EXPECT_EQ(client->connections_opened(), 1);
}

TEST_F(HttpsTunnelTest, SmallResultOverMaxRowsIs413) {
  json config = BaseConfig();
  config["max_rows"] = 5;
  void* instance = CreateTunnel(config);
  const Opened opened = Open(instance, "capped");
  auto client = Client(opened.port);
  auto res = Query(*client, opened, "SELECT id FROM big LIMIT 6");
  EXPECT_EQ(res.status, 413u) << res.body;
  EXPECT_EQ(ErrorCode(res), "result_too_large");
  res = Query(*client, opened, "SELECT id FROM big LIMIT 5");
  EXPECT_EQ(res.status, 200u) << res.body;
  EXPECT_EQ(res.json()["row_count"], 5);
}

TEST_F(HttpsTunnelTest, StreamedResultOverMaxRowsEndsWithAnError) {
  json config = BaseConfig();
  config["max_rows"] = 15000;
  void* instance = CreateTunnel(config);
  const Opened opened = Open(instance, "capped-stream");
  auto client = Client(opened.port);
  const auto res = Query(*client, opened, "SELECT id, label FROM big");
  ASSERT_EQ(res.status, 200u);  // headers went out before the limit was reached
  EXPECT_EQ(res.header("Transfer-Encoding"), "chunked");
  const json body = res.json();
  ASSERT_FALSE(body.is_discarded()) << res.body.substr(res.body.size() - 200);
  EXPECT_EQ(body.at("row_count"), 15000);
  EXPECT_EQ(body.at("rows").size(), 15000u);
  EXPECT_EQ(body.at("error"), "result_too_large");
  EXPECT_NE(body.at("message").get<std::string>().find("max_rows"), std::string::npos);
}

TEST_F(HttpsTunnelTest, SlowQueryHitsTheTimeout) {
  json config = BaseConfig();
  config["query_timeout_ms"] = 300;
  void* instance = CreateTunnel(config);
  const Opened opened = Open(instance, "slow");
  auto client = Client(opened.port);
  const auto start = Clock::now();
  const auto res = Query(*client, opened, "/*wait_for_cancel*/ SELECT 1");
  EXPECT_EQ(res.status, 504u) << res.body;
  EXPECT_EQ(ErrorCode(res), "deadline_exceeded");
  EXPECT_TRUE(db_.saw_cancel());
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
}

// ---------------------------------------------------------------------------
// Revocation

TEST_F(HttpsTunnelTest, CloseRevokesAndDropsOpenConnections) {
  void* instance = CreateTunnel(BaseConfig());
  Opened opened = Open(instance, "revoke-me");
  const Opened neighbour = Open(instance, "stays-open");

  RawTlsConnection kept_alive(opened.port, pki_->ca.cert_file);
  ASSERT_EQ(kept_alive.Exchange(boost::beast::http::verb::get, opened.base_path + "/tables",
                                opened.credential),
            200u);
  RawTlsConnection neighbours_connection(neighbour.port, pki_->ca.cert_file);
  ASSERT_EQ(neighbours_connection.Exchange(boost::beast::http::verb::get,
                                           neighbour.base_path + "/tables", neighbour.credential),
            200u);
  EXPECT_FALSE(kept_alive.ClosedWithin(std::chrono::milliseconds(200)));  // idle but open

  const std::string path = opened.base_path;
  const std::string credential = opened.credential;
  Close(instance, opened);

  EXPECT_TRUE(kept_alive.ClosedWithin(std::chrono::seconds(2)));
  EXPECT_FALSE(neighbours_connection.ClosedWithin(std::chrono::milliseconds(200)));

  auto client = Client(neighbour.port);
  auto res = client->Post(path + "/query", R"({"sql":"SELECT 1"})", Bearer(credential));
  EXPECT_EQ(res.status, 410u);
  EXPECT_EQ(ErrorCode(res), "revoked");
  res = client->Get(path + "/tables", Bearer(credential));
  EXPECT_EQ(res.status, 410u);
  // The neighbour is unaffected.
  EXPECT_EQ(neighbours_connection.Exchange(boost::beast::http::verb::get,
                                           neighbour.base_path + "/tables", neighbour.credential),
            200u);
}

TEST_F(HttpsTunnelTest, CloseCancelsARunningQueryAndWaitsForIt) {
  void* instance = CreateTunnel(BaseConfig());
  Opened opened = Open(instance, "in-flight");
  ClientResponse res;
  std::thread requester([&] {
    auto client = Client(opened.port);
    res = Query(*client, opened, "/*wait_for_cancel*/ SELECT 1");
  });
  ASSERT_TRUE(db_.WaitUntilBlocked(std::chrono::seconds(5)));
  EXPECT_EQ(db_.queries_running(), 1);

  const auto start = Clock::now();
  Close(instance, opened);
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
  // close() returned only after the query left the channel.
  EXPECT_TRUE(db_.saw_cancel());
  EXPECT_EQ(db_.queries_running(), 0);

  requester.join();
  EXPECT_NE(res.status, 200u);
  if (res.status != 0) {
    EXPECT_EQ(res.status, 410u);  // the client retried on a fresh connection
  }
}

TEST_F(HttpsTunnelTest, DestroyingTheTunnelRevokesEverything) {
  void* instance = CreateTunnel(BaseConfig());
  Opened opened = Open(instance, "shutdown");
  RawTlsConnection kept_alive(opened.port, pki_->ca.cert_file);
  ASSERT_EQ(kept_alive.Exchange(boost::beast::http::verb::get, opened.base_path + "/tables",
                                opened.credential),
            200u);
  const auto start = Clock::now();
  table_->destroy(instance);
  instances_.clear();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
  EXPECT_TRUE(kept_alive.ClosedWithin(std::chrono::seconds(1)));
  // The host may still close the endpoint afterwards; that must be harmless.
  Close(instance, opened);
}

// ---------------------------------------------------------------------------
// Concurrency

TEST_F(HttpsTunnelTest, ConcurrentClientsOnOneEndpoint) {
  json config = BaseConfig();
  config["max_concurrent_queries"] = 6;
  void* instance = CreateTunnel(config);
  const Opened opened = Open(instance, "busy");
  std::atomic<int> ok{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 6; ++t) {
    clients.emplace_back([&, t] {
      auto client = Client(opened.port);
      for (int i = 0; i < 5; ++i) {
        const auto res =
            Query(*client, opened, "SELECT COUNT(*) FROM big WHERE id % 6 = " + std::to_string(t));
        if (res.status == 200 && res.json()["rows"][0][0].is_number_integer()) ++ok;
      }
    });
  }
  for (auto& thread : clients) thread.join();
  EXPECT_EQ(ok.load(), 30);
  EXPECT_EQ(db_.queries_started(), 30);
}

// ---------------------------------------------------------------------------
// Secrets and plaintext mode

TEST_F(HttpsTunnelTest, CredentialNeverAppearsInLogs) {
  void* instance = CreateTunnel(BaseConfig());
  Opened opened = Open(instance, "secretive");
  auto client = Client(opened.port);
  std::string wrong = opened.credential;
  std::reverse(wrong.begin(), wrong.end());
  EXPECT_EQ(Query(*client, opened, "SELECT 1").status, 200u);
  EXPECT_EQ(
      client->Post(opened.base_path + "/query", R"({"sql":"SELECT 1"})", Bearer(wrong)).status,
      401u);
  EXPECT_EQ(Query(*client, opened, "DELETE FROM people").status, 403u);
  Close(instance, opened);
  table_->destroy(instance);
  instances_.clear();

  const std::string logs = host_.AllLogs();
  EXPECT_NE(logs.find("secretive"), std::string::npos) << logs;  // the log capture works
  EXPECT_TRUE(host_.Logged(AIRLOCK_LOG_WARN, "credential refused"));
  EXPECT_EQ(logs.find(opened.credential), std::string::npos) << logs;
  EXPECT_EQ(logs.find(wrong), std::string::npos) << logs;
  EXPECT_EQ(logs.find(opened.credential.substr(0, 12)), std::string::npos) << logs;
}

TEST_F(HttpsTunnelTest, PlaintextModeWarnsAndServesHttp) {
  json config = BaseConfig();
  config.erase("tls");
  config["allow_plaintext"] = true;
  void* instance = CreateTunnel(config);
  EXPECT_TRUE(host_.Logged(AIRLOCK_LOG_WARN, "PLAIN HTTP"));
  const Opened opened = Open(instance, "plain");
  EXPECT_EQ(opened.grant.at("transport"), "http");
  EXPECT_EQ(opened.grant.at("url"), "http://127.0.0.1:" + std::to_string(opened.port) + "/t/plain");

  HttpClient client("127.0.0.1", opened.port);
  const auto res = Query(client, opened, "SELECT name FROM people WHERE id = 1");
  ASSERT_EQ(res.status, 200u) << res.error;
  EXPECT_EQ(res.json()["rows"][0][0], "Ada \"the\" Countess");

  // Expect: 100-continue is answered before the body is sent.
  const std::string body = R"({"sql":"SELECT 40 + 2"})";
  const std::string raw = airlock::test::SendRaw(
      "127.0.0.1", opened.port,
      "POST " + opened.base_path + "/query HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " +
          opened.credential +
          "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
          "\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n" + body);
  EXPECT_EQ(raw.rfind("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK", 0), 0u) << raw;
  EXPECT_NE(raw.find("\"rows\":[[42]"), std::string::npos) << raw;

  // Garbage is a 400, and the connection is closed.
  const std::string garbage =
      airlock::test::SendRaw("127.0.0.1", opened.port, "NOT HTTP AT ALL\r\n\r\n");
  EXPECT_EQ(garbage.rfind("HTTP/1.1 400", 0), 0u) << garbage;
}

// ---------------------------------------------------------------------------
// Through the kernel's plugin host

TEST_F(HttpsTunnelTest, WorksThroughTheKernelPluginHost) {
  airlock::plugin_host::PluginLoader loader(&host_.services);
  auto library = loader.Load(kPluginPath, std::nullopt, AIRLOCK_KIND_TUNNEL);
  ASSERT_TRUE(library.ok()) << library.status().ToString();
  auto tunnel = airlock::plugin_host::TunnelPlugin::Create(*library, BaseConfig());
  ASSERT_TRUE(tunnel.ok()) << tunnel.status().ToString();
  auto opened = (*tunnel)->Open(Spec("via-kernel"), db_.channel());
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto& [endpoint, grant] = *opened;

  Opened view;
  view.credential = grant.at("credential").get<std::string>();
  std::smatch match;
  const std::string url = grant.at("url").get<std::string>();
  ASSERT_TRUE(std::regex_match(url, match, std::regex(R"(https://127\.0\.0\.1:(\d+)(/t/.+))")));
  view.port = static_cast<uint16_t>(std::stoi(match[1].str()));
  view.base_path = match[2].str();

  auto client = Client(view.port);
  auto res = Query(*client, view, "SELECT name FROM people ORDER BY id LIMIT 1");
  ASSERT_EQ(res.status, 200u) << res.body;
  EXPECT_EQ(res.json()["rows"][0][0], "Ada \"the\" Countess");

  endpoint->Close();
  res = Query(*client, view, "SELECT 1");
  EXPECT_EQ(res.status, 410u);
}

}  // namespace
}  // namespace airlock::testing::https_tunnel
