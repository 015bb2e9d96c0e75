// GET /v1/requests/{id} is rendered from the stored text; it must give the
// very bytes the parsed view (RequestToJson, then dump) gives. Records go
// through the real SQLite store so the text is what Save wrote.
#include "kernel/core/request_view.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "kernel/core/request_manager.h"
#include "kernel/state/sqlite_state_store.h"
#include "tests/support/temp_dir.h"

namespace airlock {
namespace {

using nlohmann::json;

std::string Expected(const RequestRecord& record, const json& progress,
                     const std::optional<json>& agent_status) {
  json view = RequestToJson(record, progress);
  if (agent_status) view["enclave"]["agent_status"] = *agent_status;
  return view.dump(-1, ' ', false, json::error_handler_t::replace);
}

RequestRecord Record(const std::string& id) {
  RequestRecord r;
  r.id = id;
  r.state = RequestState::kReady;
  r.version = 1;
  r.requester = {{"subject", "alice"}, {"kind", "human"}, {"groups", {"analysts", "eu"}}};
  r.request = {{"datasets", {"orders", "regions"}},
               {"purpose", "q3 \"churn\" \\ review\n\xe2\x80\x94 caf\xc3\xa9 \x01"},
               {"window_seconds", 3600},
               {"mode", "interactive"},
               {"queries", json::array()}};
  r.decision = {{"outcome", "needs_approval"},
                {"score", 0.1},
                {"big", 1e300},
                {"negative", -42},
                {"approval", {{"groups", {"owners"}}}}};
  r.approvals = json::array({{{"subject", "bob"}, {"at", 1718000000000000}, {"comment", ""}}});
  r.enclave = {{"isolator", "process"}, {"isolation", {{"netns", true}}}, {"zeta", nullptr}};
  r.tunnel = {{"transport", "https"}, {"url", "https://127.0.0.1:8443/t/abc"}};
  r.reason = "invalid \xff utf-8 is replaced";
  r.created_at_us = 1718000000123456;
  r.updated_at_us = 1718000000999999;
  r.deadline_us = 0;
  return r;
}

class RequestViewTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto opened = SqliteStateStore::Open(dir_.path() + "/state.db");
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(opened).value();
  }

  // Saves `record`, then renders it from LoadText and returns both the
  // rendering and the parsed record that Load gives.
  std::pair<Result<std::string>, RequestRecord> SaveAndRender(
      const RequestRecord& record, const json& progress, const std::optional<json>& agent_status) {
    EXPECT_TRUE(store_->Save(record).ok());
    auto text = store_->LoadText(record.id);
    auto loaded = store_->Load(record.id);
    EXPECT_TRUE(text.ok() && *text != nullptr);
    EXPECT_TRUE(loaded.ok() && loaded->has_value());
    return {RenderRequestView(**text, progress, agent_status), **loaded};
  }

  test::TempDir dir_;
  std::unique_ptr<SqliteStateStore> store_;
};

TEST_F(RequestViewTest, MatchesTheParsedViewByteForByte) {
  const std::vector<json> progresses = {
      json::object(), json{{"datasets", {{"orders", {{"rows", 10000}, {"done", true}}}}}}};
  const std::vector<std::optional<json>> agents = {std::nullopt,
                                                   json{{"online", false}, {"name", "edge"}}};
  int n = 0;
  for (const auto& progress : progresses) {
    for (const auto& agent : agents) {
      const RequestRecord record = Record("req_" + std::to_string(++n));
      auto [rendered, loaded] = SaveAndRender(record, progress, agent);
      ASSERT_TRUE(rendered.ok()) << rendered.status().ToString();
      EXPECT_EQ(*rendered, Expected(loaded, progress, agent));
      EXPECT_FALSE(json::parse(*rendered).is_discarded());
    }
  }
}

TEST_F(RequestViewTest, StoredProgressIsReplacedByLiveProgress) {
  RequestRecord record = Record("req_p");
  record.enclave["progress"] = {{"stale", true}};
  const json live = {{"fresh", 1}};
  auto [rendered, loaded] = SaveAndRender(record, live, std::nullopt);
  ASSERT_TRUE(rendered.ok());
  EXPECT_EQ(*rendered, Expected(loaded, live, std::nullopt));
  EXPECT_EQ(json::parse(*rendered)["enclave"]["progress"], live);
}

TEST_F(RequestViewTest, NullEnclaveGainsProgressLikeTheParsedView) {
  RequestRecord record = Record("req_n");
  record.enclave = nullptr;
  const json live = {{"rows", 3}};
  auto [rendered, loaded] = SaveAndRender(record, live, std::nullopt);
  ASSERT_TRUE(rendered.ok());
  EXPECT_EQ(*rendered, Expected(loaded, live, std::nullopt));
  auto [plain, plain_loaded] = SaveAndRender(Record("req_m"), json::object(), std::nullopt);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(*plain, Expected(plain_loaded, json::object(), std::nullopt));
}

TEST_F(RequestViewTest, EnclaveThatIsNotAnObjectCannotTakeProgress) {
  RequestRecord record = Record("req_a");
  record.enclave = json::array({1, 2});
  auto [rendered, loaded] = SaveAndRender(record, json{{"rows", 1}}, std::nullopt);
  EXPECT_FALSE(rendered.ok());
  // Without live data it is passed on as stored, like the parsed view.
  auto [plain, plain_loaded] = SaveAndRender(Record("req_b"), json::object(), std::nullopt);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(*plain, Expected(plain_loaded, json::object(), std::nullopt));
}

TEST(StoredEnclaveAgentTest, OnlyATopLevelStringNamesAnAgent) {
  StoredRequestText t;
  t.enclave = R"({"agent":"edge-1","isolator":"process"})";
  EXPECT_EQ(StoredEnclaveAgent(t), "edge-1");
  t.enclave = R"({"nested":{"agent":"edge-1"}})";
  EXPECT_EQ(StoredEnclaveAgent(t), std::nullopt);
  t.enclave = R"({"agent":5})";
  EXPECT_EQ(StoredEnclaveAgent(t), std::nullopt);
  t.enclave = R"({"isolator":"process"})";
  EXPECT_EQ(StoredEnclaveAgent(t), std::nullopt);
}

}  // namespace
}  // namespace airlock
