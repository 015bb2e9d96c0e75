// The HTTP server's connection budget against clients that hold or churn
// idle connections without a credential, over real loopback sockets from
// several client addresses (127.0.0.x), while a legitimate client keeps
// working.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "kernel/api/http_server.h"
#include "tests/support/connection_flood.h"
#include "tests/support/http_client.h"
#include "tests/support/temp_dir.h"
#include "tests/support/test_pki.h"

namespace airlock {
namespace {

using ::airlock::test::ConnectionStorm;
using ::airlock::test::HttpClient;
using ::airlock::test::IdleConnections;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr char kCredential[] = "Bearer good";

// Vouches for requests carrying kCredential, as the identity chain does.
HttpResponse Handler(const HttpRequest& request) {
  if (request.header("Authorization") == kCredential) request.MarkAuthenticated();
  return HttpResponse::Json(200, {{"remote", request.remote_address}});
}

struct Events {
  std::atomic<int> shed{0};
  std::atomic<int> refused{0};
};

std::unique_ptr<HttpServer> StartServer(HttpServerOptions options, Events* events) {
  options.on_connection_limited = [events](ConnectionLimitEvent event) {
    (event == ConnectionLimitEvent::kShed ? events->shed : events->refused).fetch_add(1);
  };
  auto server = HttpServer::Start(std::move(options), Handler);
  EXPECT_TRUE(server.ok()) << server.status().ToString();
  return server.ok() ? std::move(server).value() : nullptr;
}

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

TEST(HttpConnectionBudgetTest, IdleUnauthenticatedConnectionIsShedForANewOne) {
  HttpServerOptions options;
  options.max_connections = 8;
  options.max_preauth_connections = 2;
  options.max_preauth_connections_per_address = 2;
  Events events;
  auto server = StartServer(options, &events);
  ASSERT_TRUE(server);

  IdleConnections oldest, newer;
  ASSERT_EQ(oldest.Open("127.0.0.2", server->port(), 1), 1u);
  ASSERT_EQ(newer.Open("127.0.0.2", server->port(), 1), 1u);
  ASSERT_TRUE(WaitFor([&] { return server->connection_stats().preauth == 2; }));

  // The pre-authentication pool is full; a newcomer from another address
  // is still served, and the oldest idle connection pays for it.
  HttpClient client("127.0.0.1", server->port());
  ASSERT_EQ(client.Get("/").status, 200u);
  EXPECT_TRUE(WaitFor([&] { return oldest.ServerClosed() == 1; }));
  EXPECT_EQ(newer.ServerClosed(), 0u);
  EXPECT_EQ(events.shed.load(), 1);
  EXPECT_EQ(events.refused.load(), 0);
}

TEST(HttpConnectionBudgetTest, AnAddressOverItsQuotaShedsOnlyItsOwnConnections) {
  HttpServerOptions options;
  options.max_connections = 64;
  options.max_preauth_connections = 32;
  options.max_preauth_connections_per_address = 2;
  Events events;
  auto server = StartServer(options, &events);
  ASSERT_TRUE(server);

  IdleConnections a_first, a_second, b;
  ASSERT_EQ(a_first.Open("127.0.0.2", server->port(), 1), 1u);
  ASSERT_EQ(a_second.Open("127.0.0.2", server->port(), 1), 1u);
  ASSERT_EQ(b.Open("127.0.0.3", server->port(), 2), 2u);
  ASSERT_TRUE(WaitFor([&] { return server->connection_stats().preauth == 4; }));

  IdleConnections a_third;
  ASSERT_EQ(a_third.Open("127.0.0.2", server->port(), 1), 1u);
  EXPECT_TRUE(WaitFor([&] { return a_first.ServerClosed() == 1; }));
  EXPECT_EQ(a_second.ServerClosed(), 0u);
  EXPECT_EQ(b.ServerClosed(), 0u);
  EXPECT_EQ(a_third.ServerClosed(), 0u);
  EXPECT_EQ(server->connection_stats().preauth, 4u);
}

TEST(HttpConnectionBudgetTest, AuthenticatedConnectionsAreNeverShed) {
  HttpServerOptions options;
  options.max_connections = 4;
  options.max_preauth_connections = 2;
  options.max_preauth_connections_per_address = 2;
  Events events;
  auto server = StartServer(options, &events);
  ASSERT_TRUE(server);

  HttpClient first("127.0.0.1", server->port());
  HttpClient second("127.0.0.1", server->port());
  ASSERT_EQ(first.Get("/", {{"Authorization", kCredential}}).status, 200u);
  ASSERT_EQ(second.Get("/", {{"Authorization", kCredential}}).status, 200u);
  // Ten idle newcomers churn through the two pre-authentication places...
  IdleConnections idle;
  ASSERT_EQ(idle.Open("127.0.0.2", server->port(), 10), 10u);
  EXPECT_TRUE(WaitFor([&] { return idle.ServerClosed() == 8; }));
  // ...and never take the two authenticated connections' places.
  EXPECT_EQ(first.Get("/").status, 200u);
  EXPECT_EQ(second.Get("/").status, 200u);
  EXPECT_EQ(first.connections_opened(), 1);
  EXPECT_EQ(second.connections_opened(), 1);
  EXPECT_EQ(server->connection_stats().open, 4u);
}

class HttpConnectionBudgetTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::make_unique<test::TempDir>("airlock-http-budget-");
    pki_ = std::make_unique<test::TestPki>(test::GenerateTestPki(dir_->path()));
  }
  std::unique_ptr<test::TempDir> dir_;
  std::unique_ptr<test::TestPki> pki_;
};

// The TLS handshake is pre-authentication time: a client that connects and
// never starts (or never finishes) its handshake is cut at preauth_timeout.
TEST_F(HttpConnectionBudgetTlsTest, SilentTlsClientIsCutAtThePreauthDeadline) {
  HttpServerOptions options;
  options.tls = TlsOptions{pki_->server.cert_file, pki_->server.key_file, ""};
  options.preauth_timeout = 300ms;
  options.read_timeout = 30s;
  Events events;
  auto server = StartServer(options, &events);
  ASSERT_TRUE(server);
  IdleConnections silent;
  ASSERT_EQ(silent.Open("127.0.0.2", server->port(), 1), 1u);
  const auto start = Clock::now();
  EXPECT_TRUE(WaitFor([&] { return silent.ServerClosed() == 1; }, 5s));
  EXPECT_LT(Clock::now() - start, 3s);

  HttpClient client("127.0.0.1", server->port(), test::ClientTls{pki_->ca.cert_file, "", ""});
  EXPECT_EQ(client.Get("/", {{"Authorization", kCredential}}).status, 200u);
}

// Before the budget a legitimate client was refused outright for as long as
// the idle sockets stayed (read_timeout, 15 s). Now every round (a request on
// the kept connection, and every fifth round one on a new connection too)
// must succeed; once the attack is in place (all its sockets accepted, or a
// storm at its steady pace) each round must also finish within this bound,
// far below the old lockout and with room for a loaded, shared machine.
// While a burst of thousands of connects is still queued in the listen
// backlog, a new connection waits behind it (accept is first come, first
// served): those rounds are only required to succeed.
constexpr std::chrono::milliseconds kRoundBound{5000};

// What a legitimate client saw while the attack ran.
struct ClientRecord {
  int requests = 0;
  int failures = 0;
  std::vector<std::pair<Clock::time_point, std::chrono::milliseconds>> rounds;  // start, took
  std::string first_error;
  std::atomic<int> completed{0};  // the only member read while the client runs

  // Of the rounds that started at or after `from`.
  std::vector<std::chrono::milliseconds> Since(Clock::time_point from) const {
    std::vector<std::chrono::milliseconds> out;
    for (const auto& [start, took] : rounds) {
      if (start >= from) out.push_back(took);
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  std::chrono::milliseconds Slowest(Clock::time_point from = {}) const {
    const auto sorted = Since(from);
    return sorted.empty() ? std::chrono::milliseconds{0} : sorted.back();
  }
  std::chrono::milliseconds Median(Clock::time_point from = {}) const {
    const auto sorted = Since(from);
    return sorted.empty() ? std::chrono::milliseconds{0} : sorted[sorted.size() / 2];
  }
  size_t Count(Clock::time_point from) const { return Since(from).size(); }
};

// Until `stop`: requests on one kept-alive authenticated connection, and
// every fifth round one on a brand-new connection (which must get in past
// the attack).
void RunLegitimateClient(uint16_t port, const std::atomic<bool>& stop, ClientRecord* record,
                         int* keep_alive_connections) {
  HttpClient kept("127.0.0.1", port);
  kept.set_timeout(30s);
  for (int round = 0; !stop.load() || round < 10; ++round) {
    const auto start = Clock::now();
    auto response = kept.Get("/kept", {{"Authorization", kCredential}});
    if (round % 5 == 0) {
      HttpClient fresh("127.0.0.1", port);
      fresh.set_timeout(30s);
      auto other = fresh.Get("/fresh", {{"Authorization", kCredential}});
      if (other.status != 200) {
        ++record->failures;
        if (record->first_error.empty()) record->first_error = "fresh: " + other.error;
      }
      ++record->requests;
    }
    const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
    record->rounds.emplace_back(start, took);
    if (response.status != 200) {
      ++record->failures;
      if (record->first_error.empty()) record->first_error = "kept: " + response.error;
    }
    ++record->requests;
    record->completed.fetch_add(1);
    std::this_thread::sleep_for(10ms);
  }
  *keep_alive_connections = kept.connections_opened();
}

// The attack of the issue, scaled to the server: 2000 idle connections
// without a credential (twice max_connections), from 127.0.0.1 — the
// legitimate client's own address — and seven other addresses.
TEST(HttpConnectionBudgetTest, LegitimateClientWorksWhileThousandsOfIdleConnectionsAreHeld) {
  constexpr size_t kIdle = 2000;
  ASSERT_TRUE(test::EnsureDescriptorLimit(2 * kIdle + 512)) << "RLIMIT_NOFILE hard limit too low";
  HttpServerOptions options;
  options.max_connections = 1024;
  options.max_preauth_connections = 512;
  options.max_preauth_connections_per_address = 128;
  Events events;
  auto server = StartServer(options, &events);
  ASSERT_TRUE(server);

  IdleConnections idle;
  // From the legitimate client's own address first, then from the others
  // while it works.
  ASSERT_GT(idle.Open("127.0.0.1", server->port(), kIdle / 8), 0u);
  std::atomic<bool> stop{false};
  ClientRecord record;
  int keep_alive_connections = 0;
  std::thread client(RunLegitimateClient, server->port(), std::cref(stop), &record,
                     &keep_alive_connections);
  size_t opened = kIdle / 8;
  for (int i = 2; i <= 8; ++i) {
    opened += idle.Open("127.0.0." + std::to_string(i), server->port(), kIdle / 8);
  }
  // Every attacking socket accepted: each is either held or was shed.
  EXPECT_TRUE(WaitFor(
      [&] {
        const auto stats = server->connection_stats();
        return stats.shed + stats.preauth >= opened;
      },
      60s));
  const auto steady = Clock::now();
  const int before = record.completed.load();
  WaitFor([&] { return record.completed.load() >= before + 10; }, 30s);
  stop = true;
  client.join();

  EXPECT_GE(opened, kIdle * 6 / 8) << "the attack itself did not get through";
  EXPECT_EQ(record.failures, 0) << record.first_error;
  EXPECT_GE(record.requests, 10);
  EXPECT_GE(record.Count(steady), 5u);
  EXPECT_LT(record.Slowest(steady), kRoundBound);
  EXPECT_EQ(keep_alive_connections, 1) << "the authenticated connection was dropped";
  EXPECT_GT(events.shed.load(), 0);
  EXPECT_EQ(events.refused.load(), 0);
  const auto stats = server->connection_stats();
  EXPECT_LE(stats.preauth, options.max_preauth_connections);
  EXPECT_LE(stats.open, options.max_connections);
  std::printf(
      "[ measured ] %d requests while %zu idle connections were opened and held: rounds median "
      "%lld ms, slowest %lld ms; once all held: median %lld ms, slowest %lld ms; %d shed\n",
      record.requests, idle.held(), static_cast<long long>(record.Median().count()),
      static_cast<long long>(record.Slowest().count()),
      static_cast<long long>(record.Median(steady).count()),
      static_cast<long long>(record.Slowest(steady).count()), events.shed.load());
}

// The same attacker reconnecting without pause: each address keeps more
// connections in flight than the whole pre-authentication pool holds.
TEST(HttpConnectionBudgetTest, LegitimateClientWorksThroughAReconnectStorm) {
  ASSERT_TRUE(test::EnsureDescriptorLimit(4096));
  HttpServerOptions options;
  options.max_connections = 256;
  options.max_preauth_connections = 128;
  options.max_preauth_connections_per_address = 32;
  Events events;
  auto server = StartServer(options, &events);
  ASSERT_TRUE(server);

  std::atomic<bool> stop{false};
  ClientRecord record;
  int keep_alive_connections = 0;
  {
    // Two addresses, each reconnecting every millisecond and keeping its
    // last 100 connections open: over its own quota, and together over the
    // whole pool. (Paced: an unpaced loop on this machine only measures
    // which of the attacker and the server gets the CPU.)
    ConnectionStorm storm({"127.0.0.2", "127.0.0.3"}, server->port(), /*window=*/100, "",
                          /*pause=*/1ms);
    ASSERT_TRUE(WaitFor([&] { return storm.connects() > 500; }, 30s))
        << "the storm did not get going";
    std::thread client(RunLegitimateClient, server->port(), std::cref(stop), &record,
                       &keep_alive_connections);
    WaitFor([&] { return record.completed.load() >= 20; }, 30s);
    stop = true;
    client.join();
    std::printf(
        "[ measured ] %d requests through %llu storm connects: rounds median %lld ms, slowest "
        "%lld ms\n",
        record.requests, static_cast<unsigned long long>(storm.connects()),
        static_cast<long long>(record.Median().count()),
        static_cast<long long>(record.Slowest().count()));
  }
  EXPECT_EQ(record.failures, 0) << record.first_error;
  EXPECT_GE(record.requests, 10);
  EXPECT_LT(record.Slowest(), kRoundBound);
  EXPECT_EQ(keep_alive_connections, 1);
  EXPECT_GT(events.shed.load(), 0);
}

}  // namespace
}  // namespace airlock
