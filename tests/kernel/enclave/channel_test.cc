#include "kernel/enclave/channel.h"

#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include <gtest/gtest.h>

namespace airlock::enclave {
namespace {

using namespace std::chrono_literals;

struct Pair {
  Pair(size_t max_frame = kMaxFrameBytes) {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    a = std::make_unique<FrameChannel>(fds[0], max_frame);
    b_fd = fds[1];
    b = std::make_unique<FrameChannel>(fds[1], max_frame);
  }
  std::unique_ptr<FrameChannel> a, b;
  int b_fd;
};

TEST(FrameChannel, CarriesFramesOfEverySize) {
  Pair p;
  std::string big(5 * 1024 * 1024, 'x');
  big[12345] = 'y';
  std::thread writer([&] {
    EXPECT_TRUE(p.a->Send(FrameType::kShutdown, std::string_view()).ok());
    EXPECT_TRUE(p.a->Send(FrameType::kResultBatch, {"ab", "", "cd"}).ok());
    EXPECT_TRUE(p.a->Send(FrameType::kResultBatch, big).ok());
  });
  auto f1 = p.b->Receive(1s);
  ASSERT_TRUE(f1.ok());
  EXPECT_EQ(f1->type, FrameType::kShutdown);
  EXPECT_TRUE(f1->payload.empty());
  auto f2 = p.b->Receive(1s);
  ASSERT_TRUE(f2.ok());
  EXPECT_EQ(f2->payload, "abcd");
  auto f3 = p.b->Receive(5s);
  ASSERT_TRUE(f3.ok());
  EXPECT_EQ(f3->payload, big);
  writer.join();
}

TEST(FrameChannel, RefusesOversizedFramesOnBothSides) {
  Pair p(1024);
  EXPECT_EQ(p.a->Send(FrameType::kSpec, std::string(1024, 'x')).code(),
            StatusCode::kResourceExhausted);
  EXPECT_TRUE(p.a->Send(FrameType::kSpec, std::string(1023, 'x')).ok());
  ASSERT_TRUE(p.b->Receive(1s).ok());

  // A peer announcing 4 GiB is refused before anything is allocated.
  const char header[5] = {'\xff', '\xff', '\xff', '\xff', 5};
  int raw[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, raw), 0);
  FrameChannel reader(raw[0]);
  ASSERT_EQ(::write(raw[1], header, 5), 5);
  auto frame = reader.Receive(1s);
  EXPECT_EQ(frame.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(frame.status().message().find("exceeds the limit"), std::string::npos);
  EXPECT_TRUE(reader.is_shut_down());
  ::close(raw[1]);
}

TEST(FrameChannel, RefusesEmptyAndUnknownFrames) {
  for (const std::string& bytes : {std::string("\0\0\0\0", 4), std::string("\x01\0\0\0\x63", 5)}) {
    int raw[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, raw), 0);
    FrameChannel reader(raw[0]);
    std::string padded = bytes;
    if (padded.size() == 4) padded.push_back('\x01');
    ASSERT_EQ(::write(raw[1], padded.data(), padded.size()), static_cast<ssize_t>(padded.size()));
    EXPECT_EQ(reader.Receive(1s).status().code(), StatusCode::kInvalidArgument);
    ::close(raw[1]);
  }
}

TEST(FrameChannel, TimesOutIdleAndReportsClosure) {
  Pair p;
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(p.b->Receive(100ms).status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_GE(std::chrono::steady_clock::now() - start, 90ms);
  // Still usable after an idle timeout.
  ASSERT_TRUE(p.a->Send(FrameType::kState, "{}").ok());
  EXPECT_TRUE(p.b->Receive(1s).ok());
  p.a.reset();
  EXPECT_EQ(p.b->Receive(1s).status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(p.b->Send(FrameType::kState, "{}").code(), StatusCode::kUnavailable);
}

TEST(FrameChannel, ATruncatedFrameIsUnavailable) {
  int raw[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, raw), 0);
  FrameChannel reader(raw[0]);
  const char partial[7] = {10, 0, 0, 0, 3, 'a', 'b'};
  ASSERT_EQ(::write(raw[1], partial, 7), 7);
  ::close(raw[1]);
  auto frame = reader.Receive(1s);
  EXPECT_EQ(frame.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(frame.status().message().find("middle of a frame"), std::string::npos);
}

TEST(FrameChannel, ShutdownWakesABlockedReaderAndWriter) {
  Pair p;
  std::thread reader([&] { EXPECT_FALSE(p.b->Receive().ok()); });
  std::this_thread::sleep_for(50ms);
  p.b->Shutdown();
  reader.join();

  // A writer blocked on a peer that does not read.
  Pair q;
  std::thread writer([&] {
    const std::string chunk(1024 * 1024, 'z');
    Status status;
    for (int i = 0; i < 64 && status.ok(); ++i) status = q.a->Send(FrameType::kResultBatch, chunk);
    EXPECT_FALSE(status.ok());
  });
  std::this_thread::sleep_for(100ms);
  q.a->Shutdown();
  writer.join();
}

TEST(FrameChannel, AWriteThatCannotFinishTimesOut) {
  Pair p;
  const std::string chunk(4 * 1024 * 1024, 'z');
  Status status;
  for (int i = 0; i < 16 && status.ok(); ++i) {
    status = p.a->Send(FrameType::kResultBatch, chunk, 100ms);
  }
  EXPECT_EQ(status.code(), StatusCode::kDeadlineExceeded);
  EXPECT_TRUE(p.a->is_shut_down());
}

TEST(FrameChannel, ADescriptorTravelsWithItsFrameOnly) {
  Pair p;
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  ASSERT_TRUE(p.a->Send(FrameType::kProgress, "before").ok());
  ASSERT_TRUE(p.a->SendWithFd(FrameType::kDialResult, R"({"id":"d1"})", pipe_fds[1]).ok());
  ASSERT_TRUE(p.a->Send(FrameType::kProgress, "after").ok());
  ::close(pipe_fds[1]);  // the receiver's copy keeps the pipe open

  auto before = p.b->Receive(1s);
  ASSERT_TRUE(before.ok());
  EXPECT_FALSE(before->fd.valid());
  auto carrying = p.b->Receive(1s);
  ASSERT_TRUE(carrying.ok());
  EXPECT_EQ(carrying->type, FrameType::kDialResult);
  ASSERT_TRUE(carrying->fd.valid());
  ASSERT_EQ(::write(carrying->fd.get(), "z", 1), 1);  // it is the pipe's write end
  char got = 0;
  ASSERT_EQ(::read(pipe_fds[0], &got, 1), 1);
  EXPECT_EQ(got, 'z');
  auto after = p.b->Receive(1s);
  ASSERT_TRUE(after.ok());
  EXPECT_FALSE(after->fd.valid());
  // Dropping the frame closes the received descriptor: the pipe sees EOF.
  carrying->fd.Reset();
  EXPECT_EQ(::read(pipe_fds[0], &got, 1), 0);
  ::close(pipe_fds[0]);
}

TEST(ChannelHelpers, IdPayloadsRoundTripAndRejectNonsense) {
  std::string payload = EncodeIdHeader("q17") + "rest";
  std::string_view id, rest;
  ASSERT_TRUE(DecodeIdPayload(payload, &id, &rest).ok());
  EXPECT_EQ(id, "q17");
  EXPECT_EQ(rest, "rest");
  EXPECT_FALSE(DecodeIdPayload("", &id, &rest).ok());
  EXPECT_FALSE(DecodeIdPayload(std::string("\x05\x00"
                                           "ab",
                                           4),
                               &id, &rest)
                   .ok());
  EXPECT_FALSE(DecodeIdPayload(std::string("\x00\x00", 2), &id, &rest).ok());
  EXPECT_FALSE(
      DecodeIdPayload(EncodeIdHeader(std::string(kMaxQueryIdBytes + 1, 'i')), &id, &rest).ok());
}

TEST(ChannelHelpers, ParsesOnlyShallowJsonObjects) {
  EXPECT_TRUE(ParseJsonObject(R"({"a":[1,{"b":"[[[["}]})", "x").ok());
  EXPECT_FALSE(ParseJsonObject("[1]", "x").ok());
  EXPECT_FALSE(ParseJsonObject("{", "x").ok());
  EXPECT_FALSE(ParseJsonObject(std::string(100, '[') + std::string(100, ']'), "x").ok());
  EXPECT_EQ(StatusCodeFromName("permission_denied"), StatusCode::kPermissionDenied);
  EXPECT_EQ(StatusCodeFromName("nonsense"), StatusCode::kUnknown);
}

}  // namespace
}  // namespace airlock::enclave
