// The replicas' broadcast channel (kernel/state/postgres_channel.h) on a real
// PostgreSQL 15: what one channel sends, the others receive, in order, and
// the sender does not get back; bad names and payloads are refused.
#include "kernel/state/postgres_channel.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/kernel/state/state_backends.h"

namespace airlock::test {
namespace {

// What a channel received, for a test to wait on.
class Inbox {
 public:
  PostgresChannel::Receiver Receiver() {
    return [this](std::string_view payload) {
      std::lock_guard lock(mu_);
      payloads_.emplace_back(payload);
      cv_.notify_all();
    };
  }
  // The payloads once there are `count` of them (or what came in 10 s).
  std::vector<std::string> WaitFor(size_t count) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(10), [&] { return payloads_.size() >= count; });
    return payloads_;
  }
  std::vector<std::string> Now() {
    std::lock_guard lock(mu_);
    return payloads_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> payloads_;
};

PostgresChannelOptions ChannelOptions(const PgCluster& pg, const std::string& sender) {
  PostgresChannelOptions options;
  options.channel = "airlock_test_events";
  options.sender = sender;
  options.tls = PgStateOptions(pg).tls;
  return options;
}

std::unique_ptr<PostgresChannel> OpenOrDie(const PgStateDatabase& db,
                                           PostgresChannelOptions options, Inbox& inbox) {
  auto channel =
      PostgresChannel::Open(Secret(std::string(db.dsn)), std::move(options), inbox.Receiver());
  if (!channel.ok()) throw std::runtime_error(channel.status().ToString());
  return std::move(channel).value();
}

TEST(PostgresChannelTest, WhatOneSendsTheOthersReceiveInOrderAndItDoesNot) {
  PgCluster& pg = PgCluster::Shared();
  const PgStateDatabase db = CreatePgStateDatabase(pg);
  Inbox at_a, at_b, at_c;
  auto a = OpenOrDie(db, ChannelOptions(pg, "replica-a"), at_a);
  auto b = OpenOrDie(db, ChannelOptions(pg, "replica-b"), at_b);
  auto c = OpenOrDie(db, ChannelOptions(pg, "replica-c"), at_c);

  std::vector<std::string> sent;
  for (int i = 0; i < 200; ++i) {
    sent.push_back("event " + std::to_string(i) + " \u00e9\n{\"x\":1}");
    ASSERT_TRUE(a->Send(sent.back()));
  }
  EXPECT_EQ(at_b.WaitFor(sent.size()), sent);
  EXPECT_EQ(at_c.WaitFor(sent.size()), sent);
  ASSERT_TRUE(b->Send("from b"));
  EXPECT_EQ(at_a.WaitFor(1), std::vector<std::string>{"from b"});
  EXPECT_EQ(at_c.WaitFor(sent.size() + 1).back(), "from b");
  // Nothing came back to its sender.
  EXPECT_EQ(at_a.Now(), std::vector<std::string>{"from b"});
  EXPECT_EQ(at_b.Now(), sent);
  EXPECT_EQ(a->sent(), sent.size());
  EXPECT_EQ(a->dropped(), 0u);
}

TEST(PostgresChannelTest, AnotherDatabasesChannelHearsNothing) {
  PgCluster& pg = PgCluster::Shared();
  const PgStateDatabase one = CreatePgStateDatabase(pg);
  const PgStateDatabase other = CreatePgStateDatabase(pg);
  Inbox at_a, at_b, at_elsewhere;
  auto a = OpenOrDie(one, ChannelOptions(pg, "replica-a"), at_a);
  auto b = OpenOrDie(one, ChannelOptions(pg, "replica-b"), at_b);
  auto elsewhere = OpenOrDie(other, ChannelOptions(pg, "replica-x"), at_elsewhere);
  ASSERT_TRUE(a->Send("here"));
  EXPECT_EQ(at_b.WaitFor(1), std::vector<std::string>{"here"});
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_TRUE(at_elsewhere.Now().empty());
}

TEST(PostgresChannelTest, BadNamesAndPayloadsAreRefused) {
  PgCluster& pg = PgCluster::Shared();
  const PgStateDatabase db = CreatePgStateDatabase(pg);
  Inbox inbox;
  for (const std::string& name :
       std::vector<std::string>{"", "Upper", "with space", "x;LISTEN y", std::string(64, 'a')}) {
    PostgresChannelOptions options = ChannelOptions(pg, "replica-a");
    options.channel = name;
    auto channel = PostgresChannel::Open(Secret(std::string(db.dsn)), options, inbox.Receiver());
    EXPECT_EQ(channel.status().code(), StatusCode::kInvalidArgument) << name;
  }
  PostgresChannelOptions options = ChannelOptions(pg, "two\nlines");
  EXPECT_EQ(
      PostgresChannel::Open(Secret(std::string(db.dsn)), options, inbox.Receiver()).status().code(),
      StatusCode::kInvalidArgument);

  auto channel = OpenOrDie(db, ChannelOptions(pg, "replica-a"), inbox);
  EXPECT_FALSE(channel->Send(std::string(PostgresChannel::kMaxPayload + 1, 'x')));
  EXPECT_EQ(channel->dropped(), 1u);
}

TEST(PostgresChannelTest, BothEndsComeBackAfterTheDatabaseRestarts) {
  auto cluster = PgCluster::Start();
  const PgStateDatabase db = CreatePgStateDatabase(*cluster);
  Inbox at_a, at_b;
  PostgresChannelOptions fast = ChannelOptions(*cluster, "replica-a");
  fast.retry = std::chrono::milliseconds(100);
  auto a = OpenOrDie(db, fast, at_a);
  fast.sender = "replica-b";
  auto b = OpenOrDie(db, fast, at_b);
  ASSERT_TRUE(a->Send("before"));
  ASSERT_EQ(at_b.WaitFor(1), std::vector<std::string>{"before"});

  cluster->StopServer();
  // Sent while the database is away: kept and sent once it is back
  // (a receiver that is still reconnecting then may miss it).
  ASSERT_TRUE(a->Send("while away"));
  cluster->StartServer();
  // Once both ends are back, what is sent arrives again.
  std::vector<std::string> got;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (int i = 0; std::chrono::steady_clock::now() < deadline; ++i) {
    ASSERT_TRUE(a->Send("after " + std::to_string(i)));
    got = at_b.WaitFor(at_b.Now().size() + 1);
    if (got.back().rfind("after ", 0) == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got.back().rfind("after ", 0), 0u) << got.back();
  EXPECT_GE(a->sent(), 3u);
}

TEST(PostgresChannelTest, AnUnreachableDatabaseIsUnavailable) {
  PgCluster& pg = PgCluster::Shared();
  PostgresChannelOptions options = ChannelOptions(pg, "replica-a");
  options.connect_timeout_seconds = 2;
  Inbox inbox;
  auto channel = PostgresChannel::Open(Secret("host=127.0.0.1 port=1 dbname=none user=nobody"),
                                       options, inbox.Receiver());
  EXPECT_EQ(channel.status().code(), StatusCode::kUnavailable) << channel.status().ToString();
}

}  // namespace
}  // namespace airlock::test
