// Result formats of POST /t/<id>/query: the error shape, JSON streamed batch
// by batch, CSV (RFC 4180, formula neutralising), SQL bodies, and how a
// failure after streaming began is signalled in each format.
#include "scripted_channel.h"
#include "tunnel_fixture.h"

namespace airlock::testing::https_tunnel {
namespace {

using airlock::testing::ScriptedChannel;

// Splits a raw chunked HTTP/1.1 response into header text and decoded body;
// *terminated tells whether the terminating chunk arrived, *trailers holds
// the trailer section.
std::string DecodeChunked(const std::string& raw, bool* terminated, std::string* trailers) {
  *terminated = false;
  const size_t header_end = raw.find("\r\n\r\n");
  if (header_end == std::string::npos) return {};
  std::string body;
  size_t pos = header_end + 4;
  while (pos < raw.size()) {
    const size_t line_end = raw.find("\r\n", pos);
    if (line_end == std::string::npos) break;
    const size_t size = std::stoul(raw.substr(pos, line_end - pos), nullptr, 16);
    pos = line_end + 2;
    if (size == 0) {
      const size_t end = raw.find("\r\n\r\n", pos - 2);
      if (end != std::string::npos) {
        *terminated = true;
        *trailers = raw.substr(pos, end + 2 - pos);
      }
      break;
    }
    if (pos + size > raw.size()) {
      body += raw.substr(pos);
      break;
    }
    body += raw.substr(pos, size);
    pos += size + 2;
  }
  return body;
}

std::string RawQuery(uint16_t port, const Opened& opened, const std::string& target_suffix,
                     const std::string& sql, const std::string& extra_headers = {}) {
  const std::string body = json{{"sql", sql}}.dump();
  return airlock::test::SendRaw(
      "127.0.0.1", port,
      "POST " + opened.base_path + "/query" + target_suffix +
          " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + opened.credential +
          "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
          "\r\nConnection: close\r\n" + extra_headers + "\r\n" + body);
}

class ResultFormatsTest : public HttpsTunnelTest {
 protected:
  // A plaintext tunnel, to look at the exact bytes on the wire.
  void* CreatePlainTunnel(json config = {}) {
    json merged = BaseConfig();
    merged.erase("tls");
    merged["allow_plaintext"] = true;
    for (auto& [key, value] : config.items()) merged[key] = value;
    return CreateTunnel(merged);
  }
};

TEST_F(ResultFormatsTest, ErrorsUseTheKernelApiShape) {
  void* instance = CreateTunnel(BaseConfig());
  const Opened opened = Open(instance, "shape");
  auto client = Client(opened.port);
  for (const auto& res :
       {Query(*client, opened, "SELEKT 1"), client->Get(opened.base_path + "/tables"),
        client->Get("/t/nobody/tables", Bearer(opened.credential))}) {
    const json body = res.json();
    ASSERT_TRUE(body.is_object()) << res.body;
    EXPECT_EQ(body.size(), 2u) << res.body;
    EXPECT_TRUE(body.at("error").is_string()) << res.body;
    EXPECT_TRUE(body.at("message").is_string()) << res.body;
    EXPECT_EQ(res.header("Content-Type"), "application/json");
  }
}

TEST_F(ResultFormatsTest, JsonIsSentBatchByBatchWhileTheQueryRuns) {
  ScriptedChannel& channel =
      Scripted({.batches = 2, .rows_per_batch = 3, .ending = ScriptedChannel::Ending::kHold});
  void* instance = CreateTunnel(BaseConfig());
  Opened opened;
  std::string message;
  ASSERT_EQ(TryOpen(instance, Spec("batches"), &opened, &message, channel.channel()), AIRLOCK_OK)
      << message;
  RawTlsConnection connection(opened.port, pki_->ca.cert_file);
  connection.Send(boost::beast::http::verb::post, opened.base_path + "/query", opened.credential,
                  R"({"sql":"SELECT anything"})");
  // Both batches arrive while the channel is still inside the query.
  const std::string& seen = connection.ReadUntil("\"row 6\"]", std::chrono::seconds(5));
  ASSERT_NE(seen.find("\"row 6\"]"), std::string::npos) << seen;
  EXPECT_TRUE(channel.WaitUntilHolding(std::chrono::seconds(5)));
  EXPECT_EQ(channel.queries_running(), 1);
  EXPECT_NE(seen.find("Transfer-Encoding: chunked"), std::string::npos) << seen;
  EXPECT_NE(seen.find("Trailer: Airlock-Row-Count"), std::string::npos) << seen;
  EXPECT_EQ(seen.find("row_count"), std::string::npos) << "the result is not complete yet";

  channel.Release();
  ASSERT_TRUE(connection.ReadUntil("\r\n0\r\n", std::chrono::seconds(5)).find("\r\n0\r\n") !=
              std::string::npos);
  bool terminated = false;
  std::string trailers;
  connection.ReadUntil("Airlock-Row-Count: 6\r\n\r\n", std::chrono::seconds(5));
  const std::string body = DecodeChunked(connection.received(), &terminated, &trailers);
  EXPECT_TRUE(terminated);
  EXPECT_NE(trailers.find("Airlock-Row-Count: 6"), std::string::npos) << trailers;
  const json doc = json::parse(body, nullptr, false);
  ASSERT_FALSE(doc.is_discarded()) << body;
  EXPECT_EQ(doc.at("row_count"), 6);
  EXPECT_EQ(doc.at("rows")[5], (json{6, "row 6"}));
  Close(instance, opened);
}

TEST_F(ResultFormatsTest, JsonFailureAfterStreamingEndsWithErrorMembers) {
  ScriptedChannel& channel = Scripted({.batches = 2,
                                       .rows_per_batch = 4,
                                       .ending = ScriptedChannel::Ending::kFail,
                                       .error = AIRLOCK_ERR_UNAVAILABLE,
                                       .message = "the enclave went away"});
  void* instance = CreateTunnel(BaseConfig());
  Opened opened;
  std::string message;
  ASSERT_EQ(TryOpen(instance, Spec("json-fail"), &opened, &message, channel.channel()), AIRLOCK_OK);
  auto client = Client(opened.port);
  const auto res = Query(*client, opened, "SELECT anything");
  ASSERT_EQ(res.status, 200u) << res.error;  // the header went out with the first batch
  const json body = res.json();
  ASSERT_FALSE(body.is_discarded()) << res.body;
  EXPECT_EQ(body.at("rows").size(), 8u);
  EXPECT_EQ(body.at("row_count"), 8);
  EXPECT_EQ(body.at("error"), "unavailable");
  EXPECT_EQ(body.at("message"), "the enclave went away");
  EXPECT_TRUE(res.header("Airlock-Row-Count").empty()) << "no row-count trailer on failure";
  Close(instance, opened);
}

TEST_F(ResultFormatsTest, FailureBeforeTheFirstBatchHasARealStatus) {
  ScriptedChannel& channel = Scripted({.batches = 0,
                                       .ending = ScriptedChannel::Ending::kFail,
                                       .error = AIRLOCK_ERR_PERMISSION_DENIED,
                                       .message = "read-only"});
  void* instance = CreateTunnel(BaseConfig());
  Opened opened;
  ASSERT_EQ(TryOpen(instance, Spec("early-fail"), &opened, nullptr, channel.channel()), AIRLOCK_OK);
  auto client = Client(opened.port);
  auto res = Query(*client, opened, "SELECT anything");
  EXPECT_EQ(res.status, 403u);
  EXPECT_EQ(ErrorCode(res), "permission_denied");
  res = client->Post(opened.base_path + "/query?format=csv", R"({"sql":"SELECT 1"})",
                     Bearer(opened.credential));
  EXPECT_EQ(res.status, 403u);  // CSV clients get the same JSON error
  EXPECT_EQ(ErrorCode(res), "permission_denied");
  Close(instance, opened);
}

TEST_F(ResultFormatsTest, CsvQuotesFieldsAndNeutralisesFormulas) {
  void* instance = CreateTunnel(BaseConfig());
  const Opened opened = Open(instance, "csv");
  auto client = Client(opened.port);
  const std::string sql =
      "SELECT '=1+2' AS \"=evil\", '+cmd' AS plus, '-5' AS minus_text, -5 AS minus_number, "
      "'@SUM(A1)' AS at, char(9) || 'tab' AS tab, char(13) || 'cr' AS cr, 'a,b' AS comma, "
      "'say \"hi\"' AS quote, 'line' || char(10) || 'break' AS lf, NULL AS nul, '' AS empty, "
      "-2.5 AS real, 'plain' AS plain, CAST(x'41ff' AS TEXT) AS bad_utf8";
  const std::string expected =
      "'=evil,plus,minus_text,minus_number,at,tab,cr,comma,quote,lf,nul,empty,real,plain,"
      "bad_utf8\r\n"
      "'=1+2,'+cmd,'-5,-5,'@SUM(A1),'\ttab,\"'\rcr\",\"a,b\",\"say \"\"hi\"\"\",\"line\nbreak\",,"
      "\"\",-2.5,plain,A\xEF\xBF\xBD\r\n";

  auto res = client->Post(
      opened.base_path + "/query", json{{"sql", sql}}.dump(),
      {{"Authorization", "Bearer " + opened.credential}, {"Accept", "text/html, text/csv;q=0.9"}});
  ASSERT_EQ(res.status, 200u) << res.body;
  EXPECT_EQ(res.header("Content-Type"), "text/csv; charset=utf-8; header=present");
  EXPECT_EQ(res.body, expected);
  EXPECT_EQ(res.header("Airlock-Row-Count"), "1");

  // ?format=csv does the same, and wins over Accept.
  res = client->Post(
      opened.base_path + "/query?format=csv", json{{"sql", sql}}.dump(),
      {{"Authorization", "Bearer " + opened.credential}, {"Accept", "application/json"}});
  ASSERT_EQ(res.status, 200u);
  EXPECT_EQ(res.body, expected);
  res = client->Post(opened.base_path + "/query?format=json", json{{"sql", "SELECT 1"}}.dump(),
                     {{"Authorization", "Bearer " + opened.credential}, {"Accept", "text/csv"}});
  EXPECT_EQ(res.header("Content-Type"), "application/json");

  res = client->Post(opened.base_path + "/query?format=xml", json{{"sql", "SELECT 1"}}.dump(),
                     Bearer(opened.credential));
  EXPECT_EQ(res.status, 400u);
  EXPECT_EQ(ErrorCode(res), "invalid_request");
}

TEST_F(ResultFormatsTest, CsvTypedValuesMatchTheJsonFormat) {
  void* instance = CreateTunnel(BaseConfig());
  const Opened opened = Open(instance, "csv-types");
  auto client = Client(opened.port);
  const auto res = client->Post(
      opened.base_path + "/query?format=csv",
      json{{"sql", "SELECT id, score, photo, active, born, seen, wakes FROM people ORDER BY id"}}
          .dump(),
      Bearer(opened.credential));
  ASSERT_EQ(res.status, 200u) << res.body;
  EXPECT_EQ(res.body,
            "id,score,photo,active,born,seen,wakes\r\n"
            "1,2.5,AP8Q,true,1815-12-10,2023-11-14T22:13:20.123456Z,07:00:00\r\n"
            "9007199254740993,Infinity,\"\",false,1906-12-09,1969-12-31T23:59:59.999999Z,"
            "00:00:00\r\n");
}

TEST_F(ResultFormatsTest, CsvStreamsWithARowCountTrailer) {
  void* instance = CreatePlainTunnel();
  const Opened opened = Open(instance, "csv-stream");
  const std::string raw =
      RawQuery(opened.port, opened, "?format=csv", "SELECT id, label FROM big ORDER BY id");
  ASSERT_EQ(raw.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << raw.substr(0, 300);
  EXPECT_NE(raw.find("Transfer-Encoding: chunked"), std::string::npos);
  bool terminated = false;
  std::string trailers;
  const std::string body = DecodeChunked(raw, &terminated, &trailers);
  EXPECT_TRUE(terminated);
  EXPECT_NE(trailers.find("Airlock-Row-Count: 20000"), std::string::npos) << trailers;
  EXPECT_EQ(std::count(body.begin(), body.end(), '\n'), 20001);
  EXPECT_EQ(body.rfind("id,label\r\n1,row number 1\r\n", 0), 0u);
  EXPECT_TRUE(body.ends_with("20000,row number 20000\r\n"));
}

TEST_F(ResultFormatsTest, CsvFailureAfterStreamingIsTruncatedWithAnErrorLine) {
  void* instance = CreatePlainTunnel(json{{"max_rows", 15000}});
  const Opened opened = Open(instance, "csv-fail");
  const std::string raw =
      RawQuery(opened.port, opened, "", "SELECT id, label FROM big", "Accept: text/csv\r\n");
  ASSERT_EQ(raw.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << raw.substr(0, 300);
  bool terminated = true;
  std::string trailers;
  const std::string body = DecodeChunked(raw, &terminated, &trailers);
  EXPECT_FALSE(terminated) << "a failed CSV stream must not look complete";
  EXPECT_TRUE(body.ends_with(
      "#airlock-error,result_too_large,the result has more than 15000 rows (max_rows); narrow "
      "the query\r\n"))
      << body.substr(body.size() > 200 ? body.size() - 200 : 0);
  EXPECT_EQ(std::count(body.begin(), body.end(), '\n'), 15002);  // header, rows, error line

  // A real HTTP client notices the truncation.
  void* tls_instance = CreateTunnel([&] {
    json config = BaseConfig();
    config["max_rows"] = 15000;
    return config;
  }());
  const Opened tls_opened = Open(tls_instance, "csv-fail-tls");
  auto client = Client(tls_opened.port);
  const auto res =
      client->Post(tls_opened.base_path + "/query?format=csv",
                   R"({"sql":"SELECT id, label FROM big"})", Bearer(tls_opened.credential));
  EXPECT_EQ(res.status, 0u) << "the client took a truncated body for a complete one";
  EXPECT_FALSE(res.error.empty());
}

TEST_F(ResultFormatsTest, SqlCanBeSentAsThePlainBody) {
  void* instance = CreateTunnel(BaseConfig());
  const Opened opened = Open(instance, "plain-sql");
  auto client = Client(opened.port);
  for (const std::string type : {"application/sql", "text/plain; charset=utf-8"}) {
    const auto res =
        client->Post(opened.base_path + "/query", "SELECT 40 + 2 AS answer",
                     {{"Authorization", "Bearer " + opened.credential}, {"Content-Type", type}});
    ASSERT_EQ(res.status, 200u) << type << ": " << res.body;
    EXPECT_EQ(res.json()["rows"][0][0], 42);
  }
  const auto blank = client->Post(
      opened.base_path + "/query", "  \n",
      {{"Authorization", "Bearer " + opened.credential}, {"Content-Type", "application/sql"}});
  EXPECT_EQ(blank.status, 400u);
  EXPECT_EQ(ErrorCode(blank), "invalid_request");
}

}  // namespace
}  // namespace airlock::testing::https_tunnel
