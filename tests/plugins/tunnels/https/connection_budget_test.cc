// The tunnel's connection budget: idle or reconnecting sockets without a
// credential, held from several client addresses (127.0.0.x), do not keep
// another request's user out; each endpoint has its own share.
#include <cstdio>

#include "tests/support/connection_flood.h"
#include "tunnel_fixture.h"

namespace airlock::testing::https_tunnel {
namespace {

using airlock::test::ConnectionStorm;
using airlock::test::IdleConnections;
using namespace std::chrono_literals;

// Waits (bounded) until `done` holds; false on timeout.
template <typename Condition>
bool WaitFor(Condition done, std::chrono::milliseconds limit = 5s) {
  const auto deadline = Clock::now() + limit;
  while (!done()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

TEST_F(HttpsTunnelTest, IdleSocketsDoNotLockOutAnotherRequestsUser) {
  constexpr size_t kIdle = 600;  // over twice the pool every request once shared
  ASSERT_TRUE(airlock::test::EnsureDescriptorLimit(2 * kIdle + 512));
  void* instance = CreateTunnel(BaseConfig());  // the default budget
  const Opened mine = Open(instance, "req-held");
  const Opened theirs = Open(instance, "req-other");
  auto connected = Client(mine.port);
  ASSERT_EQ(Query(*connected, mine, "SELECT 1").status, 200u);

  IdleConnections idle;
  size_t opened = 0;
  for (int i = 1; i <= 6; ++i) {
    opened += idle.Open("127.0.0." + std::to_string(i), mine.port, kIdle / 6);
  }
  ASSERT_GE(opened, kIdle * 9 / 10);
  // Every idle socket accepted: all but the pre-authentication pool's worth
  // were shed (a new client waits behind a burst still in the backlog).
  EXPECT_TRUE(WaitFor([&] { return idle.ServerClosed() + 256 >= opened; }, 60s));

  for (int i = 0; i < 3; ++i) {
    const auto start = Clock::now();
    auto fresh = Client(theirs.port);
    auto res = Query(*fresh, theirs, "SELECT COUNT(*) AS n FROM people");
    EXPECT_EQ(res.status, 200u) << res.error << res.body;
    EXPECT_LT(Clock::now() - start, 5s);
  }
  // The connection that authenticated before the flood was never touched.
  EXPECT_EQ(Query(*connected, mine, "SELECT 2").status, 200u);
  EXPECT_EQ(connected->connections_opened(), 1);
  EXPECT_GT(idle.ServerClosed(), kIdle / 2) << "idle sockets were not shed";
}

TEST_F(HttpsTunnelTest, AnotherRequestsUserQueriesThroughAReconnectStorm) {
  ASSERT_TRUE(airlock::test::EnsureDescriptorLimit(4096));
  json config = BaseConfig();
  config["max_connections"] = 128;
  config["max_preauth_connections"] = 64;
  config["max_preauth_connections_per_address"] = 32;
  void* instance = CreateTunnel(config);
  const Opened theirs = Open(instance, "req-storm");
  // Each address reconnects every millisecond, keeping its last 100
  // connections open: over its quota, and together over the pool.
  ConnectionStorm storm({"127.0.0.2", "127.0.0.3", "127.0.0.4"}, theirs.port, /*window=*/100, "",
                        /*pause=*/1ms);
  ASSERT_TRUE(WaitFor([&] { return storm.connects() > 500; }, 30s));
  std::chrono::milliseconds slowest{0};
  for (int i = 0; i < 5; ++i) {
    const auto start = Clock::now();
    auto fresh = Client(theirs.port);
    auto res = Query(*fresh, theirs, "SELECT COUNT(*) AS n FROM people");
    EXPECT_EQ(res.status, 200u) << res.error << res.body;
    slowest = std::max(slowest,
                       std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start));
  }
  EXPECT_LT(slowest, 5s);
  std::printf("[ measured ] 5 fresh TLS queries through %llu storm connects, slowest %lld ms\n",
              static_cast<unsigned long long>(storm.connects()),
              static_cast<long long>(slowest.count()));
}

TEST_F(HttpsTunnelTest, EachEndpointHasItsOwnShareOfConnections) {
  json config = BaseConfig();
  config["max_connections_per_endpoint"] = 2;
  void* instance = CreateTunnel(config);
  const Opened busy = Open(instance, "req-busy");
  const Opened other = Open(instance, "req-calm");
  auto first = Client(busy.port);
  auto second = Client(busy.port);
  ASSERT_EQ(Query(*first, busy, "SELECT 1").status, 200u);
  ASSERT_EQ(Query(*second, busy, "SELECT 1").status, 200u);

  auto third = Client(busy.port);
  auto refused = Query(*third, busy, "SELECT 1");
  EXPECT_EQ(refused.status, 429u) << refused.body;
  EXPECT_EQ(ErrorCode(refused), "too_many_connections");
  EXPECT_EQ(refused.header("Connection"), "close");
  // Another request's user is not affected by this endpoint's share.
  auto calm = Client(other.port);
  EXPECT_EQ(Query(*calm, other, "SELECT 1").status, 200u);
  // A place is given back when a connection closes.
  first.reset();
  unsigned status = 0;
  EXPECT_TRUE(WaitFor([&] {
    status = Query(*third, busy, "SELECT 1").status;
    return status == 200u;
  })) << status;
}

TEST_F(HttpsTunnelTest, ConnectionWithoutCredentialIsCutAtThePreauthDeadline) {
  json config = BaseConfig();
  config["preauth_timeout_ms"] = 300;
  void* instance = CreateTunnel(config);
  const Opened opened = Open(instance, "req-deadline");
  IdleConnections silent;  // never starts its TLS handshake
  ASSERT_EQ(silent.Open("127.0.0.2", opened.port, 1), 1u);
  const auto start = Clock::now();
  EXPECT_TRUE(WaitFor([&] { return silent.ServerClosed() == 1; }));
  EXPECT_LT(Clock::now() - start, 3s);
  // An authenticated connection keeps idle_timeout between requests.
  auto client = Client(opened.port);
  ASSERT_EQ(Query(*client, opened, "SELECT 1").status, 200u);
  std::this_thread::sleep_for(700ms);  // over twice preauth_timeout
  ASSERT_EQ(Query(*client, opened, "SELECT 1").status, 200u);
  EXPECT_EQ(client->connections_opened(), 1);
}

}  // namespace
}  // namespace airlock::testing::https_tunnel
