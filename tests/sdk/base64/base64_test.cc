// The SDK's base64 (airlock/cpp/base64url.hpp): RFC 4648's test vectors in
// both alphabets, and the strictness that gives each value one encoding.
#include "airlock/cpp/base64url.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace airlock::sdk {
namespace {

TEST(Base64, Rfc4648VectorsInBothAlphabets) {
  const std::vector<std::pair<std::string, std::string>> vectors = {{"", ""},
                                                                    {"f", "Zg=="},
                                                                    {"fo", "Zm8="},
                                                                    {"foo", "Zm9v"},
                                                                    {"foob", "Zm9vYg=="},
                                                                    {"fooba", "Zm9vYmE="},
                                                                    {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(Base64Encode(plain), encoded);
    EXPECT_EQ(Base64Decode(encoded), plain) << encoded;
    std::string url = encoded;
    while (!url.empty() && url.back() == '=') url.pop_back();
    EXPECT_EQ(Base64UrlEncode(plain), url);
    EXPECT_EQ(Base64UrlDecode(url), plain) << url;
  }
  // The two alphabets differ in their last two characters.
  const std::string bytes("\xfb\xff\xbf", 3);
  EXPECT_EQ(Base64Encode(bytes), "+/+/");
  EXPECT_EQ(Base64UrlEncode(bytes), "-_-_");
  EXPECT_EQ(Base64Decode("+/+/"), bytes);
  EXPECT_EQ(Base64UrlDecode("-_-_"), bytes);
}

TEST(Base64, EveryValueHasOneAcceptedEncoding) {
  for (const char* bad :
       {"Zg", "Zg=", "Zm9", "Z===", "====", "Zh==", "Zm9vYg==\n", "Zm 9v", "-_-_", "Zg==Zg=="}) {
    EXPECT_FALSE(Base64Decode(bad).has_value()) << bad;
  }
  for (const char* bad : {"Zg==", "Zh", "Z", "+/+/", "Zm9v!"}) {
    EXPECT_FALSE(Base64UrlDecode(bad).has_value()) << bad;
  }
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  EXPECT_EQ(Base64Decode(Base64Encode(all)), all);
  EXPECT_EQ(Base64UrlDecode(Base64UrlEncode(all)), all);
}

}  // namespace
}  // namespace airlock::sdk
