// EnclaveClient against a scripted, sometimes hostile, fake enclave speaking
// the protocol by hand on the other end of a socketpair.
#include "kernel/enclave/enclave_client.h"

#include <sys/socket.h>
#include <unistd.h>

#include <future>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "kernel/enclave/batch_codec.h"
#include "tests/kernel/enclave/enclave_test_support.h"

namespace airlock::enclave {
namespace {

using namespace test_support;  // NOLINT
using ::testing::HasSubstr;

class FakeEnclave {
 public:
  FakeEnclave() {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    channel = std::make_unique<FrameChannel>(fds[0]);
    raw_fd = fds[0];
    auto started = EnclaveClient::Start(fds[1], log.Events());
    EXPECT_TRUE(started.ok());
    client = std::move(started).value();
  }

  // Reads frames until one of `type` arrives; its JSON payload.
  Json Expect(FrameType type) {
    for (;;) {
      auto frame = channel->Receive(std::chrono::milliseconds(10000));
      if (!frame.ok()) {
        ADD_FAILURE() << "fake enclave: " << frame.status().ToString();
        return Json();
      }
      if (frame->type == type) {
        return frame->payload.empty() ? Json::object() : Json::parse(frame->payload);
      }
    }
  }

  void SendSchema(const std::string& id, const std::vector<arrow::Field>& fields) {
    ASSERT_TRUE(
        channel->Send(FrameType::kResultSchema, {EncodeIdHeader(id), EncodeSchema(fields)}).ok());
  }
  // Sends a batch of `count` int64 values; returns the frame's payload size.
  size_t SendInts(const std::string& id, int64_t from, int64_t count) {
    arrow::RecordBatchBuilder builder(IntFields());
    for (int64_t i = 0; i < count; ++i) builder.AppendInt64(0, from + i);
    arrow::OwnedArray array = builder.Finish();
    auto view = arrow::BatchView::Make(IntFields(), *array.get());
    EXPECT_TRUE(view.ok());
    std::string encoded;
    EncodeBatch(*view, &encoded);
    const std::string header = EncodeIdHeader(id);
    EXPECT_TRUE(channel->Send(FrameType::kResultBatch, {header, encoded}).ok());
    return header.size() + encoded.size();
  }
  void SendEnd(const Json& end) { ASSERT_TRUE(channel->SendJson(FrameType::kResultEnd, end).ok()); }
  void WriteRaw(std::string_view bytes) {
    ASSERT_EQ(::send(raw_fd, bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
  }

  static std::vector<arrow::Field> IntFields() { return {{"v", arrow::Type::kInt64, "", true}}; }

  // Runs a query on another thread.
  std::future<Status> QueryAsync(CollectingConsumer& consumer,
                                 std::chrono::milliseconds timeout = 10s) {
    return std::async(std::launch::async, [this, &consumer, timeout] {
      return client->Query("SELECT v FROM t", consumer, timeout);
    });
  }

  EventLog log;
  std::unique_ptr<FrameChannel> channel;
  int raw_fd = -1;
  std::unique_ptr<EnclaveClient> client;
};

std::string Header(uint32_t length, uint8_t type) {
  std::string h(5, '\0');
  for (int i = 0; i < 4; ++i) h[i] = static_cast<char>((length >> (8 * i)) & 0xff);
  h[4] = static_cast<char>(type);
  return h;
}

TEST(EnclaveClient, StreamsAWellFormedResult) {
  FakeEnclave fake;
  CollectingConsumer out;
  auto result = fake.QueryAsync(out);
  Json query = fake.Expect(FrameType::kQuery);
  EXPECT_EQ(query["sql"], "SELECT v FROM t");
  const std::string id = query["id"];
  fake.SendSchema(id, FakeEnclave::IntFields());
  const size_t first = fake.SendInts(id, 0, 100);
  const size_t second = fake.SendInts(id, 100, 50);
  fake.SendEnd({{"id", id}, {"rows", 150}});
  ASSERT_TRUE(result.get().ok());
  EXPECT_EQ(out.rows, 150u);
  EXPECT_EQ(out.batches.size(), 2u);
  EXPECT_TRUE(fake.client->alive());
  // Each batch taken is credited back with its payload size.
  Json credit = fake.Expect(FrameType::kCredit);
  EXPECT_EQ(credit["id"], id);
  EXPECT_EQ(credit["bytes"], first);
  EXPECT_EQ(fake.Expect(FrameType::kCredit)["bytes"], second);
}

// Blocks in its first batch until released.
class StuckConsumer : public CollectingConsumer {
 public:
  Status OnBatch(arrow::OwnedArray batch) override {
    entered.set_value();
    release.get_future().wait();
    return CollectingConsumer::OnBatch(std::move(batch));
  }
  std::promise<void> entered;
  std::promise<void> release;
};

TEST(EnclaveClient, AnEnclaveIgnoringFlowControlFailsItsQueryNotTheKernel) {
  FakeEnclave fake;
  StuckConsumer out;
  auto result = fake.QueryAsync(out, 60s);
  const std::string id = fake.Expect(FrameType::kQuery)["id"];
  fake.SendSchema(id, FakeEnclave::IntFields());
  fake.SendInts(id, 0, 10);
  out.entered.get_future().wait();
  // Far beyond the window, without waiting for credit (about 8 MiB per batch).
  const size_t per_batch = fake.SendInts(id, 0, 1 << 20);
  for (size_t sent = per_batch; sent <= EnclaveClient::kMaxBufferedResultBytes + per_batch;
       sent += per_batch) {
    fake.SendInts(id, 0, 1 << 20);
  }
  // The reader kept reading: other frames still get through.
  ASSERT_TRUE(fake.channel->SendJson(FrameType::kState, {{"state", "sealed"}}).ok());
  EXPECT_FALSE(fake.log.WaitForState("sealed", 5s).is_null());
  out.release.set_value();
  Status status = result.get();
  EXPECT_EQ(status.code(), StatusCode::kInternal);
  EXPECT_THAT(status.message(), HasSubstr("flow control"));
  EXPECT_TRUE(fake.client->alive());
}

TEST(EnclaveClient, ReportsTheEnclavesErrorWithItsCode) {
  FakeEnclave fake;
  CollectingConsumer out;
  auto result = fake.QueryAsync(out);
  const std::string id = fake.Expect(FrameType::kQuery)["id"];
  fake.SendEnd({{"id", id},
                {"rows", 0},
                {"error", std::string(100000, 'e')},
                {"code", "permission_denied"}});
  Status status = result.get();
  EXPECT_EQ(status.code(), StatusCode::kPermissionDenied);
  EXPECT_LE(status.message().size(), EnclaveClient::kMaxErrorTextBytes + 3);
}

TEST(EnclaveClient, AnOversizedFrameEndsTheChannelAndFailsTheQuery) {
  FakeEnclave fake;
  CollectingConsumer out;
  auto result = fake.QueryAsync(out);
  fake.Expect(FrameType::kQuery);
  fake.WriteRaw(Header(0xFFFFFFFFu, static_cast<uint8_t>(FrameType::kResultBatch)));
  Status status = result.get();
  EXPECT_EQ(status.code(), StatusCode::kUnavailable) << status.ToString();
  Json failed = fake.log.WaitForState("failed", 5s);
  ASSERT_FALSE(failed.is_null());
  EXPECT_THAT(failed.value("reason", ""), HasSubstr("exceeds the limit"));
  EXPECT_FALSE(fake.client->alive());
  // Later calls fail fast.
  CollectingConsumer later;
  EXPECT_EQ(fake.client->Query("SELECT 1", later, 1s).code(), StatusCode::kUnavailable);
}

TEST(EnclaveClient, GarbageBytesEndTheChannelWithoutHarm) {
  FakeEnclave fake;
  std::string garbage;
  uint32_t x = 12345;
  for (int i = 0; i < 4096; ++i) {
    x = x * 1103515245u + 12345u;
    garbage.push_back(static_cast<char>(x >> 16));
  }
  fake.WriteRaw(garbage);
  Json failed = fake.log.WaitForState("failed", 5s);
  ASSERT_FALSE(failed.is_null());
  EXPECT_FALSE(fake.client->alive());
}

TEST(EnclaveClient, UnknownFrameTypesAndEnclaveBoundFramesEndTheChannel) {
  {
    FakeEnclave fake;
    fake.WriteRaw(Header(1, 200));
    EXPECT_FALSE(fake.log.WaitForState("failed", 5s).is_null());
  }
  {
    FakeEnclave fake;  // a Query frame makes no sense from an enclave
    ASSERT_TRUE(fake.channel->SendJson(FrameType::kQuery, {{"id", "x"}, {"sql", "1"}}).ok());
    Json failed = fake.log.WaitForState("failed", 5s);
    ASSERT_FALSE(failed.is_null());
    EXPECT_THAT(failed.value("reason", ""), HasSubstr("protocol violation"));
  }
}

TEST(EnclaveClient, MalformedOrDeeplyNestedControlJsonEndsTheChannel) {
  {
    FakeEnclave fake;
    ASSERT_TRUE(fake.channel->Send(FrameType::kState, "{not json").ok());
    EXPECT_FALSE(fake.log.WaitForState("failed", 5s).is_null());
  }
  {
    FakeEnclave fake;  // would overflow a recursive parser's stack
    const std::string deep = std::string(1000000, '[') + std::string(1000000, ']');
    ASSERT_TRUE(fake.channel->Send(FrameType::kProgress, deep).ok());
    EXPECT_FALSE(fake.log.WaitForState("failed", 5s).is_null());
  }
  {
    FakeEnclave fake;  // a state without a state
    ASSERT_TRUE(fake.channel->SendJson(FrameType::kState, {{"tables", 1}}).ok());
    EXPECT_FALSE(fake.log.WaitForState("failed", 5s).is_null());
  }
}

TEST(EnclaveClient, AMalformedBatchFailsOnlyItsQuery) {
  FakeEnclave fake;
  {
    CollectingConsumer out;
    auto result = fake.QueryAsync(out);
    const std::string id = fake.Expect(FrameType::kQuery)["id"];
    fake.SendSchema(id, FakeEnclave::IntFields());
    // A batch that claims a billion rows in a few bytes.
    std::string lying = "ALB1";
    lying += std::string("\x01\x00\x00\x00", 4);
    lying += std::string("\x00\xca\x9a\x3b\x00\x00\x00\x00", 8);
    lying += std::string(16, '\0');
    ASSERT_TRUE(fake.channel->Send(FrameType::kResultBatch, {EncodeIdHeader(id), lying}).ok());
    Status status = result.get();
    EXPECT_EQ(status.code(), StatusCode::kInternal);
    EXPECT_THAT(status.message(), HasSubstr("malformed"));
    // The client told the enclave to stop.
    EXPECT_EQ(fake.Expect(FrameType::kCancel)["id"], id);
    fake.SendEnd({{"id", id}, {"rows", 0}, {"error", "cancelled"}, {"code", "cancelled"}});
  }
  EXPECT_TRUE(fake.client->alive());
  {
    CollectingConsumer out;
    auto result = fake.QueryAsync(out);
    const std::string id = fake.Expect(FrameType::kQuery)["id"];
    fake.SendSchema(id, FakeEnclave::IntFields());
    fake.SendInts(id, 0, 10);
    fake.SendEnd({{"id", id}, {"rows", 10}});
    EXPECT_TRUE(result.get().ok());
    EXPECT_EQ(out.rows, 10u);
  }
}

TEST(EnclaveClient, ProtocolMistakesInAResultFailTheQuery) {
  FakeEnclave fake;
  auto run = [&](const std::function<void(const std::string&)>& script) {
    CollectingConsumer out;
    auto result = fake.QueryAsync(out);
    const std::string id = fake.Expect(FrameType::kQuery)["id"];
    script(id);
    return result.get();
  };
  // A batch before any schema.
  Status status = run([&](const std::string& id) { fake.SendInts(id, 0, 3); });
  EXPECT_EQ(status.code(), StatusCode::kInternal) << status.ToString();
  // Two schemas.
  status = run([&](const std::string& id) {
    fake.SendSchema(id, FakeEnclave::IntFields());
    fake.SendSchema(id, FakeEnclave::IntFields());
  });
  EXPECT_EQ(status.code(), StatusCode::kInternal);
  // Success claimed with a row count that does not match what arrived.
  status = run([&](const std::string& id) {
    fake.SendSchema(id, FakeEnclave::IntFields());
    fake.SendInts(id, 0, 3);
    fake.SendEnd({{"id", id}, {"rows", 4}});
  });
  EXPECT_EQ(status.code(), StatusCode::kInternal);
  // Success without a schema.
  status = run([&](const std::string& id) { fake.SendEnd({{"id", id}, {"rows", 0}}); });
  EXPECT_EQ(status.code(), StatusCode::kInternal);
  // A schema the codec refuses.
  status = run([&](const std::string& id) {
    ASSERT_TRUE(
        fake.channel->Send(FrameType::kResultSchema, {EncodeIdHeader(id), "ALS1junk"}).ok());
  });
  EXPECT_EQ(status.code(), StatusCode::kInternal);
  // Frames for ids nobody asked about are ignored.
  ASSERT_TRUE(fake.channel->SendJson(FrameType::kResultEnd, {{"id", "q999"}, {"rows", 1}}).ok());
  fake.SendSchema("nobody", FakeEnclave::IntFields());
  status = run([&](const std::string& id) {
    fake.SendSchema(id, FakeEnclave::IntFields());
    fake.SendEnd({{"id", id}, {"rows", 0}});
  });
  EXPECT_TRUE(status.ok()) << status.ToString();
  EXPECT_TRUE(fake.client->alive());
}

TEST(EnclaveClient, TheChannelClosingMidQueryFailsItWithUnavailable) {
  FakeEnclave fake;
  CollectingConsumer out;
  auto result = fake.QueryAsync(out);
  const std::string id = fake.Expect(FrameType::kQuery)["id"];
  fake.SendSchema(id, FakeEnclave::IntFields());
  fake.SendInts(id, 0, 5);
  fake.channel.reset();  // the enclave dies
  Status status = result.get();
  EXPECT_EQ(status.code(), StatusCode::kUnavailable) << status.ToString();
  Json failed = fake.log.WaitForState("failed", 5s);
  ASSERT_FALSE(failed.is_null());
  EXPECT_EQ(failed["reason"], "enclave channel closed");
}

TEST(EnclaveClient, CloseFailsInFlightQueriesWithCancelledAndReportsNoFailure) {
  FakeEnclave fake;
  CollectingConsumer out;
  auto result = fake.QueryAsync(out);
  fake.Expect(FrameType::kQuery);
  fake.client->Close();
  EXPECT_EQ(result.get().code(), StatusCode::kCancelled);
  fake.Expect(FrameType::kShutdown);
  EXPECT_TRUE(fake.log.WaitForState("failed", 200ms).is_null());
  EXPECT_FALSE(fake.client->alive());
}

TEST(EnclaveClient, ATimeoutCancelsTheQueryInTheEnclave) {
  FakeEnclave fake;
  CollectingConsumer out;
  const auto start = std::chrono::steady_clock::now();
  auto result = fake.QueryAsync(out, 300ms);
  const std::string id = fake.Expect(FrameType::kQuery)["id"];
  EXPECT_EQ(result.get().code(), StatusCode::kDeadlineExceeded);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  EXPECT_EQ(fake.Expect(FrameType::kCancel)["id"], id);
  // Its late frames are dropped.
  fake.SendSchema(id, FakeEnclave::IntFields());
  fake.SendEnd({{"id", id}, {"rows", 0}});
  EXPECT_TRUE(fake.client->alive());
}

TEST(EnclaveClient, AConsumerCancellationSendsCancel) {
  FakeEnclave fake;
  CollectingConsumer out;
  auto result = fake.QueryAsync(out);
  const std::string id = fake.Expect(FrameType::kQuery)["id"];
  out.cancel.store(true);
  EXPECT_EQ(result.get().code(), StatusCode::kCancelled);
  EXPECT_EQ(fake.Expect(FrameType::kCancel)["id"], id);
}

TEST(EnclaveClient, ListsTablesAndRefusesMalformedListings) {
  FakeEnclave fake;
  auto good = std::async(std::launch::async, [&] { return fake.client->Tables(5s); });
  std::string id = fake.Expect(FrameType::kTables)["id"];
  ASSERT_TRUE(fake.channel
                  ->SendJson(FrameType::kTablesResult,
                             {{"id", id}, {"tables", {{{"name", "t"}, {"rows", 1}}}}})
                  .ok());
  auto tables = good.get();
  ASSERT_TRUE(tables.ok());
  EXPECT_EQ((*tables)["tables"][0]["name"], "t");

  auto bad = std::async(std::launch::async, [&] { return fake.client->Tables(5s); });
  id = fake.Expect(FrameType::kTables)["id"];
  ASSERT_TRUE(fake.channel->SendJson(FrameType::kTablesResult, {{"id", id}, {"tables", 7}}).ok());
  EXPECT_EQ(bad.get().status().code(), StatusCode::kInternal);

  auto late = fake.client->Tables(200ms);
  EXPECT_EQ(late.status().code(), StatusCode::kDeadlineExceeded);
}

TEST(EnclaveClient, RoutesProgressAuditAndState) {
  FakeEnclave fake;
  ASSERT_TRUE(fake.channel->SendJson(FrameType::kProgress, {{"dataset", "a"}, {"rows", 5}}).ok());
  ASSERT_TRUE(fake.channel->SendJson(FrameType::kProgress, {{"audit", {{"event", "x"}}}}).ok());
  ASSERT_TRUE(fake.channel->SendJson(FrameType::kState, {{"state", "sealed"}}).ok());
  ASSERT_FALSE(fake.log.WaitForState("sealed", 5s).is_null());
  ASSERT_EQ(fake.log.progress().size(), 1u);
  EXPECT_EQ(fake.log.progress()[0]["rows"], 5);
  ASSERT_EQ(fake.log.audits().size(), 1u);
  EXPECT_EQ(fake.log.audits()[0]["event"], "x");
}

}  // namespace
}  // namespace airlock::enclave
