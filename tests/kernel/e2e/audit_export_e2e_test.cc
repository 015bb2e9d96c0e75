// audit.export against a real airlockd and a real HTTPS receiver (TLS with
// the test CA): every audit record arrives, in order, at least once, so that
// a receiver deduplicating on "seq" holds each exactly once — through a
// receiver outage (500s, retried with backoff while requests go on) and
// through a kill -9 of the kernel with a batch in flight.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/kernel/e2e/audit_export_receiver.h"
#include "tests/kernel/e2e/kernel_process.h"
#include "tests/support/http_client.h"
#include "tests/support/syslog_tls_receiver.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_http_server.h"
#include "tests/support/test_pki.h"

namespace airlock::test {
namespace {

using nlohmann::json;

constexpr const char* kAlice = "alk_export_alice_token_1";
constexpr const char* kBob = "alk_export_bob_token_2";
constexpr const char* kReceiverSecret = "Bearer siem-ingest-9f3b1c";

class AuditExportE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    pki_ = GenerateTestPki(dir_.path());
    receiver_ = std::make_unique<TestHttpServer>(
        [this](const ReceivedRequest&) {
          std::lock_guard lock(mu_);
          const unsigned index = seen_++;
          if (failing_) return ScriptedReply{500, R"({"error":"down"})"};
          accepted_.insert(index);
          return ScriptedReply{200, "{}"};
        },
        pki_.server.cert_file, pki_.server.key_file);
    std::ofstream(dir_.path() + "/siem.secret") << kReceiverSecret;
    config_ = OrdersKernelConfig(dir_.path(), pki_, AliceAndBobIdentity(kAlice, kBob));
    config_["access"] = {{"admin_groups", {"owners"}}};
    config_["audit"] = {{"export",
                         {{{"name", "siem"},
                           {"url", receiver_->url("/ingest")},
                           {"ca_file", pki_.ca.cert_file},
                           {"authorization", "file:" + dir_.path() + "/siem.secret"},
                           {"batch_records", 7},
                           {"max_backoff_ms", 400}}}}};
    kernel_ = std::make_unique<KernelProcess>(dir_.path(), config_);
    ASSERT_TRUE(kernel_->Start()) << kernel_->log();
  }

  // alice asks, bob approves or denies: a few records each.
  void Activity(int asks) {
    HttpClient client("127.0.0.1", kernel_->port());
    for (int i = 0; i < asks; ++i) {
      auto created = client.Post("/v1/requests", R"({"datasets":["orders"],"purpose":"export"})",
                                 Auth(kAlice));
      ASSERT_EQ(created.status, 201u) << created.body;
      const std::string id = created.json().value("id", "");
      ASSERT_EQ(
          client.Post("/v1/requests/" + id + "/deny", R"({"comment":"no"})", Auth(kBob)).status,
          200u);
    }
  }

  // The newest record's seq, as bob (an admin here) finds it.
  uint64_t Head() {
    HttpClient client("127.0.0.1", kernel_->port());
    auto page = client.Get("/v1/audit?limit=1&since=1", Auth(kBob));
    const json records = page.json().value("records", json::array());
    return records.empty() ? 0 : records[0].value("seq", uint64_t{0});
  }

  // Waits until the receiver accepted every record up to `seq`.
  ReceivedExport WaitForEverythingUpTo(uint64_t seq) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    ReceivedExport got;
    while (std::chrono::steady_clock::now() < deadline) {
      {
        std::lock_guard lock(mu_);
        got = ParseExport(receiver_->requests(), accepted_);
      }
      if (got.HoldsEverythingUpTo(seq)) return got;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ADD_FAILURE() << "the receiver never held every record up to " << seq;
    return got;
  }

  static void ExpectEachRecordOnceInOrder(const ReceivedExport& got, uint64_t at_least) {
    test::ExpectEachRecordOnceInOrder(got, at_least, 7);
  }

  TempDir dir_{"airlock-export-"};
  TestPki pki_;
  json config_;
  std::mutex mu_;
  unsigned seen_ = 0;            // guarded by mu_
  bool failing_ = false;         // guarded by mu_
  std::set<unsigned> accepted_;  // guarded by mu_: indexes of requests answered 2xx
  // Destroyed first (the kernel, then the receiver's thread), before what
  // the receiver's handler touches.
  std::unique_ptr<TestHttpServer> receiver_;
  std::unique_ptr<KernelProcess> kernel_;
};

TEST_F(AuditExportE2E, EveryRecordArrivesOnceInOrderThroughAReceiverOutage) {
  Activity(3);
  const ReceivedExport first = WaitForEverythingUpTo(Head());
  ExpectEachRecordOnceInOrder(first, 10);
  for (const auto& authorization : first.authorizations) EXPECT_EQ(authorization, kReceiverSecret);

  // The receiver fails for a while; requests go on meanwhile.
  {
    std::lock_guard lock(mu_);
    failing_ = true;
  }
  const auto before_outage = receiver_->requests().size();
  Activity(4);
  ASSERT_TRUE(receiver_->WaitForRequests(before_outage + 3, std::chrono::seconds(10)))
      << "the exporter did not retry";
  {
    std::lock_guard lock(mu_);
    failing_ = false;
  }
  const uint64_t head = Head();
  const ReceivedExport after = WaitForEverythingUpTo(head);
  ExpectEachRecordOnceInOrder(after, head);

  HttpClient client("127.0.0.1", kernel_->port());
  const std::string metrics = client.Get("/metrics").body;
  EXPECT_NE(metrics.find("airlock_audit_export_failures_total{sink=\"siem\"}"), std::string::npos);
  EXPECT_NE(metrics.find("airlock_audit_export_lag_records{sink=\"siem\"}"), std::string::npos);
  // The receiver's secret is in no log line.
  EXPECT_EQ(kernel_->log().find("siem-ingest-9f3b1c"), std::string::npos);
}

TEST_F(AuditExportE2E, AKernelKilledWithABatchInFlightSendsItAgainAndLeavesNoGap) {
  Activity(2);
  WaitForEverythingUpTo(Head());
  // Replies are held: the next batch is in flight when the kernel dies.
  receiver_->SetHandler([this](const ReceivedRequest&) {
    std::lock_guard lock(mu_);
    accepted_.insert(seen_++);
    ScriptedReply reply{200, "{}"};
    reply.hold = true;
    return reply;
  });
  const auto before = receiver_->requests().size();
  Activity(2);
  ASSERT_TRUE(receiver_->WaitForRequests(before + 1, std::chrono::seconds(10)));
  kernel_->Kill();
  receiver_->Release();
  receiver_->SetHandler([this](const ReceivedRequest&) {
    std::lock_guard lock(mu_);
    accepted_.insert(seen_++);
    return ScriptedReply{200, "{}"};
  });
  ASSERT_TRUE(kernel_->Start()) << kernel_->log();
  Activity(1);
  const uint64_t head = Head();
  const ReceivedExport got = WaitForEverythingUpTo(head);
  ExpectEachRecordOnceInOrder(got, head);
  // The batch that was in flight came again (at least once, not at most).
  EXPECT_GT(got.sent(), head) << "the batch in flight at the kill was not sent again";
}

// audit.export over syslog (RFC 5424 messages over TLS, RFC 5425) to a real
// TLS receiver: every record arrives in order, each once after dedupe on the
// structured data's seq, through a receiver outage and a kill -9 of the
// kernel.
TEST(AuditSyslogExportE2E, EveryRecordArrivesInOrderThroughAnOutageAndAKill) {
  TempDir dir("airlock-syslog-");
  const TestPki pki = GenerateTestPki(dir.path());
  SyslogTlsReceiver receiver(pki.server.cert_file, pki.server.key_file);
  json config = OrdersKernelConfig(dir.path(), pki, AliceAndBobIdentity(kAlice, kBob));
  config["access"] = {{"admin_groups", {"owners"}}};
  config["audit"] = {{"export",
                      {{{"name", "siem"},
                        {"type", "syslog"},
                        {"url", "tls://127.0.0.1:" + std::to_string(receiver.port())},
                        {"ca_file", pki.ca.cert_file},
                        {"batch_records", 7},
                        {"max_backoff_ms", 300},
                        {"timeout_ms", 1000}}}}};
  KernelProcess kernel(dir.path(), config);
  ASSERT_TRUE(kernel.Start()) << kernel.log();
  const auto activity = [&](int asks) {
    HttpClient client("127.0.0.1", kernel.port());
    for (int i = 0; i < asks; ++i) {
      auto created = client.Post("/v1/requests", R"({"datasets":["orders"],"purpose":"syslog"})",
                                 Auth(kAlice));
      ASSERT_EQ(created.status, 201u) << created.body;
      ASSERT_EQ(client
                    .Post("/v1/requests/" + created.json().value("id", "") + "/deny",
                          R"({"comment":"no"})", Auth(kBob))
                    .status,
                200u);
    }
  };
  const auto head = [&] {
    HttpClient client("127.0.0.1", kernel.port());
    const json records =
        client.Get("/v1/audit?limit=1&since=1", Auth(kBob)).json().value("records", json::array());
    return records.empty() ? uint64_t{0} : records[0].value("seq", uint64_t{0});
  };
  // The records received, in arrival order, each from its JSON message.
  const auto received = [&] {
    std::vector<json> records;
    for (const std::string& message : receiver.messages()) {
      const size_t bom = message.find("\xEF\xBB\xBF");
      records.push_back(json::parse(message.substr(bom + 3)));
    }
    return records;
  };
  const auto wait_for = [&](uint64_t seq) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      std::set<uint64_t> seqs;
      for (const json& r : received()) seqs.insert(r.value("seq", uint64_t{0}));
      if (!seqs.empty() && *seqs.begin() == 1 && seqs.size() == *seqs.rbegin() &&
          *seqs.rbegin() >= seq) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  };

  activity(3);
  ASSERT_TRUE(wait_for(head())) << kernel.log();
  // An outage: the receiver is gone while requests go on.
  receiver.Stop();
  activity(3);
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  receiver.Start();
  ASSERT_TRUE(wait_for(head())) << kernel.log();
  {
    HttpClient client("127.0.0.1", kernel.port());
    const std::string metrics = client.Get("/metrics").body;
    const std::string failures = "airlock_audit_export_failures_total{sink=\"siem\"} ";
    const size_t at = metrics.find(failures);
    ASSERT_NE(at, std::string::npos);
    EXPECT_GE(std::stoll(metrics.substr(at + failures.size())), 1) << "the outage went unnoticed";
  }
  // The kernel dies; what it had not delivered is sent after its restart.
  activity(2);
  kernel.Kill();
  ASSERT_TRUE(kernel.Start()) << kernel.log();
  activity(1);
  const uint64_t last = head();
  ASSERT_TRUE(wait_for(last)) << kernel.log();

  // In order: no record arrives before all that precede it arrived once;
  // a copy of a record is the same record; the chain holds.
  std::map<uint64_t, json> unique;
  uint64_t highest = 0;
  for (const json& r : received()) {
    const uint64_t seq = r.value("seq", uint64_t{0});
    EXPECT_LE(seq, highest + 1) << "record " << seq << " arrived before " << highest + 1;
    highest = std::max(highest, seq);
    auto [it, fresh] = unique.emplace(seq, r);
    if (!fresh) EXPECT_EQ(it->second, r);
  }
  ASSERT_GE(unique.size(), last);
  EXPECT_EQ(unique.rbegin()->first, unique.size()) << "no gap";
  for (auto it = std::next(unique.begin()); it != unique.end(); ++it) {
    EXPECT_EQ(it->second.value("prev", ""), std::prev(it)->second.value("hash", ""));
  }
  // RFC 5424: facility log audit, severity informational, the event as
  // MSGID, the seq as structured data.
  const std::string first = receiver.messages().front();
  EXPECT_EQ(first.rfind("<110>1 ", 0), 0u) << first;
  EXPECT_NE(first.find(" airlock "), std::string::npos) << first;
  EXPECT_NE(first.find("[airlock@32473 seq=\"1\"]"), std::string::npos) << first;
}

TEST(AuditExportConfig, BadDestinationsAreRefusedByName) {
  TempDir dir("airlock-export-config-");
  const TestPki pki = GenerateTestPki(dir.path());
  auto check = [&](const json& exports) {
    json config = OrdersKernelConfig(dir.path(), pki, AliceAndBobIdentity(kAlice, kBob));
    config["audit"] = {{"export", exports}};
    std::ofstream(dir.path() + "/check.json") << config.dump();
    std::string out;
    const int code = RunAirlockd({"check-config", "--config", dir.path() + "/check.json"}, &out);
    return std::make_pair(code, out);
  };
  const json good = {{"name", "siem"}, {"url", "https://siem.example.com/ingest"}};
  EXPECT_EQ(check(json::array({good})).first, 0) << check(json::array({good})).second;
  auto expect_refused = [&](json destination, const std::string& says) {
    const auto [code, out] = check(json::array({destination}));
    EXPECT_NE(code, 0) << destination.dump();
    EXPECT_NE(out.find(says), std::string::npos) << out;
  };
  json plain = good;
  plain["url"] = "http://siem.example.com/ingest";
  expect_refused(plain, "audit.export[0].url must be https://");
  json inline_secret = good;
  inline_secret["authorization"] = "Bearer abc";
  expect_refused(inline_secret, "audit.export[0].authorization must be a secret reference");
  json bad_name = good;
  bad_name["name"] = "SIEM one";
  expect_refused(bad_name, "audit.export[0].name must be");
  json other = good;
  other["type"] = "kafka";
  expect_refused(other, "audit.export[0].type must be \"https\"");
  json syslog = good;
  syslog["type"] = "syslog";
  expect_refused(syslog, "audit.export[0].url must be tls://host[:port]");
  syslog["url"] = "tls://siem.example.com:6514";
  EXPECT_EQ(check(json::array({syslog})).first, 0) << check(json::array({syslog})).second;
  syslog["authorization"] = "env:X";
  expect_refused(syslog, "apply to https destinations only");
  const auto [code, out] = check(json::array({good, good}));
  EXPECT_NE(code, 0);
  EXPECT_NE(out.find("repeats"), std::string::npos) << out;
}

}  // namespace
}  // namespace airlock::test
