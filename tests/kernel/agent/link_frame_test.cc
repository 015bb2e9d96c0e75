#include "kernel/agent/link_frame.h"

#include <gtest/gtest.h>

namespace airlock::agent {
namespace {

const unsigned char* Bytes(const std::string& s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

TEST(LinkFrame, RoundTripsHeaderAndPayload) {
  const std::string frame = EncodeLinkFrame(LinkFrameType::kEnclave, 0x01020304, "hello");
  ASSERT_EQ(frame.size(), kLinkHeaderBytes + 5);
  // Little-endian length of type + stream + payload.
  EXPECT_EQ(static_cast<unsigned char>(frame[0]), 10);
  EXPECT_EQ(frame[1], 0);
  EXPECT_EQ(static_cast<unsigned char>(frame[4]), 2);
  EXPECT_EQ(static_cast<unsigned char>(frame[5]), 0x04);
  EXPECT_EQ(static_cast<unsigned char>(frame[8]), 0x01);
  auto header = DecodeLinkHeader(Bytes(frame), kMaxLinkFrameBytes);
  ASSERT_TRUE(header.ok()) << header.status().ToString();
  EXPECT_EQ(header->type, LinkFrameType::kEnclave);
  EXPECT_EQ(header->stream, 0x01020304u);
  EXPECT_EQ(header->payload_bytes, 5u);
  EXPECT_EQ(frame.substr(kLinkHeaderBytes), "hello");
}

TEST(LinkFrame, EmptyPayloadIsAllowed) {
  const std::string frame = EncodeLinkFrame(LinkFrameType::kControl, 0, "");
  auto header = DecodeLinkHeader(Bytes(frame), kMaxLinkFrameBytes);
  ASSERT_TRUE(header.ok());
  EXPECT_EQ(header->payload_bytes, 0u);
}

TEST(LinkFrame, RefusesOversizedFramesBeforeAllocating) {
  std::string frame = EncodeLinkFrame(LinkFrameType::kEnclave, 7, std::string(100, 'x'));
  auto small = DecodeLinkHeader(Bytes(frame), 64);
  ASSERT_FALSE(small.ok());
  EXPECT_EQ(small.status().code(), StatusCode::kResourceExhausted);
  // A forged length of 4 GiB - 1 is refused on its header alone.
  frame[0] = frame[1] = frame[2] = frame[3] = static_cast<char>(0xff);
  EXPECT_EQ(DecodeLinkHeader(Bytes(frame), kMaxLinkFrameBytes).status().code(),
            StatusCode::kResourceExhausted);
}

TEST(LinkFrame, RefusesMalformedHeaders) {
  std::string frame = EncodeLinkFrame(LinkFrameType::kEnclave, 7, "x");
  std::string bad_type = frame;
  bad_type[4] = 9;
  EXPECT_EQ(DecodeLinkHeader(Bytes(bad_type), kMaxLinkFrameBytes).status().code(),
            StatusCode::kInvalidArgument);
  std::string zero_type = frame;
  zero_type[4] = 0;
  EXPECT_FALSE(DecodeLinkHeader(Bytes(zero_type), kMaxLinkFrameBytes).ok());
  std::string too_short = frame;
  too_short[0] = 4;
  EXPECT_EQ(DecodeLinkHeader(Bytes(too_short), kMaxLinkFrameBytes).status().code(),
            StatusCode::kInvalidArgument);
  // Control frames live on stream 0 and data frames never do.
  const std::string control_off_zero = EncodeLinkFrame(LinkFrameType::kControl, 3, "{}");
  EXPECT_FALSE(DecodeLinkHeader(Bytes(control_off_zero), kMaxLinkFrameBytes).ok());
  const std::string data_on_zero = EncodeLinkFrame(LinkFrameType::kEnclave, 0, "x");
  EXPECT_FALSE(DecodeLinkHeader(Bytes(data_on_zero), kMaxLinkFrameBytes).ok());
  const std::string closed_on_zero = EncodeLinkFrame(LinkFrameType::kClosed, 0, "{}");
  EXPECT_FALSE(DecodeLinkHeader(Bytes(closed_on_zero), kMaxLinkFrameBytes).ok());
}

TEST(LinkFrame, CarriesEnclaveFramesWithTheirType) {
  const std::string payload = EncodeEnclavePayload(enclave::FrameType::kQuery, R"({"id":"q1"})");
  enclave::FrameType type;
  std::string_view inner;
  ASSERT_TRUE(DecodeEnclavePayload(payload, &type, &inner).ok());
  EXPECT_EQ(type, enclave::FrameType::kQuery);
  EXPECT_EQ(inner, R"({"id":"q1"})");
  EXPECT_FALSE(DecodeEnclavePayload("", &type, &inner).ok());
  EXPECT_FALSE(DecodeEnclavePayload(std::string(1, '\0'), &type, &inner).ok());
  EXPECT_FALSE(DecodeEnclavePayload(std::string(1, static_cast<char>(99)), &type, &inner).ok());
  ASSERT_TRUE(
      DecodeEnclavePayload(EncodeEnclavePayload(enclave::FrameType::kShutdown, ""), &type, &inner)
          .ok());
  EXPECT_EQ(type, enclave::FrameType::kShutdown);
  EXPECT_TRUE(inner.empty());
}

}  // namespace
}  // namespace airlock::agent
