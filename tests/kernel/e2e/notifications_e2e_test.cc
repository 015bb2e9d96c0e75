// Notifications against a real airlockd: the webhook notifier plugin posts
// to real HTTPS receivers on loopback (tests/support/test_http_server.h),
// which check each delivery's signature the way a receiver would. Covers
// who is told what over a request's whole life, delivery after kill -9
// (each notification accepted once by a receiver that dedupes on the
// idempotency key), and a failing receiver retried with backoff while
// another notifier's deliveries go on.
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/kernel/e2e/kernel_process.h"
#include "tests/support/http_client.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_http_server.h"
#include "tests/support/test_pki.h"
#include "tests/support/webhook_signature.h"

namespace airlock::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kAlice = "alk_notify_alice_token_1";
constexpr const char* kBob = "alk_notify_bob_token_2";
constexpr const char* kSecretVariable = "AIRLOCK_TEST_WEBHOOK_SECRET";
constexpr const char* kSecret = "whsec-notify-e2e-5b1f0c";

int64_t NowUnix() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A receiver as a real integration would run one: it checks the signature
// and remembers which idempotency keys it accepted, so a notification sent
// again is acknowledged but not acted on twice.
class Receiver {
 public:
  explicit Receiver(const TestPki& pki)
      : server_([this](const ReceivedRequest& r) { return Answer(r); }, pki.server.cert_file,
                pki.server.key_file) {}

  std::string url() const { return server_.url("/hooks/airlock"); }
  TestHttpServer& server() { return server_; }

  // Answers every later delivery with `status`; `hold` keeps the answer back
  // until Release().
  void Reply(unsigned status, bool hold = false) {
    std::lock_guard lock(mu_);
    status_ = status;
    hold_ = hold;
  }
  void Release() { server_.Release(); }

  // Notifications accepted (answered 2xx), each key once, in order.
  std::vector<json> accepted() const {
    std::lock_guard lock(mu_);
    return accepted_;
  }
  std::map<std::string, int> deliveries() const {
    std::lock_guard lock(mu_);
    return deliveries_;
  }
  // When each well-signed delivery arrived.
  std::vector<std::chrono::steady_clock::time_point> arrivals() const {
    std::lock_guard lock(mu_);
    return arrivals_;
  }
  std::vector<std::string> bad_signatures() const {
    std::lock_guard lock(mu_);
    return bad_;
  }

  // Waits until a notification matching `match` was accepted.
  bool WaitAccepted(const std::function<bool(const json&)>& match,
                    std::chrono::milliseconds timeout = 20s) const {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      for (const json& n : accepted()) {
        if (match(n)) return true;
      }
      std::this_thread::sleep_for(20ms);
    }
    return false;
  }

 private:
  ScriptedReply Answer(const ReceivedRequest& r) {
    std::string why;
    const bool signed_ok = VerifyAirlockSignature(kSecret, r.Header("Airlock-Signature"), r.body,
                                                  NowUnix(), 300, &why);
    const json body = json::parse(r.body, nullptr, false);
    const std::string key = r.Header("Airlock-Idempotency-Key");
    std::lock_guard lock(mu_);
    if (!signed_ok || !body.is_object() || key.empty() || body.value("id", "") != key ||
        r.Header("Airlock-Event") != body.value("event", "")) {
      bad_.push_back(why.empty() ? r.body : why);
      return {.status = 400, .body = "{}"};
    }
    ++deliveries_[key];
    arrivals_.push_back(std::chrono::steady_clock::now());
    ScriptedReply reply{.status = status_, .body = "{}", .hold = hold_};
    if (status_ / 100 == 2 && accepted_keys_.insert(key).second) accepted_.push_back(body);
    return reply;
  }

  mutable std::mutex mu_;
  unsigned status_ = 200;
  bool hold_ = false;
  std::vector<json> accepted_;
  std::set<std::string> accepted_keys_;
  std::map<std::string, int> deliveries_;
  std::vector<std::chrono::steady_clock::time_point> arrivals_;
  std::vector<std::string> bad_;
  TestHttpServer server_;  // last: stopped before what its handler uses
};

json WebhookRef(const TestPki& pki, const std::string& url, json extra = json::object()) {
  json ref = {{"plugin", PluginPath("airlock_notifier_webhook")},
              {"config",
               {{"url", url},
                {"secret", std::string("env:") + kSecretVariable},
                {"ca_file", pki.ca.cert_file},
                {"timeout_ms", 5000}}}};
  ref.update(extra);
  return ref;
}

class NotificationsE2E : public ::testing::Test {
 protected:
  void SetUp() override { pki_ = GenerateTestPki(dir_.path()); }

  void StartKernel(const json& notifications) {
    json config = OrdersKernelConfig(dir_.path(), pki_, AliceAndBobIdentity(kAlice, kBob));
    config["notifications"] = notifications;
    kernel_ = std::make_unique<KernelProcess>(dir_.path(), config);
    kernel_->set_extra_environment({std::string(kSecretVariable) + "=" + kSecret});
    ASSERT_TRUE(kernel_->Start()) << kernel_->log();
  }

  std::string Ask(int window_seconds = 600) {
    HttpClient client("127.0.0.1", kernel_->port());
    auto created = client.Post("/v1/requests",
                               json{{"datasets", {"orders"}},
                                    {"purpose", "quarterly report"},
                                    {"window_seconds", window_seconds}}
                                   .dump(),
                               Auth(kAlice));
    EXPECT_EQ(created.status, 201u) << created.body;
    return created.json().value("id", "");
  }

  TempDir dir_{"airlock-notify-e2e-"};
  TestPki pki_;
  std::unique_ptr<KernelProcess> kernel_;
};

bool Is(const json& n, const std::string& id, const std::string& event) {
  return n["request"].value("id", "") == id && n.value("event", "") == event;
}

// The whole life of a request, as the approvers and the requester hear it.
TEST_F(NotificationsE2E, ApproversAndTheRequesterAreToldEachStepThroughASignedWebhook) {
  Receiver receiver(pki_);
  StartKernel({{"console_url", "https://airlock.example.com/"},
               {"expiring_notice_seconds", 3},
               {"notifiers", {{"ops", WebhookRef(pki_, receiver.url())}}}});

  const std::string id = Ask(/*window_seconds=*/6);
  ASSERT_TRUE(receiver.WaitAccepted([&](const json& n) {
    return Is(n, id, "request.pending_approval");
  })) << kernel_->log();
  const json pending = receiver.accepted().front();
  EXPECT_EQ(pending["audience"], "approvers");
  EXPECT_EQ(pending["recipients"]["groups"], json::array({"owners"}));
  EXPECT_EQ(pending["request"]["requester"]["subject"], "alice");
  EXPECT_EQ(pending["request"]["datasets"], json::array({"orders"}));
  EXPECT_EQ(pending["request"]["purpose"], "quarterly report");
  EXPECT_EQ(pending["attempt"], 1);
  EXPECT_EQ(pending["links"]["console"], "https://airlock.example.com/console/#/requests/" + id);
  EXPECT_EQ(pending["id"], id + "/v1/ops");

  HttpClient client("127.0.0.1", kernel_->port());
  ASSERT_EQ(
      client.Post("/v1/requests/" + id + "/approve", R"({"comment":"ok"})", Auth(kBob)).status,
      200u);
  for (const char* event :
       {"request.approved", "request.ready", "request.expiring", "request.closed"}) {
    EXPECT_TRUE(receiver.WaitAccepted([&](const json& n) { return Is(n, id, event); }))
        << event << "\n"
        << kernel_->log();
  }
  std::vector<std::string> order;
  for (const json& n : receiver.accepted()) {
    order.push_back(n["event"]);
    if (n["event"] != "request.pending_approval") {
      EXPECT_EQ(n["audience"], "requester") << n.dump();
      EXPECT_EQ(n["recipients"]["subjects"], json::array({"alice"})) << n.dump();
    }
  }
  EXPECT_EQ(order,
            (std::vector<std::string>{"request.pending_approval", "request.approved",
                                      "request.ready", "request.expiring", "request.closed"}));
  EXPECT_TRUE(receiver.bad_signatures().empty()) << receiver.bad_signatures().front();
  for (const auto& [key, count] : receiver.deliveries()) EXPECT_EQ(count, 1) << key;

  // A revoked request is not told "ends soon": the notice queued when it
  // became ready is dropped once it is no longer true.
  const std::string short_lived = Ask(/*window_seconds=*/8);
  ASSERT_EQ(
      client.Post("/v1/requests/" + short_lived + "/approve", R"({"comment":"ok"})", Auth(kBob))
          .status,
      200u);
  ASSERT_TRUE(
      receiver.WaitAccepted([&](const json& n) { return Is(n, short_lived, "request.ready"); }));
  ASSERT_EQ(
      client.Post("/v1/requests/" + short_lived + "/revoke", R"({"comment":"done"})", Auth(kBob))
          .status,
      200u);
  // Bob ended alice's access: she is told it was revoked.
  ASSERT_TRUE(
      receiver.WaitAccepted([&](const json& n) { return Is(n, short_lived, "request.revoked"); }));
  std::this_thread::sleep_for(6s);  // past when the notice was due
  for (const json& n : receiver.accepted()) {
    EXPECT_FALSE(Is(n, short_lived, "request.expiring")) << n.dump();
  }
}

// Notifications the kernel could not deliver survive kill -9, including one
// whose delivery was in flight: after the restart each reaches the
// receiver's dedupe exactly once, the in-flight one under its same key.
TEST_F(NotificationsE2E, UndeliveredNotificationsSurviveKill9AndAreAcceptedOnceEach) {
  Receiver receiver(pki_);
  receiver.Reply(503);
  StartKernel({{"initial_backoff_ms", 100},
               {"max_backoff_ms", 400},
               {"notifiers", {{"ops", WebhookRef(pki_, receiver.url())}}}});
  const std::string first = Ask();
  const std::string second = Ask();
  ASSERT_TRUE(receiver.server().WaitForRequests(4, 20s)) << kernel_->log();  // retried

  // The next delivery is accepted but its answer held until the kernel is
  // dead: the kernel never learns it went through.
  receiver.Reply(200, /*hold=*/true);
  const std::string third = Ask();
  ASSERT_TRUE(receiver.WaitAccepted([](const json&) { return true; })) << kernel_->log();
  kernel_->Kill();
  receiver.Reply(200);
  receiver.Release();
  ASSERT_EQ(receiver.accepted().size(), 1u);
  const std::string cut_off = receiver.accepted().front().value("id", "");

  ASSERT_TRUE(kernel_->Start()) << kernel_->log();
  for (const std::string& id : {first, second, third}) {
    EXPECT_TRUE(receiver.WaitAccepted([&](const json& n) {
      return Is(n, id, "request.pending_approval");
    })) << id
        << "\n"
        << kernel_->log();
  }
  std::this_thread::sleep_for(1500ms);  // nothing more is on its way
  EXPECT_EQ(receiver.accepted().size(), 3u);
  std::set<std::string> keys;
  for (const json& n : receiver.accepted()) keys.insert(n.value("id", ""));
  EXPECT_EQ(keys.size(), 3u);
  // The one cut off came again under its key, and the receiver kept it once.
  EXPECT_GE(receiver.deliveries()[cut_off], 2);
  EXPECT_EQ(keys.count(cut_off), 1u);
  for (const std::string& id : {first, second}) {
    EXPECT_GE(receiver.deliveries()[id + "/v1/ops"], 2) << id;  // 503 at least once
  }
  EXPECT_TRUE(receiver.bad_signatures().empty());
}

// A receiver that answers 500 is tried again with growing gaps until the
// attempts run out (audited), and holds up nothing: the other notifier's
// receiver gets the same news at once.
TEST_F(NotificationsE2E, AFailingReceiverIsRetriedWithBackoffAndHoldsNothingElseUp) {
  Receiver broken(pki_), healthy(pki_);
  broken.Reply(500);
  StartKernel({{"initial_backoff_ms", 200},
               {"max_backoff_ms", 5000},
               {"max_attempts", 4},
               {"notifiers",
                {{"broken", WebhookRef(pki_, broken.url())},
                 {"healthy", WebhookRef(pki_, healthy.url())}}}});
  const std::string id = Ask();
  ASSERT_TRUE(healthy.WaitAccepted([&](const json& n) {
    return Is(n, id, "request.pending_approval");
  })) << kernel_->log();
  EXPECT_LE(broken.server().requests().size(), 2u);  // still early in its retries
  // Its message waits in the outbox meanwhile: the backlog gauge says so.
  const auto pending = [&] {
    HttpClient scraper("127.0.0.1", kernel_->port());
    const std::string text = scraper.Get("/metrics").body;
    const std::string name = "\nairlock_notifications_pending ";
    const size_t at = text.find(name);
    return at == std::string::npos ? -1 : std::stoll(text.substr(at + name.size()));
  };
  EXPECT_GE(pending(), 1);

  ASSERT_TRUE(broken.server().WaitForRequests(4, 30s)) << kernel_->log();
  // The abandonment is audited once the last attempt fails.
  HttpClient client("127.0.0.1", kernel_->port());
  json abandoned;
  for (int i = 0; i < 100 && abandoned.is_null(); ++i) {
    auto trail = client.Get("/v1/audit?request=" + id, Auth(kBob));
    ASSERT_EQ(trail.status, 200u) << trail.body;
    const json records = trail.json()["records"];
    for (const json& record : records) {
      if (record.value("event", "") == "notification.abandoned") abandoned = record;
    }
    if (abandoned.is_null()) std::this_thread::sleep_for(100ms);
  }
  ASSERT_FALSE(abandoned.is_null());
  EXPECT_EQ(abandoned["notifier"], "broken");
  EXPECT_EQ(abandoned["attempts"], 4);
  EXPECT_EQ(abandoned["notification_id"], id + "/v1/broken");
  std::this_thread::sleep_for(1s);
  const auto attempts = broken.server().requests();
  ASSERT_EQ(attempts.size(), 4u);  // and no more
  for (size_t i = 0; i < attempts.size(); ++i) {
    const json body = json::parse(attempts[i].body);
    EXPECT_EQ(body["id"], id + "/v1/broken");
    EXPECT_EQ(body["attempt"], static_cast<int>(i + 1));
  }
  // Waits of 100-200, 200-400 and 400-800 ms: each a step of the backoff.
  const auto at = broken.arrivals();
  ASSERT_EQ(at.size(), 4u);
  const auto gap = [&](size_t i) { return at[i + 1] - at[i]; };
  EXPECT_GE(gap(0), 100ms);
  EXPECT_GE(gap(2), 400ms);
  EXPECT_GT(gap(2), gap(0));
  EXPECT_EQ(pending(), 0);  // abandoned is not pending
  const std::string metrics = client.Get("/metrics").body;
  EXPECT_NE(metrics.find(R"(airlock_notifications_total{notifier="broken",outcome="abandoned"} 1)"),
            std::string::npos)
      << metrics;
  EXPECT_NE(
      metrics.find(R"(airlock_notifications_total{notifier="healthy",outcome="delivered"} 1)"),
      std::string::npos)
      << metrics;
  // The delivered one's lag was observed; the abandoned one has none.
  EXPECT_NE(metrics.find(R"(airlock_notification_delivery_seconds_count{notifier="healthy"} 1)"),
            std::string::npos)
      << metrics;
  EXPECT_EQ(metrics.find(R"(airlock_notification_delivery_seconds_count{notifier="broken"})"),
            std::string::npos)
      << metrics;
}

}  // namespace
}  // namespace airlock::test
