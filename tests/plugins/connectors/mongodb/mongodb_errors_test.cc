// Failure modes of the mongodb connector, each with its own status code and
// no secret in any message or log line: unreachable server, missing
// collection, bad credentials (a real SCRAM-SHA-256 exchange with the test
// server), not authorized, and configuration mistakes. Credentials are
// secret references resolved at pull time by the kernel's resolver.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>

#include "tests/plugins/connectors/mongodb/mongo_fixture.h"
#include "tests/support/temp_dir.h"

namespace airlock::mongo_test {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kPassword[] = "Pa55-word-7f3a9c";
constexpr char kWrong[] = "wrong-0d9e4b21";

// A port on 127.0.0.1 nothing listens on (bound, never listened, closed).
uint16_t ClosedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

class MongoErrorsTest : public MongoFixture {
 protected:
  void SetUp() override {
    testing::mongodb::MongoServerOptions options;
    options.users = {{"reader", kPassword}};
    options.forbidden_namespaces = {"db.payroll"};
    StartServer(options);
    Seed("t", {R"({"a": 1})"});
    Seed("payroll", {R"({"a": 2})"});
    ::setenv("AIRLOCK_TEST_MONGO_PASSWORD", kPassword, 1);
    ::setenv("AIRLOCK_TEST_MONGO_WRONG", kWrong, 1);
  }

  Json AuthConfig(const std::string& reference) const {
    return Config({{"username", "reader"}, {"password_secret", reference}});
  }

  void ExpectNoSecret(const PullResult& r) const {
    EXPECT_THAT(r.message, Not(HasSubstr(kPassword)));
    EXPECT_THAT(r.message, Not(HasSubstr(kWrong)));
    for (const auto& line : host_.logs()) {
      EXPECT_THAT(line, Not(HasSubstr(kPassword)));
      EXPECT_THAT(line, Not(HasSubstr(kWrong)));
    }
  }
};

TEST_F(MongoErrorsTest, RightCredentialsFromEnvAndFileWork) {
  Collector sink;
  const int released_before = SecretHost::released();
  PullResult r = Pull(AuthConfig("env:AIRLOCK_TEST_MONGO_PASSWORD"), "t", Json::object(), sink);
  ASSERT_EQ(r.status, AIRLOCK_OK) << r.message;
  EXPECT_EQ(sink.rows.size(), 1u);
  // Resolved at pull time and released (wiped) before the pull returned.
  EXPECT_EQ(SecretHost::released() - released_before, 1);

  test::TempDir dir;
  std::ofstream(dir.File("pw")) << kPassword << "\n";
  Collector sink2;
  r = Pull(AuthConfig("file:" + dir.File("pw")), "t", Json::object(), sink2);
  ASSERT_EQ(r.status, AIRLOCK_OK) << r.message;
  EXPECT_EQ(sink2.rows.size(), 1u);
}

TEST_F(MongoErrorsTest, CreateResolvesNoSecret) {
  const int resolved_before = host_.resolved();
  testing::DlInstance<airlock_type_connector_vtable> instance(
      table(), AuthConfig("env:AIRLOCK_TEST_MONGO_PASSWORD").dump());
  ASSERT_TRUE(instance.ok()) << instance.error();
  EXPECT_EQ(host_.resolved(), resolved_before);
}

TEST_F(MongoErrorsTest, BadCredentialsAreUnauthenticated) {
  Collector sink;
  PullResult r = Pull(AuthConfig("env:AIRLOCK_TEST_MONGO_WRONG"), "t", Json::object(), sink);
  EXPECT_EQ(r.status, AIRLOCK_ERR_UNAUTHENTICATED) << r.message;
  EXPECT_TRUE(sink.rows.empty());
  ExpectNoSecret(r);
  // No credentials at all: the server refuses the command (13) before any
  // authentication; the connector reports what the server said.
  Collector sink2;
  r = Pull(Config(), "t", Json::object(), sink2);
  EXPECT_EQ(r.status, AIRLOCK_ERR_PERMISSION_DENIED) << r.message;
  // An unknown user fails like a wrong password.
  Collector sink3;
  r = Pull(
      Config({{"username", "mallory"}, {"password_secret", "env:AIRLOCK_TEST_MONGO_PASSWORD"}}),
      "t", Json::object(), sink3);
  EXPECT_EQ(r.status, AIRLOCK_ERR_UNAUTHENTICATED) << r.message;
  ExpectNoSecret(r);
}

TEST_F(MongoErrorsTest, UnresolvableSecretFailsWithoutConnecting) {
  const uint64_t connections = server_->connections_accepted();
  Collector sink;
  PullResult r =
      Pull(AuthConfig("env:AIRLOCK_TEST_MONGO_UNSET_VARIABLE"), "t", Json::object(), sink);
  EXPECT_EQ(r.status, AIRLOCK_ERR_NOT_FOUND) << r.message;
  EXPECT_THAT(r.message, HasSubstr("password_secret"));
  EXPECT_EQ(server_->connections_accepted(), connections);
}

TEST_F(MongoErrorsTest, NotAuthorizedIsPermissionDenied) {
  Collector sink;
  PullResult r =
      Pull(AuthConfig("env:AIRLOCK_TEST_MONGO_PASSWORD"), "payroll", Json::object(), sink);
  EXPECT_EQ(r.status, AIRLOCK_ERR_PERMISSION_DENIED) << r.message;
  EXPECT_TRUE(sink.rows.empty());
  ExpectNoSecret(r);
}

TEST_F(MongoErrorsTest, DescribeLeavesRowsUnknownWhereItCannotCount) {
  const Json datasets =
      Json::array({{{"name", "t"}, {"columns", {{{"name", "a"}, {"type", "int32"}}}}},
                   {{"name", "payroll"}, {"columns", {{{"name", "a"}, {"type", "int32"}}}}}});
  auto allowed = Describe(Config({{"username", "reader"},
                                  {"password_secret", "env:AIRLOCK_TEST_MONGO_PASSWORD"},
                                  {"datasets", datasets}}));
  ASSERT_TRUE(allowed.ok()) << allowed.status().ToString();
  ASSERT_EQ(allowed->datasets.size(), 2u);
  EXPECT_EQ(allowed->datasets[0].rows, 1);
  EXPECT_EQ(allowed->datasets[1].rows, -1);  // not authorized on db.payroll
  // Without the secret nothing is counted, the describe still succeeds and
  // does not connect.
  const uint64_t connections = server_->connections_accepted();
  auto unresolved = Describe(Config({{"username", "reader"},
                                     {"password_secret", "env:AIRLOCK_TEST_MONGO_UNSET_VARIABLE"},
                                     {"datasets", datasets}}));
  ASSERT_TRUE(unresolved.ok()) << unresolved.status().ToString();
  ASSERT_EQ(unresolved->datasets.size(), 2u);
  EXPECT_EQ(unresolved->datasets[0].rows, -1);
  EXPECT_EQ(unresolved->datasets[1].rows, -1);
  EXPECT_EQ(unresolved->datasets[0].columns.size(), 1u);
  EXPECT_EQ(server_->connections_accepted(), connections);
}

TEST_F(MongoErrorsTest, MissingCollectionIsNotFound) {
  Collector sink;
  PullResult r = Pull(AuthConfig("env:AIRLOCK_TEST_MONGO_PASSWORD"), "nope", Json::object(), sink);
  EXPECT_EQ(r.status, AIRLOCK_ERR_NOT_FOUND) << r.message;
  EXPECT_THAT(r.message, HasSubstr("'nope'"));
}

TEST_F(MongoErrorsTest, UnreachableServerIsUnavailable) {
  const std::string uri = "mongodb://127.0.0.1:" + std::to_string(ClosedPort()) +
                          "/?serverSelectionTimeoutMS=500&connectTimeoutMS=500";
  Collector sink;
  PullResult r = Pull({{"uri", uri},
                       {"database", "db"},
                       {"username", "reader"},
                       {"password_secret", "env:AIRLOCK_TEST_MONGO_PASSWORD"}},
                      "t", Json::object(), sink);
  EXPECT_EQ(r.status, AIRLOCK_ERR_UNAVAILABLE) << r.message;
  ExpectNoSecret(r);
}

TEST_F(MongoErrorsTest, ConfigurationMistakesAreRefusedWithoutEchoingSecrets) {
  auto create_status = [&](const Json& config, std::string* message) {
    testing::DlInstance<airlock_type_connector_vtable> instance(table(), config.dump());
    *message = instance.error();
    return instance.status();
  };
  std::string message;
  // A password inside the URI.
  EXPECT_EQ(
      create_status({{"uri", "mongodb://reader:" + std::string(kPassword) + "@127.0.0.1:1/db"}},
                    &message),
      AIRLOCK_ERR_INVALID_ARGUMENT);
  EXPECT_THAT(message, Not(HasSubstr(kPassword)));
  // A password pasted where a reference belongs.
  EXPECT_EQ(
      create_status(Config({{"username", "reader"}, {"password_secret", kPassword}}), &message),
      AIRLOCK_ERR_INVALID_ARGUMENT);
  EXPECT_THAT(message, Not(HasSubstr(kPassword)));
  // No database anywhere.
  EXPECT_EQ(create_status({{"uri", server_->uri()}}, &message), AIRLOCK_ERR_INVALID_ARGUMENT);
  // Unknown keys and declared names that would be operators.
  EXPECT_EQ(create_status(Config({{"pasword_secret", "env:X"}}), &message),
            AIRLOCK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(
      create_status(
          Config({{"datasets",
                   {{{"name", "x"}, {"columns", {{{"name", "$where"}, {"type", "utf8"}}}}}}}}),
          &message),
      AIRLOCK_ERR_INVALID_ARGUMENT);
  // The whole URI as a secret works, and is resolved only at pull time.
  ::setenv("AIRLOCK_TEST_MONGO_URI",
           ("mongodb://reader:" + std::string(kPassword) +
            "@127.0.0.1:" + std::to_string(server_->port()) + "/db?authSource=admin")
               .c_str(),
           1);
  Collector sink;
  PullResult r = Pull({{"uri_secret", "env:AIRLOCK_TEST_MONGO_URI"}}, "t", Json::object(), sink);
  EXPECT_EQ(r.status, AIRLOCK_OK) << r.message;
  EXPECT_EQ(sink.rows.size(), 1u);
}

TEST_F(MongoErrorsTest, TlsOptionsReachTheDriver) {
  // The test server speaks plaintext: with TLS requested the handshake
  // cannot succeed, which proves the option was passed through (the same
  // pull without the tls block works, see RightCredentialsFromEnvAndFileWork).
  test::TempDir dir;
  std::ofstream(dir.File("ca.pem")) << "not a certificate\n";
  Json config = AuthConfig("env:AIRLOCK_TEST_MONGO_PASSWORD");
  config["uri"] = server_->uri() + "&connectTimeoutMS=1000&serverSelectionTimeoutMS=1000";
  config["tls"] = {{"ca_file", dir.File("ca.pem")}};
  Collector sink;
  PullResult r = Pull(config, "t", Json::object(), sink);
  EXPECT_NE(r.status, AIRLOCK_OK) << r.message;
  EXPECT_EQ(r.status, AIRLOCK_ERR_UNAVAILABLE) << r.message;
  EXPECT_TRUE(sink.rows.empty());
  ExpectNoSecret(r);
}

}  // namespace
}  // namespace airlock::mongo_test
