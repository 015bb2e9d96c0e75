// GET /v1/events against a real airlockd: watchers on real sockets read the
// Server-Sent Events stream (chunked HTTP/1.1) while requests are made and
// decided through the API. Each watcher sees the requests it may see and
// nothing else; a watcher that reconnects with Last-Event-ID gets what it
// missed, and one whose id the kernel never gave is told to reset.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

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
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

namespace airlock::test {
namespace {

using nlohmann::json;

constexpr const char* kAlice = "alk_events_alice_token_1";
constexpr const char* kBob = "alk_events_bob_token_2";
constexpr const char* kEve = "alk_events_eve_token_3";

Headers Auth(const char* token) {
  return {{"Authorization", std::string("Bearer ") + token}, {"Content-Type", "application/json"}};
}

struct SseEvent {
  std::string id;
  std::string name;
  std::string data;
};

// One watcher: a raw HTTP/1.1 connection reading the stream, decoding the
// chunked body and the SSE frames in it.
class Watcher {
 public:
  Watcher(uint16_t port, const char* token, const std::string& last_event_id = "") {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return;
    std::string ask = "GET /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n";
    if (token != nullptr) ask += std::string("Authorization: Bearer ") + token + "\r\n";
    if (!last_event_id.empty()) ask += "Last-Event-ID: " + last_event_id + "\r\n";
    ask += "\r\n";
    (void)::send(fd_, ask.data(), ask.size(), MSG_NOSIGNAL);
  }
  ~Watcher() {
    if (fd_ >= 0) ::close(fd_);
  }

  // The response's status, once its head arrived (0 if it did not).
  unsigned Status() {
    ReadUntil([&] { return head_done_; }, std::chrono::seconds(10));
    return status_;
  }
  const std::string& head() const { return head_; }

  // Waits until an event matching `match` arrived; false on timeout.
  bool WaitFor(const std::function<bool(const SseEvent&)>& match,
               std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
    return ReadUntil(
        [&] {
          for (const SseEvent& e : events_) {
            if (match(e)) return true;
          }
          return false;
        },
        timeout);
  }

  // Reads whatever arrives within `for_how_long`.
  void Drain(std::chrono::milliseconds for_how_long) {
    ReadUntil([] { return false; }, for_how_long);
  }

  const std::vector<SseEvent>& events() const { return events_; }
  // What arrived and is not yet a whole frame (for failure messages).
  std::string unparsed() const { return raw_ + "|" + body_; }

  // The request ids of the "request" events seen.
  std::vector<std::string> RequestIds() const {
    std::vector<std::string> ids;
    for (const SseEvent& e : events_) {
      if (e.name == "request") ids.push_back(json::parse(e.data).value("request_id", ""));
    }
    return ids;
  }

 private:
  bool ReadUntil(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0 || fd_ < 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return done();
      char buffer[4096];
      const ssize_t got = ::recv(fd_, buffer, sizeof(buffer), 0);
      if (got <= 0) return done();
      raw_.append(buffer, static_cast<size_t>(got));
      Parse();
    }
    return true;
  }

  void Parse() {
    if (!head_done_) {
      const size_t end = raw_.find("\r\n\r\n");
      if (end == std::string::npos) return;
      head_ = raw_.substr(0, end);
      status_ = static_cast<unsigned>(std::stoi(head_.substr(9, 3)));
      raw_.erase(0, end + 4);
      head_done_ = true;
      chunked_ = head_.find("Transfer-Encoding: chunked") != std::string::npos ||
                 head_.find("transfer-encoding: chunked") != std::string::npos;
    }
    if (!chunked_) return;
    // Chunks into the body text, then whole frames out of it.
    for (;;) {
      const size_t line = raw_.find("\r\n");
      if (line == std::string::npos) break;
      const size_t size = std::stoul(raw_.substr(0, line), nullptr, 16);
      if (raw_.size() < line + 2 + size + 2) break;
      body_.append(raw_, line + 2, size);
      raw_.erase(0, line + 2 + size + 2);
      if (size == 0) break;
    }
    for (;;) {
      const size_t end = body_.find("\n\n");
      if (end == std::string::npos) break;
      const std::string frame = body_.substr(0, end);
      body_.erase(0, end + 2);
      SseEvent event;
      size_t at = 0;
      while (at < frame.size()) {
        size_t eol = frame.find('\n', at);
        if (eol == std::string::npos) eol = frame.size();
        const std::string field = frame.substr(at, eol - at);
        at = eol + 1;
        if (field.rfind("id: ", 0) == 0) event.id = field.substr(4);
        if (field.rfind("event: ", 0) == 0) event.name = field.substr(7);
        if (field.rfind("data: ", 0) == 0) event.data = field.substr(6);
      }
      if (!event.name.empty()) events_.push_back(std::move(event));
    }
  }

  int fd_ = -1;
  std::string raw_, head_, body_;
  bool head_done_ = false, chunked_ = false;
  unsigned status_ = 0;
  std::vector<SseEvent> events_;
};

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
