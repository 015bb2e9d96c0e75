#include "airlock/cpp/masking.hpp"

#include <gtest/gtest.h>

#include <string>

namespace airlock::scope {
namespace {

TEST(MaskingTest, HashIsHexSha256) {
  EXPECT_EQ(MaskHash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(MaskHash(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(MaskingTest, ApplyMaskByName) {
  EXPECT_EQ(*ApplyMask("redact", "secret"), "***");
  EXPECT_EQ(*ApplyMask("last4", "4111111111111111"), "****1111");
  EXPECT_EQ(*ApplyMask("hash", "abc"), MaskHash("abc"));
  auto unknown = ApplyMask("reveal", "secret");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(unknown.status().message().find("secret"), std::string::npos);
}

TEST(MaskingTest, TypedValuesMaskTheirCanonicalText) {
  Masker masker;
  std::string out;
  ASSERT_TRUE(masker.Mask(MaskFunction::kHash, Value::Int64(42), &out));
  EXPECT_EQ(out, MaskHash("42"));
  ASSERT_TRUE(masker.Mask(MaskFunction::kLast4, Value::Int64(123456), &out));
  EXPECT_EQ(out, "****3456");
  ASSERT_TRUE(masker.Mask(MaskFunction::kRedact, Value::Date32(0), &out));
  EXPECT_EQ(out, "***");
  EXPECT_FALSE(masker.Mask(MaskFunction::kRedact, Value::Null(), &out));  // NULL stays NULL
}

}  // namespace
}  // namespace airlock::scope
