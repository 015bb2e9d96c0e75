// GET /v1/events against a real airlockd: watchers on real sockets read the
// Server-Sent Events stream (chunked HTTP/1.1) while requests are made and
// decided through the API. Each watcher sees the requests it may see and
// nothing else; a watcher that reconnects with Last-Event-ID gets what it
// missed, and one whose id the kernel never gave is told to reset.

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/kernel/e2e/kernel_process.h"
#include "tests/support/http_client.h"
#include "tests/support/sse_watcher.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

namespace airlock::test {
namespace {

using nlohmann::json;

constexpr const char* kAlice = "alk_events_alice_token_1";
constexpr const char* kBob = "alk_events_bob_token_2";
constexpr const char* kEve = "alk_events_eve_token_3";

bool IsRequestEvent(const SseEvent& e, const std::string& id, const std::string& state) {
  if (e.name != "request") return false;
  const json data = json::parse(e.data);
  return data.value("request_id", "") == id && data.value("state", "") == state &&
         data["request"].value("id", "") == id && data["request"].value("state", "") != "";
}

class EventsE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = GenerateTestPki(dir_.path());
    const json identity = {
        {{"name", "tokens"},
         {"plugin", PluginPath("airlock_identity_static_tokens")},
         {"config",
          {{"tokens",
            {TokenEntry(kAlice, "alice", "analysts"), TokenEntry(kBob, "bob", "owners"),
             TokenEntry(kEve, "eve", "analysts")}}}}}};
    const json config = OrdersKernelConfig(dir_.path(), pki_, identity);
    kernel_ = std::make_unique<KernelProcess>(dir_.path(), config);
    ASSERT_TRUE(kernel_->Start()) << kernel_->log();
  }

  std::string Ask(const char* token) {
    HttpClient client("127.0.0.1", kernel_->port());
    auto created =
        client.Post("/v1/requests", R"({"datasets":["orders"],"purpose":"events"})", Auth(token));
    EXPECT_EQ(created.status, 201u) << created.body;
    return created.json().value("id", "");
  }

  TempDir dir_{"airlock-events-e2e-"};
  TestPki pki_;
  std::unique_ptr<KernelProcess> kernel_;
};

TEST_F(EventsE2E, EachWatcherSeesTheRequestsItMaySeeAsTheyChange) {
  Watcher alice(kernel_->port(), kAlice), bob(kernel_->port(), kBob), eve(kernel_->port(), kEve);
  for (Watcher* w : {&alice, &bob, &eve}) {
    ASSERT_EQ(w->Status(), 200u) << w->head();
    EXPECT_NE(w->head().find("text/event-stream"), std::string::npos) << w->head();
    ASSERT_TRUE(w->WaitFor([](const SseEvent& e) { return e.name == "ready"; }))
        << w->head() << "\n---\n"
        << w->unparsed() << kernel_->log();
  }

  // Operators see how many streams are open.
  HttpClient metrics("127.0.0.1", kernel_->port());
  EXPECT_NE(metrics.Get("/metrics").body.find("airlock_event_watchers 3"), std::string::npos);

  // Alice asks; bob, who may approve, sees it wait for him and approves it.
  const std::string mine = Ask(kAlice);
  ASSERT_TRUE(
      bob.WaitFor([&](const SseEvent& e) { return IsRequestEvent(e, mine, "pending_approval"); }));
  HttpClient client("127.0.0.1", kernel_->port());
  ASSERT_EQ(client.Post("/v1/requests/" + mine + "/approve", "{}", Auth(kBob)).status, 200u);
  // Alice follows it to ready without asking again.
  for (const char* state : {"pending_approval", "approved", "ready"}) {
    EXPECT_TRUE(alice.WaitFor([&](const SseEvent& e) { return IsRequestEvent(e, mine, state); }))
        << state;
  }
  // Eve's own request: she sees it; alice does not, and eve never sees alice's.
  const std::string hers = Ask(kEve);
  ASSERT_TRUE(
      eve.WaitFor([&](const SseEvent& e) { return IsRequestEvent(e, hers, "pending_approval"); }));
  ASSERT_TRUE(
      bob.WaitFor([&](const SseEvent& e) { return IsRequestEvent(e, hers, "pending_approval"); }));
  alice.Drain(std::chrono::milliseconds(300));
  for (const std::string& id : eve.RequestIds()) EXPECT_EQ(id, hers);
  for (const std::string& id : alice.RequestIds()) EXPECT_EQ(id, mine);

  // Ids grow with each event a watcher gets.
  uint64_t previous = 0;
  for (const SseEvent& e : alice.events()) {
    const uint64_t id = std::stoull(e.id);
    EXPECT_GE(id, previous);
    previous = id;
  }

  // Reconnecting after the first of her events, alice gets the rest of
  // them again, first; an id this kernel never gave resets.
  std::string first_id;
  for (const SseEvent& e : alice.events()) {
    if (e.name == "request") {
      first_id = e.id;
      break;
    }
  }
  ASSERT_FALSE(first_id.empty());
  Watcher again(kernel_->port(), kAlice, first_id);
  ASSERT_EQ(again.Status(), 200u);
  EXPECT_TRUE(again.WaitFor([&](const SseEvent& e) { return IsRequestEvent(e, mine, "ready"); }));
  for (const SseEvent& e : again.events()) {
    if (e.name == "request") EXPECT_GT(std::stoull(e.id), std::stoull(first_id));
  }
  Watcher stranger(kernel_->port(), kAlice, "999999");
  ASSERT_EQ(stranger.Status(), 200u);
  EXPECT_TRUE(stranger.WaitFor([](const SseEvent& e) { return e.name == "reset"; }));

  // Bad asks get clear errors.
  Watcher nobody(kernel_->port(), nullptr);
  EXPECT_EQ(nobody.Status(), 401u);
  Watcher garbled(kernel_->port(), kAlice, "twelve");
  EXPECT_EQ(garbled.Status(), 400u);
}

}  // namespace
}  // namespace airlock::test
