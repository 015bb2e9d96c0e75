#include "kernel/state/page_token.h"

#include <gtest/gtest.h>

#include "kernel/common/crypto.h"

namespace airlock {
namespace {

TEST(PageTokenTest, RoundTrips) {
  for (const PageCursor& cursor : {PageCursor{0, "a"}, PageCursor{1718000000123456, "req-42"},
                                   PageCursor{-5, "id:with:colons"}}) {
    auto decoded = DecodePageToken(EncodePageToken(cursor));
    ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
    EXPECT_EQ(decoded->created_at_us, cursor.created_at_us);
    EXPECT_EQ(decoded->id, cursor.id);
  }
}

TEST(PageTokenTest, RejectsMalformedTokens) {
  const std::string tokens[] = {
      "",
      "zz",                                        // not hex
      "abc",                                       // odd length
      HexEncode("v2:1:a"),                         // unknown version
      HexEncode("v1:1"),                           // no id
      HexEncode("v1:1:"),                          // empty id
      HexEncode("v1::a"),                          // no time
      HexEncode("v1:12x:a"),                       // time not a number
      HexEncode("v1:99999999999999999999:a"),      // time overflows
      HexEncode("v1:1:" + std::string(300, 'x')),  // id too long
      "7631A3A31A61",                              // upper-case hex is not ours
  };
  for (const auto& token : tokens) {
    auto decoded = DecodePageToken(token);
    EXPECT_FALSE(decoded.ok()) << token;
    EXPECT_EQ(decoded.status().code(), StatusCode::kInvalidArgument) << token;
  }
}

}  // namespace
}  // namespace airlock
