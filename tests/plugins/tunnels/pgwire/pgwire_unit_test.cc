// The pgwire plugin's pure pieces: SQL lexing and parameter substitution,
// parameter literals, value encoding and the SCRAM exchange.
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "airlock/cpp/arrow.hpp"
#include "plugins/tunnels/pgwire/scram.h"
#include "plugins/tunnels/pgwire/sql_text.h"
#include "plugins/tunnels/pgwire/types.h"

namespace airlock::tunnels::pgwire {
namespace {

TEST(SqlText, SplitsAtTopLevelSemicolonsOnly) {
  const auto parts =
      SplitStatements("SELECT 'a;b'; SELECT \"x;y\" FROM t -- c;d\n; /* e;f */ ; SELECT $$g;h$$;");
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0], "SELECT 'a;b'");
  EXPECT_EQ(parts[1], " SELECT \"x;y\" FROM t -- c;d\n");
  EXPECT_EQ(parts[2], " SELECT $$g;h$$");
  EXPECT_TRUE(SplitStatements("  -- nothing\n /* at all */ ;; ").empty());
}

TEST(SqlText, SubstitutesParametersOutsideQuotesAndComments) {
  const std::string sql = "SELECT $1, '$1', \"$2\", x$1, E'\\'$1' -- $1\n, $2 /* $1 */";
  EXPECT_EQ(MaxParameterIndex(sql), 2);
  auto out = SubstituteParameters(sql, {"'v'", "(-3)"});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, "SELECT 'v', '$1', \"$2\", x$1, E'\\'$1' -- $1\n, (-3) /* $1 */");
  EXPECT_FALSE(SubstituteParameters("SELECT $3", {"1"}).ok());
}

TEST(SqlText, KeywordsAndQuoting) {
  EXPECT_EQ(FirstKeyword("  /* c */ (select 1)"), "SELECT");
  EXPECT_EQ(SecondWord("show TimeZone"), "TIMEZONE");
  EXPECT_TRUE(IsWriteKeyword("DELETE"));
  EXPECT_FALSE(IsWriteKeyword("SELECT"));
  EXPECT_EQ(QuoteLiteral("O'Hara"), "'O''Hara'");
}

TEST(ParameterLiterals, TextFormat) {
  std::string lit;
  EXPECT_FALSE(ParameterLiteral(oid::kInt4, 0, "42", &lit));
  EXPECT_EQ(lit, "42");
  EXPECT_FALSE(ParameterLiteral(oid::kInt8, 0, " -7 ", &lit));
  EXPECT_EQ(lit, "(-7)");  // never "--7", a comment
  EXPECT_EQ(ParameterLiteral(oid::kInt4, 0, "1 OR 1=1", &lit)->sqlstate, "22P02");
  EXPECT_FALSE(ParameterLiteral(oid::kFloat8, 0, "2.5", &lit));
  EXPECT_EQ(lit, "2.5");
  EXPECT_FALSE(ParameterLiteral(oid::kFloat8, 0, "3", &lit));
  EXPECT_EQ(lit, "3.0");
  EXPECT_FALSE(ParameterLiteral(oid::kBool, 0, "on", &lit));
  EXPECT_EQ(lit, "TRUE");
  EXPECT_FALSE(ParameterLiteral(oid::kBytea, 0, "\\x00ff", &lit));
  EXPECT_EQ(lit, "X'00ff'");
  EXPECT_FALSE(ParameterLiteral(oid::kUnspecified, 0, "it's", &lit));
  EXPECT_EQ(lit, "'it''s'");
  EXPECT_FALSE(ParameterLiteral(oid::kText, 0, std::nullopt, &lit));
  EXPECT_EQ(lit, "NULL");
  EXPECT_EQ(ParameterLiteral(oid::kText, 0, std::string_view("a\0b", 3), &lit)->sqlstate, "22021");
  EXPECT_EQ(ParameterLiteral(oid::kText, 0, "\xff", &lit)->sqlstate, "22021");
}

TEST(ParameterLiterals, BinaryFormat) {
  std::string lit;
  EXPECT_FALSE(ParameterLiteral(oid::kInt4, 1, std::string_view("\xff\xff\xff\xfe", 4), &lit));
  EXPECT_EQ(lit, "(-2)");
  EXPECT_FALSE(ParameterLiteral(oid::kDate, 1, std::string_view("\0\0\0\0", 4), &lit));
  EXPECT_EQ(lit, "'2000-01-01'");
  EXPECT_EQ(ParameterLiteral(oid::kInt8, 1, std::string_view("\0\0", 2), &lit)->sqlstate, "22P03");
  EXPECT_EQ(ParameterLiteral(oid::kUnspecified, 1, "x", &lit)->sqlstate, "42P18");
}

TEST(Values, TextAndBinaryEncodings) {
  std::vector<arrow::Field> fields = {{"i", arrow::Type::kInt32},
                                      {"f", arrow::Type::kFloat64},
                                      {"t", arrow::Type::kTimestampMicros, "UTC"},
                                      {"b", arrow::Type::kBinary}};
  arrow::RecordBatchBuilder builder(fields);
  builder.AppendInt32(0, -5);
  builder.AppendDouble(1, 0.1);
  builder.AppendTimestamp(2, 946684800000000);  // 2000-01-01 00:00:00 UTC
  builder.AppendString(3, std::string_view("\x01\xab", 2));
  auto batch = builder.Finish();
  auto view = arrow::BatchView::Make(fields, *batch.get());
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(OidFor(fields[0]), oid::kInt4);
  EXPECT_EQ(OidFor(fields[2]), oid::kTimestamptz);
  std::string out;
  AppendText(out, *view, 0, 0);
  EXPECT_EQ(out, "-5");
  out.clear();
  AppendText(out, *view, 1, 0);
  EXPECT_EQ(out, "0.1");
  out.clear();
  AppendText(out, *view, 2, 0);
  EXPECT_EQ(out, "2000-01-01 00:00:00+00");
  out.clear();
  AppendText(out, *view, 3, 0);
  EXPECT_EQ(out, "\\x01ab");
  out.clear();
  AppendBinary(out, *view, 0, 0);
  EXPECT_EQ(out, std::string("\xff\xff\xff\xfb", 4));
  out.clear();
  AppendBinary(out, *view, 2, 0);
  EXPECT_EQ(out, std::string(8, '\0'));  // PostgreSQL's epoch
}

// The client side of SCRAM-SHA-256, computed independently with OpenSSL.
std::string ClientFinal(const std::string& password, const std::string& client_first_bare,
                        const std::string& server_first) {
  const auto attr = [&](char name) {
    const size_t at = server_first.find(std::string(1, name) + "=");
    const size_t end = server_first.find(',', at);
    return server_first.substr(at + 2, end == std::string::npos ? std::string::npos : end - at - 2);
  };
  std::string salt;
  EXPECT_TRUE(Base64Decode(attr('s'), &salt));
  const int iterations = std::stoi(attr('i'));
  unsigned char salted[32], client_key[32], stored[32], signature[32];
  PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                    reinterpret_cast<const unsigned char*>(salt.data()),
                    static_cast<int>(salt.size()), iterations, EVP_sha256(), 32, salted);
  unsigned int n = 0;
  HMAC(EVP_sha256(), salted, 32, reinterpret_cast<const unsigned char*>("Client Key"), 10,
       client_key, &n);
  SHA256(client_key, 32, stored);
  const std::string without_proof = "c=biws,r=" + attr('r');
  const std::string auth = client_first_bare + "," + server_first + "," + without_proof;
  HMAC(EVP_sha256(), stored, 32, reinterpret_cast<const unsigned char*>(auth.data()), auth.size(),
       signature, &n);
  std::string proof(32, '\0');
  for (int i = 0; i < 32; ++i) proof[i] = static_cast<char>(client_key[i] ^ signature[i]);
  return without_proof + ",p=" + Base64Encode(proof);
}

TEST(Scram, AcceptsTheRightPasswordOnly) {
  auto issued = IssuePassword(4096);
  ASSERT_TRUE(issued.ok());
  for (const bool right : {true, false}) {
    ScramExchange exchange(issued->verifier());
    const std::string bare = "n=,r=clientnonce123";
    auto server_first = exchange.OnClientFirst("n,," + bare);
    ASSERT_TRUE(server_first.ok()) << server_first.status().message();
    EXPECT_TRUE(server_first->starts_with("r=clientnonce123"));
    const std::string password = right ? issued->password() : issued->password() + "x";
    auto final = exchange.OnClientFinal(ClientFinal(password, bare, *server_first));
    EXPECT_EQ(final.ok(), right);
    if (!right) {
      EXPECT_EQ(final.status().code(), StatusCode::kUnauthenticated);
    }
  }
}

TEST(Scram, RefusesMalformedAndChannelBoundMessages) {
  auto issued = IssuePassword(4096);
  ASSERT_TRUE(issued.ok());
  ScramExchange exchange(issued->verifier());
  EXPECT_FALSE(exchange.OnClientFirst("p=tls-server-end-point,,n=,r=abc").ok());
  EXPECT_FALSE(exchange.OnClientFirst("n,a=admin,n=,r=abc").ok());
  EXPECT_FALSE(exchange.OnClientFirst("garbage").ok());
  EXPECT_FALSE(exchange.OnClientFinal("c=biws,r=x,p=AAAA").ok());  // before client-first
  ASSERT_TRUE(exchange.OnClientFirst("n,,n=,r=abc").ok());
  EXPECT_EQ(exchange.OnClientFinal("c=biws,r=wrongnonce,p=AAAA").status().code(),
            StatusCode::kInvalidArgument);
}

// A verifier kept as text by one kernel replica authenticates the same
// password in another replica's tunnel, and nothing else passes for one.
TEST(Scram, AVerifierAsTextAcceptsTheSamePasswordAfterARoundTrip) {
  auto issued = IssuePassword(4096);
  ASSERT_TRUE(issued.ok());
  const std::string text = VerifierText(issued->verifier());
  EXPECT_TRUE(text.starts_with("SCRAM-SHA-256$4096:")) << text;
  EXPECT_EQ(text.find(issued->password()), std::string::npos);
  auto parsed = ParseVerifierText(text, 4096);
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  for (const bool right : {true, false}) {
    ScramExchange exchange(*parsed);
    const std::string bare = "n=,r=othernonce";
    auto server_first = exchange.OnClientFirst("n,," + bare);
    ASSERT_TRUE(server_first.ok());
    const std::string password = right ? issued->password() : "x" + issued->password();
    EXPECT_EQ(exchange.OnClientFinal(ClientFinal(password, bare, *server_first)).ok(), right);
  }
  const std::string salt_and_keys = text.substr(text.find(':'));
  for (const std::string& bad :
       {std::string("SCRAM-SHA-256$100") + salt_and_keys,  // too few iterations
        std::string("SCRAM-SHA-1$4096") + salt_and_keys, text.substr(0, text.size() - 4),
        text + "$", std::string("SCRAM-SHA-256$40x6") + salt_and_keys, std::string(),
        std::string(300, 'S')}) {
    auto refused = ParseVerifierText(bad, 4096);
    EXPECT_FALSE(refused.ok()) << bad;
    if (!refused.ok()) {
      EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
    }
  }
}

TEST(Base64, RoundTrips) {
  for (const std::string& text :
       std::vector<std::string>{"", "a", "ab", "abc", "abcd", std::string("\0\xff", 2)}) {
    std::string back;
    ASSERT_TRUE(Base64Decode(Base64Encode(text), &back));
    EXPECT_EQ(back, text);
  }
  std::string out;
  EXPECT_FALSE(Base64Decode("a=bc", &out));
  EXPECT_FALSE(Base64Decode("abc", &out));
}

}  // namespace
}  // namespace airlock::tunnels::pgwire
