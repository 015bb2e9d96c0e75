// Decoding of frontend message bodies (plugins/tunnels/pgwire/messages.h):
// the layouts a session acts on and the malformed bodies it must refuse.
#include "plugins/tunnels/pgwire/messages.h"

#include <cstdint>
#include <string>

#include <gtest/gtest.h>

namespace airlock::tunnels::pgwire {
namespace {

std::string CStr(const std::string& text) {
  return text + std::string(1, '\0');
}

std::string Int16(int16_t v) {
  const auto u = static_cast<uint16_t>(v);
  return {static_cast<char>(u >> 8), static_cast<char>(u & 0xff)};
}

std::string Int32(int32_t v) {
  const auto u = static_cast<uint32_t>(v);
  return {static_cast<char>(u >> 24), static_cast<char>((u >> 16) & 0xff),
          static_cast<char>((u >> 8) & 0xff), static_cast<char>(u & 0xff)};
}

TEST(StartupParameters, ReadsTheKnownPairsAndNamesProtocolOptions) {
  const std::string long_name(100, 'a');
  auto p = DecodeStartupParameters(CStr("user") + CStr("req_1") + CStr("database") + CStr("db") +
                                   CStr("application_name") + CStr(long_name) + CStr("_pq_.x") +
                                   CStr("1") + CStr("options") + CStr("-c") + CStr(""));
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->user, "req_1");
  EXPECT_EQ(p->database, "db");
  EXPECT_EQ(p->application_name, std::string(63, 'a'));
  ASSERT_EQ(p->unrecognized.size(), 1u);
  EXPECT_EQ(p->unrecognized[0], "_pq_.x");
  EXPECT_FALSE(p->replication);
}

TEST(StartupParameters, RefusesAnInvalidLayout) {
  EXPECT_FALSE(DecodeStartupParameters("").has_value());                        // no terminator
  EXPECT_FALSE(DecodeStartupParameters(CStr("user") + "req").has_value());      // value without NUL
  EXPECT_FALSE(DecodeStartupParameters(CStr("user") + CStr("r")).has_value());  // no end
}

TEST(StartupParameters, FlagsReplicationUnlessItIsOff) {
  for (const char* off : {"false", "OFF", "no", "0"}) {
    auto p = DecodeStartupParameters(CStr("replication") + CStr(off) + CStr(""));
    ASSERT_TRUE(p.has_value()) << off;
    EXPECT_FALSE(p->replication) << off;
  }
  auto p = DecodeStartupParameters(CStr("replication") + CStr("database") + "garbage");
  ASSERT_TRUE(p.has_value());
  EXPECT_TRUE(p->replication);
}

TEST(FrontendMessages, ParseAndItsDeclaredTypes) {
  // Decoded messages are views into the body, so the body must outlive them.
  const std::string body = CStr("s1") + CStr("SELECT $1") + Int16(2) + Int32(23) + Int32(-1);
  auto m = DecodeParse(body);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->name, "s1");
  EXPECT_EQ(m->query, "SELECT $1");
  ASSERT_EQ(m->parameter_types.size(), 2u);
  EXPECT_EQ(m->parameter_types[0], 23u);
  EXPECT_EQ(m->parameter_types[1], 0xffffffffu);
  // A count the body cannot hold, a negative count, trailing bytes.
  EXPECT_FALSE(DecodeParse(CStr("") + CStr("SELECT 1") + Int16(32767)).has_value());
  EXPECT_FALSE(DecodeParse(CStr("") + CStr("SELECT 1") + Int16(-1)).has_value());
  EXPECT_FALSE(DecodeParse(CStr("") + CStr("SELECT 1") + Int16(0) + "x").has_value());
}

TEST(FrontendMessages, BindWithNullsFormatsAndResultFormats) {
  const std::string body = CStr("p") + CStr("s") + Int16(1) + Int16(1) + Int16(2) + Int32(-1) +
                           Int32(3) + "abc" + Int16(1) + Int16(0);
  auto m = DecodeBind(body);
  ASSERT_TRUE(m.has_value());
  EXPECT_EQ(m->portal, "p");
  EXPECT_EQ(m->statement, "s");
  ASSERT_EQ(m->parameter_formats.size(), 1u);
  ASSERT_EQ(m->values.size(), 2u);
  EXPECT_FALSE(m->values[0].has_value());
  EXPECT_EQ(m->values[1], "abc");
  ASSERT_EQ(m->result_formats.size(), 1u);
  EXPECT_EQ(m->result_formats[0], 0);
  // Every truncation of a valid body is refused, as is a length below -1.
  for (size_t n = 0; n < body.size(); ++n) EXPECT_FALSE(DecodeBind(body.substr(0, n))) << n;
  EXPECT_FALSE(DecodeBind(CStr("") + CStr("") + Int16(0) + Int16(1) + Int32(-2) + Int16(0)));
  EXPECT_FALSE(DecodeBind(CStr("") + CStr("") + Int16(0) + Int16(32767) + Int16(0)));
}

TEST(FrontendMessages, QueryTargetsExecuteAndSasl) {
  const std::string query_body = CStr("SELECT 1");
  EXPECT_EQ(DecodeQuery(query_body), "SELECT 1");
  EXPECT_FALSE(DecodeQuery("SELECT 1").has_value());
  EXPECT_FALSE(DecodeQuery(CStr("a") + "b").has_value());

  const std::string target_body = "P" + CStr("portal");
  auto target = DecodeTarget(target_body);
  ASSERT_TRUE(target.has_value());
  EXPECT_EQ(target->kind, 'P');
  EXPECT_EQ(target->name, "portal");
  EXPECT_FALSE(DecodeTarget("").has_value());
  EXPECT_FALSE(DecodeTarget("S").has_value());

  const std::string execute_body = CStr("p") + Int32(10);
  auto execute = DecodeExecute(execute_body);
  ASSERT_TRUE(execute.has_value());
  EXPECT_EQ(execute->portal, "p");
  EXPECT_EQ(execute->max_rows, 10);
  EXPECT_FALSE(DecodeExecute(CStr("p") + Int16(1)).has_value());

  const std::string sasl_body = CStr("SCRAM-SHA-256") + Int32(3) + "n,,";
  auto sasl = DecodeSaslInitialResponse(sasl_body);
  ASSERT_TRUE(sasl.has_value());
  EXPECT_EQ(sasl->mechanism, "SCRAM-SHA-256");
  EXPECT_EQ(sasl->data, "n,,");
  EXPECT_FALSE(DecodeSaslInitialResponse(CStr("SCRAM-SHA-256") + Int32(4) + "n,,"));
  EXPECT_FALSE(DecodeSaslInitialResponse(CStr("SCRAM-SHA-256") + Int32(-1)));
}

}  // namespace
}  // namespace airlock::tunnels::pgwire
