// The tunnel conformance kit: one GoogleTest suite any tunnel transport
// runs against itself, through the C ABI as the kernel drives it, with a
// client of the tunnel's own protocol that the fixture provides.
//
//   class MyClient : public airlock::conformance::TunnelClient { ... };   // speaks the protocol
//   class MyFixture : public airlock::conformance::TunnelFixture {
//    public:
//     airlock::Result<airlock::conformance::TunnelSetup> Prepare() override { ... }
//   };
//   AIRLOCK_TUNNEL_CONFORMANCE_SUITE(MyTunnel, MyFixture);   // at global scope
//
// The kit plays the kernel: it opens endpoints with a query channel of its
// own (every query the host audits passes through it; it answers a fixed
// result, and a query it holds until cancelled) and checks:
//   - a client with the grant gets the channel's rows, and each query it ran
//     reached the channel exactly once (the host audits there);
//   - a wrong credential is refused and reaches nothing;
//   - a credential past its window (by the tunnel's own clock) is refused;
//   - closing an endpoint drops the sessions open on it, refuses new ones,
//     and the channel is not used once close returned;
//   - closing waits for a query still running in the channel, which sees
//     that it is cancelled, and returns within seconds.
//
// Header-only. Depends on the SDK headers, GoogleTest and dlopen (link
// ${CMAKE_DL_LIBS}).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "airlock/c/airlock_plugin.h"
#include "airlock/cpp/abi_util.hpp"
#include "airlock/cpp/arrow.hpp"
#include "airlock/cpp/status.hpp"
#include "airlock/testing/plugin_harness.hpp"

namespace airlock::conformance {

// A client of the tunnel's protocol, made by the fixture.
class TunnelClient {
 public:
  virtual ~TunnelClient() = default;
  // Connects to the grant's endpoint presenting `credential` (the grant's,
  // or another); an error when the tunnel refuses. A connectionless
  // protocol may only remember what to present.
  virtual Status Connect(const nlohmann::json& grant, const std::string& credential) = 0;
  // Runs `sql` on the connection; the rows' cells as text. An error when
  // the tunnel refuses or the connection is gone.
  virtual Result<std::vector<std::vector<std::string>>> Query(const std::string& sql) = 0;
};

struct TunnelSetup {
  std::string plugin_path;
  std::string config_json;  // a JSON object
  std::function<std::unique_ptr<TunnelClient>()> make_client;
};

class TunnelFixture {
 public:
  virtual ~TunnelFixture() = default;
  virtual Result<TunnelSetup> Prepare() = 0;
};

// What the channel answers: one int64 column "n" with 1, 2, 3. A query
// holding the literal 'hold' (which survives a tunnel's translation of its
// dialect) instead waits until the tunnel cancels it, or 10 s.
inline constexpr const char* kHoldQuery = "SELECT n FROM t WHERE 'hold' = 'hold'";

namespace tunnel_detail {

class Channel {
 public:
  Channel() {
    raw_.size = sizeof(raw_);
    raw_.host_data = this;
    raw_.query = &Query;
    raw_.tables = &Tables;
  }
  const airlock_type_query_channel* get() const { return &raw_; }

  std::vector<std::string> queries() const {
    std::lock_guard lock(mu_);
    return queries_;
  }
  // Set once the endpoint's close returned: any later use is a defect.
  void set_closed() { closed_ = true; }
  bool used_after_close() const { return used_after_close_.load(); }
  bool holding() const { return holding_.load(); }
  bool hold_saw_cancel() const { return hold_saw_cancel_.load(); }
  bool hold_ended() const { return hold_ended_.load(); }

 private:
  static airlock_type_status Query(void* data, const char* sql, size_t length,
                                   const airlock_type_batch_sink* sink, airlock_type_error* error) {
    auto* self = static_cast<Channel*>(data);
    if (self->closed_) self->used_after_close_ = true;
    const std::string text(sql, length);
    {
      std::lock_guard lock(self->mu_);
      self->queries_.push_back(text);
    }
    if (text.find("'hold'") != std::string::npos) {
      self->holding_ = true;
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (std::chrono::steady_clock::now() < deadline) {
        if (sink->is_cancelled != nullptr && sink->is_cancelled(sink->host_data) != 0) {
          self->hold_saw_cancel_ = true;
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      self->hold_ended_ = true;
      abi::FillError(error, "cancelled");
      return AIRLOCK_ERR_CANCELLED;
    }
    arrow::RecordBatchBuilder builder({arrow::Field{"n", arrow::Type::kInt64}});
    for (int64_t n = 1; n <= 3; ++n) builder.AppendInt64(0, n);
    ArrowSchema schema;
    builder.MakeSchema().MoveTo(&schema);
    airlock_type_status rc = sink->on_schema(sink->host_data, &schema);
    if (schema.release != nullptr) schema.release(&schema);
    if (rc != AIRLOCK_OK) return rc;
    ArrowArray batch;
    builder.Finish().MoveTo(&batch);
    rc = sink->on_batch(sink->host_data, &batch);
    if (batch.release != nullptr) batch.release(&batch);
    return rc;
  }

  static airlock_type_status Tables(void* data, airlock_type_buffer* tables, airlock_type_error*) {
    auto* self = static_cast<Channel*>(data);
    if (self->closed_) self->used_after_close_ = true;
    abi::FillBuffer(
        tables, R"({"tables":[{"name":"t","rows":3,"columns":[{"name":"n","type":"int64"}]}]})");
    return AIRLOCK_OK;
  }

  airlock_type_query_channel raw_{};
  mutable std::mutex mu_;
  std::vector<std::string> queries_;  // guarded by mu_
  std::atomic<bool> closed_{false}, used_after_close_{false}, holding_{false},
      hold_saw_cancel_{false}, hold_ended_{false};
};

class Tunnel {
 public:
  Tunnel(const airlock_type_tunnel_vtable* table, const std::string& config) : table_(table) {
    abi::ErrorHolder error;
    status_ = table_->create(config.data(), config.size(), &instance_, error.get());
    error_ = error.message();
  }
  ~Tunnel() {
    if (instance_ != nullptr) table_->destroy(instance_);
  }
  Tunnel(const Tunnel&) = delete;
  Tunnel& operator=(const Tunnel&) = delete;
  airlock_type_status created() const { return status_; }
  const std::string& create_error() const { return error_; }

  // An open endpoint: its channel, the handle, the grant.
  struct Opened {
    std::unique_ptr<Channel> channel = std::make_unique<Channel>();
    void* endpoint = nullptr;
    nlohmann::json grant;
  };
  Result<std::unique_ptr<Opened>> Open(const std::string& request_id, int64_t not_after) const {
    auto opened = std::make_unique<Opened>();
    const std::string spec = nlohmann::json{
        {"request_id", request_id},
        {"principal", {{"subject", "alice"}, {"groups", {"analysts"}}}},
        {"not_after", not_after}}.dump();
    abi::BufferHolder grant;
    abi::ErrorHolder error;
    const airlock_type_status rc =
        table_->open(instance_, spec.data(), spec.size(), opened->channel->get(), &opened->endpoint,
                     grant.get(), error.get());
    if (rc != AIRLOCK_OK) return error.ToStatus(rc, "open failed");
    opened->grant = nlohmann::json::parse(grant.view(), nullptr, false);
    if (!opened->grant.is_object()) return Status::InvalidArgument("the grant is not JSON");
    return opened;
  }

  void Close(Opened& opened) const {
    if (opened.endpoint == nullptr) return;
    if (table_->size >= AIRLOCK_TUNNEL_VTABLE_1_1_SIZE && table_->close_with_reason != nullptr) {
      table_->close_with_reason(instance_, opened.endpoint, AIRLOCK_CLOSE_REVOKED);
    } else {
      table_->close(instance_, opened.endpoint);
    }
    opened.endpoint = nullptr;
    opened.channel->set_closed();
  }

 private:
  const airlock_type_tunnel_vtable* table_;
  void* instance_ = nullptr;
  airlock_type_status status_ = AIRLOCK_ERR_INTERNAL;
  std::string error_;
};

inline Result<const airlock_type_tunnel_vtable*> LoadTunnel(const std::string& path) {
  return LoadTable<airlock_type_tunnel_vtable>(path, AIRLOCK_KIND_TUNNEL, "tunnel", "tunnel",
                                               AIRLOCK_TUNNEL_VTABLE_1_0_SIZE);
}

inline int64_t NowSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace tunnel_detail

template <typename Fixture>
class TunnelConformance : public ::testing::Test {
 protected:
  void SetUp() override {
    Fixture fixture;
    auto prepared = fixture.Prepare();
    ASSERT_TRUE(prepared.ok()) << "the fixture could not prepare: " << prepared.status().message();
    setup_ = std::move(prepared).value();
    auto table = tunnel_detail::LoadTunnel(setup_.plugin_path);
    ASSERT_TRUE(table.ok()) << table.status().message();
    tunnel_ = std::make_unique<tunnel_detail::Tunnel>(*table, setup_.config_json);
    ASSERT_EQ(tunnel_->created(), AIRLOCK_OK)
        << "create() refused the fixture's configuration: " << tunnel_->create_error();
  }

  void TearDown() override {
    for (auto& opened : opened_) tunnel_->Close(*opened);
  }

  tunnel_detail::Tunnel::Opened& Open(const std::string& id, int64_t not_after) {
    auto opened = tunnel_->Open(id, not_after);
    EXPECT_TRUE(opened.ok()) << opened.status().message();
    if (!opened.ok()) throw std::runtime_error("open failed");
    opened_.push_back(std::move(opened).value());
    return *opened_.back();
  }

  std::unique_ptr<TunnelClient> Connected(const tunnel_detail::Tunnel::Opened& opened) {
    auto client = setup_.make_client();
    const Status connected =
        client->Connect(opened.grant, opened.grant.value("credential", std::string()));
    EXPECT_TRUE(connected.ok()) << connected.message();
    return client;
  }

  static const std::vector<std::vector<std::string>>& Rows() {
    static const std::vector<std::vector<std::string>> rows = {{"1"}, {"2"}, {"3"}};
    return rows;
  }

  TunnelSetup setup_;
  std::unique_ptr<tunnel_detail::Tunnel> tunnel_;
  std::vector<std::unique_ptr<tunnel_detail::Tunnel::Opened>> opened_;
};

TYPED_TEST_SUITE_P(TunnelConformance);

TYPED_TEST_P(TunnelConformance, QueriesReachTheHostsChannelOnce) {
  auto& opened = this->Open("req-conformance-1", tunnel_detail::NowSeconds() + 600);
  EXPECT_FALSE(opened.grant.value("url", "").empty()) << opened.grant.dump();
  auto client = this->Connected(opened);
  auto rows = client->Query("SELECT n FROM t");
  ASSERT_TRUE(rows.ok()) << rows.status().message();
  EXPECT_EQ(*rows, this->Rows());
  auto again = client->Query("SELECT n FROM t WHERE n > 0");
  ASSERT_TRUE(again.ok()) << again.status().message();
  // Each statement once, in the engine's dialect (a tunnel may translate).
  EXPECT_EQ(opened.channel->queries().size(), 2u)
      << "each query reaches the host (and its audit) once";
}

TYPED_TEST_P(TunnelConformance, AWrongCredentialIsRefusedAndReachesNothing) {
  auto& opened = this->Open("req-conformance-2", tunnel_detail::NowSeconds() + 600);
  auto client = this->setup_.make_client();
  const Status connected = client->Connect(opened.grant, "not-the-credential-0000000000000");
  if (connected.ok()) EXPECT_FALSE(client->Query("SELECT n FROM t").ok());
  EXPECT_TRUE(opened.channel->queries().empty());
}

TYPED_TEST_P(TunnelConformance, ACredentialPastItsWindowIsRefused) {
  auto& opened = this->Open("req-conformance-3", tunnel_detail::NowSeconds() + 2);
  std::this_thread::sleep_for(std::chrono::milliseconds(3100));
  auto client = this->setup_.make_client();
  const Status connected = client->Connect(opened.grant, opened.grant.value("credential", ""));
  if (connected.ok()) EXPECT_FALSE(client->Query("SELECT n FROM t").ok());
  EXPECT_TRUE(opened.channel->queries().empty()) << "a query ran after the window";
}

TYPED_TEST_P(TunnelConformance, ClosingDropsOpenSessionsAndRefusesNewOnes) {
  auto& opened = this->Open("req-conformance-4", tunnel_detail::NowSeconds() + 600);
  auto client = this->Connected(opened);
  ASSERT_TRUE(client->Query("SELECT n FROM t").ok());
  const nlohmann::json grant = opened.grant;
  this->tunnel_->Close(opened);
  EXPECT_FALSE(client->Query("SELECT n FROM t").ok()) << "the open session survived the close";
  auto late = this->setup_.make_client();
  const Status connected = late->Connect(grant, grant.value("credential", ""));
  if (connected.ok()) EXPECT_FALSE(late->Query("SELECT n FROM t").ok());
  EXPECT_FALSE(opened.channel->used_after_close()) << "the channel was used after close";
}

TYPED_TEST_P(TunnelConformance, ClosingCancelsAndWaitsForARunningQuery) {
  auto& opened = this->Open("req-conformance-5", tunnel_detail::NowSeconds() + 600);
  auto client = this->Connected(opened);
  std::thread running([&] { (void)client->Query(kHoldQuery); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!opened.channel->holding() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_TRUE(opened.channel->holding()) << "the query never reached the channel";
  const auto closing = std::chrono::steady_clock::now();
  this->tunnel_->Close(opened);
  EXPECT_LT(std::chrono::steady_clock::now() - closing, std::chrono::seconds(10));
  EXPECT_TRUE(opened.channel->hold_ended()) << "close returned while the query ran in the channel";
  EXPECT_TRUE(opened.channel->hold_saw_cancel()) << "the running query was not told to stop";
  running.join();
}

REGISTER_TYPED_TEST_SUITE_P(TunnelConformance, QueriesReachTheHostsChannelOnce,
                            AWrongCredentialIsRefusedAndReachesNothing,
                            ACredentialPastItsWindowIsRefused,
                            ClosingDropsOpenSessionsAndRefusesNewOnes,
                            ClosingCancelsAndWaitsForARunningQuery);

}  // namespace airlock::conformance

// Instantiates the suite for `Fixture` (a TunnelFixture), at global scope.
#define AIRLOCK_TUNNEL_CONFORMANCE_SUITE(Name, Fixture)                               \
  namespace airlock::conformance {                                                    \
  INSTANTIATE_TYPED_TEST_SUITE_P(Name, TunnelConformance, ::testing::Types<Fixture>); \
  }                                                                                   \
  static_assert(true, "require a trailing semicolon")
