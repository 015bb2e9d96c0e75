// Per-credential limits, the access window, revocation of a streaming
// response, schema and session lookups, and what the tunnel logs.
#include "scripted_channel.h"
#include "tunnel_fixture.h"

namespace airlock::testing::https_tunnel {
namespace {

using airlock::testing::ScriptedChannel;

TEST_F(HttpsTunnelTest, ConcurrencyIsLimitedPerCredential) {
  ScriptedChannel& channel =
      Scripted({.batches = 1, .rows_per_batch = 1, .ending = ScriptedChannel::Ending::kHold});
  json config = BaseConfig();
  config["max_concurrent_queries"] = 1;
  void* instance = CreateTunnel(config);
  Opened opened;
  ASSERT_EQ(TryOpen(instance, Spec("one-at-a-time"), &opened, nullptr, channel.channel()),
            AIRLOCK_OK);
  const Opened neighbour = Open(instance, "neighbour");

  ClientResponse first;
  std::thread requester([&] {
    auto client = Client(opened.port);
    first = Query(*client, opened, "SELECT slowly");
  });
  ASSERT_TRUE(channel.WaitUntilHolding(std::chrono::seconds(5)));

  auto client = Client(opened.port);
  auto res = Query(*client, opened, "SELECT 1");
  EXPECT_EQ(res.status, 429u) << res.body;
  EXPECT_EQ(ErrorCode(res), "too_many_concurrent_queries");
  EXPECT_EQ(res.header("Retry-After"), "1");
  EXPECT_EQ(client->Get(opened.base_path + "/tables", Bearer(opened.credential)).status, 429u);
  // Requests that do not use the channel, and other credentials, are not held up.
  EXPECT_EQ(client->Get(opened.base_path + "/session", Bearer(opened.credential)).status, 200u);
  EXPECT_EQ(Query(*client, neighbour, "SELECT 1").status, 200u);

  channel.Release();
  requester.join();
  EXPECT_EQ(first.status, 200u) << first.error;
  EXPECT_EQ(first.json()["row_count"], 1);
  res = client->Get(opened.base_path + "/tables", Bearer(opened.credential));
  EXPECT_EQ(res.status, 200u) << "the slot was not given back: " << res.body;
  Close(instance, opened);
}

TEST_F(HttpsTunnelTest, WindowEndStopsARunningQuery) {
  ScriptedChannel& channel =
      Scripted({.batches = 1, .rows_per_batch = 2, .ending = ScriptedChannel::Ending::kHold});
  void* instance = CreateTunnel(BaseConfig());
  Opened opened;
  ASSERT_EQ(TryOpen(instance, Spec("window", 60), &opened, nullptr, channel.channel()), AIRLOCK_OK);
  ClientResponse res;
  std::thread requester([&] {
    auto client = Client(opened.port);
    res = Query(*client, opened, "SELECT slowly");
  });
  ASSERT_TRUE(channel.WaitUntilHolding(std::chrono::seconds(5)));
  // The window ends; the kernel has not closed the endpoint (yet).
  host_.pinned_now_micros = (opened.grant.at("expires_at").get<int64_t>() + 1) * 1000000;
  requester.join();
  EXPECT_TRUE(channel.saw_cancel());
  ASSERT_EQ(res.status, 200u) << res.error;  // the first batch had already gone out
  const json body = res.json();
  ASSERT_FALSE(body.is_discarded()) << res.body;
  EXPECT_EQ(body.at("rows").size(), 2u);
  EXPECT_EQ(body.at("error"), "window_ended");

  auto client = Client(opened.port);
  const auto later = Query(*client, opened, "SELECT 1");
  EXPECT_EQ(later.status, 410u);
  EXPECT_EQ(ErrorCode(later), "window_ended");
  Close(instance, opened);
}

TEST_F(HttpsTunnelTest, CloseCutsAStreamingResponseAtOnce) {
  ScriptedChannel& channel =
      Scripted({.batches = 3, .rows_per_batch = 50, .ending = ScriptedChannel::Ending::kHold});
  void* instance = CreateTunnel(BaseConfig());
  Opened opened;
  ASSERT_EQ(TryOpen(instance, Spec("streaming-revoke"), &opened, nullptr, channel.channel()),
            AIRLOCK_OK);
  RawTlsConnection connection(opened.port, pki_->ca.cert_file);
  connection.Send(boost::beast::http::verb::post, opened.base_path + "/query", opened.credential,
                  R"({"sql":"SELECT slowly"})");
  ASSERT_NE(connection.ReadUntil("\"row 150\"]", std::chrono::seconds(5)).find("\"row 150\"]"),
            std::string::npos)
      << connection.received();
  ASSERT_TRUE(channel.WaitUntilHolding(std::chrono::seconds(5)));

  const auto start = Clock::now();
  Close(instance, opened);
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
  EXPECT_TRUE(channel.saw_cancel());
  EXPECT_EQ(channel.queries_running(), 0);  // close() returned after the channel was left

  EXPECT_TRUE(connection.ReadUntilClosed(std::chrono::seconds(2)));
  const std::string& raw = connection.received();
  EXPECT_EQ(raw.find("row_count"), std::string::npos) << "the result must not look complete";
  EXPECT_EQ(raw.find("\r\n0\r\n"), std::string::npos) << "no terminating chunk after revoke";
}

TEST_F(HttpsTunnelTest, TableDetailAndSession) {
  void* instance = CreateTunnel(BaseConfig());
  const Opened opened = Open(instance, "schema");
  auto client = Client(opened.port);
  auto res = client->Get(opened.base_path + "/tables/people", Bearer(opened.credential));
  ASSERT_EQ(res.status, 200u) << res.body;
  json table = res.json();
  EXPECT_EQ(table.at("name"), "people");
  EXPECT_EQ(table.at("rows"), 2);
  ASSERT_EQ(table.at("columns").size(), 10u);
  EXPECT_EQ(table["columns"][2], (json{{"name", "score"}, {"type", "float64"}}));

  res = client->Get(opened.base_path + "/tables/%70eop%6Ce", Bearer(opened.credential));
  EXPECT_EQ(res.status, 200u);  // percent-encoded names are decoded
  res = client->Get(opened.base_path + "/tables/nowhere", Bearer(opened.credential));
  EXPECT_EQ(res.status, 404u);
  EXPECT_EQ(ErrorCode(res), "not_found");
  EXPECT_NE(res.json()["message"].get<std::string>().find("nowhere"), std::string::npos);
  res = client->Get(opened.base_path + "/tables/bad%zz", Bearer(opened.credential));
  EXPECT_EQ(res.status, 404u);
  EXPECT_EQ(client->Get(opened.base_path + "/tables/people").status, 401u);

  res = client->Get(opened.base_path + "/session", Bearer(opened.credential));
  ASSERT_EQ(res.status, 200u) << res.body;
  const json session = res.json();
  EXPECT_EQ(session.at("request_id"), "schema");
  EXPECT_EQ(session.at("principal"), "alice@example.com");
  EXPECT_EQ(session.at("expires_at"), opened.grant.at("expires_at"));
  EXPECT_EQ(session.at("limits").at("max_rows"), 100000);
  EXPECT_EQ(session.at("limits").at("max_concurrent_queries"), 4);
  EXPECT_EQ(session.dump().find(opened.credential), std::string::npos);
  EXPECT_EQ(client->Get(opened.base_path + "/session").status, 401u);
}

TEST_F(HttpsTunnelTest, LogsNeverCarryCredentialsOrSql) {
  void* instance = CreateTunnel(BaseConfig());
  Opened opened = Open(instance, "quiet");
  auto client = Client(opened.port);
  const std::string marker = "secret_literal_4711";
  EXPECT_EQ(Query(*client, opened, "SELECT '" + marker + "'").status, 200u);
  EXPECT_EQ(client
                ->Post(opened.base_path + "/query?format=csv",
                       json{{"sql", "SELECT '" + marker + "'"}}.dump(), Bearer(opened.credential))
                .status,
            200u);
  EXPECT_EQ(Query(*client, opened, "SELEKT '" + marker + "'").status, 400u);
  EXPECT_EQ(client->Get(opened.base_path + "/session", Bearer(opened.credential)).status, 200u);
  EXPECT_EQ(client->Get(opened.base_path + "/").status, 200u);
  std::string wrong = opened.credential;
  wrong[5] = wrong[5] == 'x' ? 'y' : 'x';
  EXPECT_EQ(client->Get(opened.base_path + "/tables", Bearer(wrong)).status, 401u);
  Close(instance, opened);
  table_->destroy(instance);
  instances_.clear();

  const std::string logs = host_.AllLogs();
  EXPECT_NE(logs.find("quiet"), std::string::npos) << logs;  // the capture works
  EXPECT_EQ(logs.find(opened.credential), std::string::npos) << logs;
  EXPECT_EQ(logs.find(wrong), std::string::npos) << logs;
  EXPECT_EQ(logs.find(marker), std::string::npos) << logs;
  EXPECT_EQ(logs.find("SELEKT"), std::string::npos) << logs;
}

}  // namespace
}  // namespace airlock::testing::https_tunnel
