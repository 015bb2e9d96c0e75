// The SDK's tunnel kit: the listener's settings, the endpoint registry's
// "closed vs never existed" memory, and an endpoint's close that reaches its
// connections and waits for the work still using the host's channel.
#include "airlock/cpp/tunnel_kit.hpp"

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include <gtest/gtest.h>

#include "airlock/cpp/tunnel_tls.hpp"

namespace airlock::sdk::tunnel {
namespace {

using namespace std::chrono_literals;

bool AnyAddress(const std::string& text) {
  return text == "127.0.0.1" || text == "::1";
}

Status Read(const Json& j, ListenerSettings* out) {
  return ReadListenerSettings(j, "tunnel configuration", AnyAddress, "plaintext is for tests", out);
}

TEST(ListenerSettings, ReadsEveryKeyAndNamesTheOneThatIsWrong) {
  ListenerSettings s;
  ASSERT_TRUE(Read({{"listen_address", "::1"},
                    {"port", 5433},
                    {"tls", {{"certificate_file", "c.pem"}, {"private_key_file", "k.pem"}}},
                    {"public_host", "db.example.com"}},
                   &s)
                  .ok());
  EXPECT_EQ(s.listen_address, "::1");
  EXPECT_EQ(s.port, 5433);
  ASSERT_TRUE(s.tls.has_value());
  EXPECT_EQ(s.tls->private_key_file, "k.pem");
  EXPECT_EQ(s.public_host, "db.example.com");

  const auto why = [](const Json& j) {
    ListenerSettings settings;
    return Read(j, &settings).message();
  };
  EXPECT_EQ(why({{"allow_plaintext", true}, {"listen_address", "0.0.0.0.0"}}),
            "tunnel configuration.listen_address must be an IPv4 or IPv6 address");
  EXPECT_EQ(why({{"allow_plaintext", true}, {"port", 70000}}),
            "tunnel configuration.port must be between 0 and 65535");
  EXPECT_EQ(why(Json::object()),
            "tunnel configuration.tls is required (certificate_file, private_key_file); "
            "plaintext is for tests");
  EXPECT_EQ(why({{"tls", {{"certificate_file", "c.pem"}, {"private_key", "k.pem"}}}}),
            "tunnel configuration.tls: unknown key 'private_key'");
  EXPECT_EQ(why({{"tls", {{"certificate_file", ""}, {"private_key_file", "k.pem"}}}}),
            "tunnel configuration.tls.certificate_file must not be empty");
  EXPECT_EQ(why({{"allow_plaintext", "yes"}}),
            "tunnel configuration.allow_plaintext must be true or false");
  EXPECT_EQ(why({{"allow_plaintext", true}, {"public_host", "evil.com/path"}}),
            "tunnel configuration.public_host must be a host name or IP address (letters, "
            "digits, . - : _)");
}

TEST(ServerTls, AMissingFileIsNamedByItsKey) {
  const auto made =
      MakeServerTlsContext({"/nonexistent/c.pem", "/nonexistent/k.pem"}, "tunnel configuration");
  ASSERT_FALSE(made.ok());
  EXPECT_NE(made.status().message().find("tunnel configuration.tls.certificate_file: cannot load "
                                         "'/nonexistent/c.pem'"),
            std::string::npos)
      << made.status().message();
}

class FakeSession final : public Session {
 public:
  void Revoke() override { ++revoked; }
  void Kill() override { ++killed; }
  std::atomic<int> revoked{0}, killed{0};
};

std::shared_ptr<Endpoint> MakeEndpoint(const std::string& id, size_t max_sessions = 2) {
  return std::make_shared<Endpoint>(id, "alice", /*not_after=*/2'000'000'000, QueryChannel(),
                                    max_sessions);
}

TEST(Endpoint, BindsUpToItsShareAndForgetsUnboundSessions) {
  auto endpoint = MakeEndpoint("req-1", 2);
  auto a = std::make_shared<FakeSession>(), b = std::make_shared<FakeSession>(),
       c = std::make_shared<FakeSession>();
  EXPECT_EQ(endpoint->Bind(a), Endpoint::BindResult::kBound);
  EXPECT_EQ(endpoint->Bind(a), Endpoint::BindResult::kBound) << "the same session again";
  EXPECT_EQ(endpoint->Bind(b), Endpoint::BindResult::kBound);
  EXPECT_EQ(endpoint->Bind(c), Endpoint::BindResult::kFull);
  endpoint->Unbind(b.get());
  EXPECT_EQ(endpoint->Bind(c), Endpoint::BindResult::kBound);
  a.reset();  // a session that is gone frees its place too
  EXPECT_EQ(endpoint->Bind(std::make_shared<FakeSession>()), Endpoint::BindResult::kBound);
  EXPECT_TRUE(endpoint->expired(2'000'000'000));
  EXPECT_FALSE(endpoint->expired(1'999'999'999));
  EXPECT_TRUE(endpoint->ExtendTo(2'000'000'100).ok());
  EXPECT_FALSE(endpoint->expired(2'000'000'000));
  EXPECT_FALSE(endpoint->ExtendTo(1'000).ok());
}

TEST(Endpoint, CloseRevokesThenWaitsForLeasesAndKillsWhatOutlastsTheGrace) {
  auto endpoint = MakeEndpoint("req-2");
  auto polite = std::make_shared<FakeSession>();
  ASSERT_EQ(endpoint->Bind(polite), Endpoint::BindResult::kBound);
  auto lease = std::make_optional(*endpoint->Acquire());
  std::atomic<bool> closed{false};
  std::thread closer([&] {
    endpoint->Close(50ms);
    closed = true;
  });
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(closed.load()) << "Close returned while a lease was held";
  EXPECT_EQ(polite->revoked.load(), 1);
  EXPECT_EQ(polite->killed.load(), 1) << "the grace passed with the lease still held";
  EXPECT_TRUE(endpoint->closed());
  EXPECT_FALSE(endpoint->Acquire().has_value()) << "no new lease once closing";
  EXPECT_EQ(endpoint->Bind(std::make_shared<FakeSession>()), Endpoint::BindResult::kClosed);
  lease.reset();
  closer.join();
  EXPECT_TRUE(closed.load());

  // Work that ends within the grace is not killed.
  auto quick = MakeEndpoint("req-3");
  auto session = std::make_shared<FakeSession>();
  ASSERT_EQ(quick->Bind(session), Endpoint::BindResult::kBound);
  auto held = std::make_optional(*quick->Acquire());
  std::thread releaser([&] {
    std::this_thread::sleep_for(20ms);
    held.reset();
  });
  quick->Close(5s);
  releaser.join();
  EXPECT_EQ(session->revoked.load(), 1);
  EXPECT_EQ(session->killed.load(), 0);
}

TEST(EndpointRegistry, TellsClosedFromNeverExistedAndForgetsTheOldest) {
  EndpointRegistry<Endpoint> registry;
  auto endpoint = MakeEndpoint("req-4");
  ASSERT_TRUE(registry.Add(endpoint).ok());
  EXPECT_EQ(registry.Add(MakeEndpoint("req-4")).code(), StatusCode::kAlreadyExists);
  std::optional<CloseReason> closed;
  EXPECT_EQ(registry.Find("req-4", &closed), endpoint);
  EXPECT_EQ(registry.Find("req-none", &closed), nullptr);
  EXPECT_FALSE(closed.has_value()) << "never existed";
  endpoint->set_close_reason(CloseReason::kWindowEnded);
  registry.Close(endpoint);
  EXPECT_TRUE(endpoint->closed());
  EXPECT_EQ(registry.Find("req-4", &closed), nullptr);
  ASSERT_TRUE(closed.has_value());
  EXPECT_EQ(*closed, CloseReason::kWindowEnded);
  // Reopened, it is open again.
  auto again = MakeEndpoint("req-4");
  ASSERT_TRUE(registry.Add(again).ok());
  EXPECT_EQ(registry.Find("req-4", &closed), again);
  EXPECT_FALSE(closed.has_value());
  // The memory of closures is bounded: the oldest are forgotten.
  for (size_t i = 0; i <= EndpointRegistry<Endpoint>::kMaxRememberedClosures; ++i) {
    auto e = MakeEndpoint("old-" + std::to_string(i));
    ASSERT_TRUE(registry.Add(e).ok());
    registry.Close(e);
  }
  EXPECT_EQ(registry.Find("old-0", &closed), nullptr);
  EXPECT_FALSE(closed.has_value()) << "forgotten";
  registry.Find("old-1", &closed);
  EXPECT_TRUE(closed.has_value());
  registry.CloseAll();
  EXPECT_TRUE(again->closed());
}

}  // namespace
}  // namespace airlock::sdk::tunnel
