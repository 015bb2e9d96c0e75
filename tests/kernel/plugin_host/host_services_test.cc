#include "kernel/plugin_host/host_services.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>
#include <thread>

#include "airlock/cpp/host.hpp"
#include "tests/kernel/plugin_host/test_support.h"

namespace airlock::plugin_host {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::RecordingCallbacks;

class HostServicesTest : public ::testing::Test {
 protected:
  RecordingCallbacks callbacks_;
  HostServicesTable table_{callbacks_};
  const airlock_host_services* host() const { return table_.get(); }
};

TEST_F(HostServicesTest, TableDeclaresSizeVersionAndEveryService) {
  EXPECT_EQ(host()->size, sizeof(airlock_host_services));
  EXPECT_GE(host()->size, AIRLOCK_HOST_SERVICES_1_0_SIZE);
  EXPECT_EQ(host()->abi_major, 1u);
  EXPECT_EQ(host()->abi_minor, static_cast<uint32_t>(AIRLOCK_ABI_MINOR));
  EXPECT_NE(host()->log, nullptr);
  EXPECT_NE(host()->audit_emit, nullptr);
  EXPECT_NE(host()->now_unix_micros, nullptr);
  EXPECT_NE(host()->secret_resolve, nullptr);
  EXPECT_NE(host()->enclave_serve, nullptr);
  ASSERT_NE(host()->enclave_executable, nullptr);
  EXPECT_STREQ(host()->enclave_executable, "/opt/airlock/bin/airlock-enclave");
}

TEST_F(HostServicesTest, NoEnclaveExecutableIsNull) {
  class NoExecutable : public RecordingCallbacks {
   public:
    std::string EnclaveExecutable() override { return ""; }
  } callbacks;
  HostServicesTable table(callbacks);
  EXPECT_EQ(table.get()->enclave_executable, nullptr);
  EXPECT_EQ(sdk::Host(table.get(), "p").EnclaveExecutable(), "");
}

TEST_F(HostServicesTest, LogPassesPluginNameAndMessageAndTruncatesLongOnes) {
  const std::string message = "hello from a plugin";
  host()->log(host()->host_data, AIRLOCK_LOG_WARN, "files", message.data(), message.size());
  const std::string huge(HostServicesTable::kMaxLogMessageBytes + 100, 'x');
  host()->log(host()->host_data, 99, nullptr, huge.data(), huge.size());
  const auto logs = callbacks_.logs();
  ASSERT_EQ(logs.size(), 2u);
  EXPECT_EQ(logs[0].level, AIRLOCK_LOG_WARN);
  EXPECT_EQ(logs[0].plugin, "files");
  EXPECT_EQ(logs[0].message, message);
  EXPECT_EQ(logs[1].level, AIRLOCK_LOG_ERROR);  // clamped
  EXPECT_EQ(logs[1].plugin, "unknown");
  EXPECT_EQ(logs[1].message.size(), HostServicesTable::kMaxLogMessageBytes);
}

TEST_F(HostServicesTest, AuditEmitAcceptsOnlyBoundedJsonObjects) {
  const std::string good = R"({"event":"x.y","n":1})";
  EXPECT_EQ(host()->audit_emit(host()->host_data, good.data(), good.size()), AIRLOCK_OK);
  const std::string array = "[1,2]";
  EXPECT_EQ(host()->audit_emit(host()->host_data, array.data(), array.size()),
            AIRLOCK_ERR_INVALID_ARGUMENT);
  const std::string broken = "{\"event\":";
  EXPECT_EQ(host()->audit_emit(host()->host_data, broken.data(), broken.size()),
            AIRLOCK_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(host()->audit_emit(host()->host_data, nullptr, 0), AIRLOCK_ERR_INVALID_ARGUMENT);
  const std::string huge =
      R"({"pad":")" + std::string(HostServicesTable::kMaxAuditEventBytes, 'a') + R"("})";
  EXPECT_EQ(host()->audit_emit(host()->host_data, huge.data(), huge.size()),
            AIRLOCK_ERR_RESOURCE_EXHAUSTED);
  const auto audits = callbacks_.audits();
  ASSERT_EQ(audits.size(), 1u);
  EXPECT_EQ(audits[0]["event"], "x.y");

  callbacks_.audit_status = Status::Unavailable("disk full");
  EXPECT_EQ(host()->audit_emit(host()->host_data, good.data(), good.size()),
            AIRLOCK_ERR_UNAVAILABLE);
  // Through the SDK wrapper a plugin sees the same code.
  EXPECT_EQ(sdk::Host(host(), "p").Audit({{"event", "z"}}).code(), StatusCode::kUnavailable);
}

// Serializing an event recurses once per nesting level: a deep event could
// exhaust the stack of the kernel that writes (or verifies) the audit log.
TEST_F(HostServicesTest, AuditEmitRefusesDeeplyNestedEvents) {
  auto nested = [](int depth) {
    return R"({"event":"x.deep","v":)" + std::string(depth - 1, '[') + std::string(depth - 1, ']') +
           "}";
  };
  const std::string deepest = nested(HostServicesTable::kMaxAuditEventDepth);
  EXPECT_EQ(host()->audit_emit(host()->host_data, deepest.data(), deepest.size()), AIRLOCK_OK);
  for (int depth : {HostServicesTable::kMaxAuditEventDepth + 1, 30000}) {
    const std::string deep = nested(depth);
    ASSERT_LE(deep.size(), HostServicesTable::kMaxAuditEventBytes);
    EXPECT_EQ(host()->audit_emit(host()->host_data, deep.data(), deep.size()),
              AIRLOCK_ERR_INVALID_ARGUMENT)
        << depth;
  }
  EXPECT_EQ(callbacks_.audits().size(), 1u);
}

TEST_F(HostServicesTest, NowComesFromTheCallbacks) {
  EXPECT_EQ(host()->now_unix_micros(host()->host_data), RecordingCallbacks::kNow);
  EXPECT_EQ(sdk::Host(host(), "p").NowMicros(), RecordingCallbacks::kNow);
}

TEST_F(HostServicesTest, SecretResolveLendsBytesAndReleaseClearsTheStruct) {
  ASSERT_EQ(::setenv("AIRLOCK_PH_TEST_SECRET", "correct horse battery staple", 1), 0);
  const std::string reference = "env:AIRLOCK_PH_TEST_SECRET";
  airlock_type_secret secret;
  std::memset(&secret, 0, sizeof(secret));
  airlock_type_error error{};
  ASSERT_EQ(host()->secret_resolve(host()->host_data, reference.data(), reference.size(), &secret,
                                   &error),
            AIRLOCK_OK);
  ASSERT_NE(secret.release, nullptr);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(secret.data), secret.length),
            "correct horse battery staple");
  secret.release(&secret);
  EXPECT_EQ(secret.release, nullptr);
  EXPECT_EQ(secret.data, nullptr);
  EXPECT_EQ(secret.length, 0u);
  EXPECT_EQ(secret.private_data, nullptr);
  EXPECT_EQ(error.release, nullptr);

  // The SDK's wrapper over the same table.
  auto bytes = sdk::Host(host(), "p").ResolveSecret(reference);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  EXPECT_EQ(bytes->view(), "correct horse battery staple");
  ::unsetenv("AIRLOCK_PH_TEST_SECRET");
}

TEST_F(HostServicesTest, SecretResolveFailureNamesTheReferenceNotTheValue) {
  ::unsetenv("AIRLOCK_PH_TEST_UNSET");
  auto missing = sdk::Host(host(), "p").ResolveSecret("env:AIRLOCK_PH_TEST_UNSET");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("AIRLOCK_PH_TEST_UNSET"));

  auto unknown = sdk::Host(host(), "p").ResolveSecret("vault:kv/db#hunter2");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(unknown.status().message(), HasSubstr("'vault'"));
  EXPECT_THAT(unknown.status().message(), Not(HasSubstr("hunter2")));

  const std::string long_reference(HostServicesTable::kMaxSecretReferenceBytes + 1, 'e');
  EXPECT_EQ(sdk::Host(host(), "p").ResolveSecret(long_reference).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(HostServicesTest, KernelCallbacksRefuseSecrets) {
  callbacks_.resolve_secrets = false;
  ASSERT_EQ(::setenv("AIRLOCK_PH_TEST_SECRET2", "value", 1), 0);
  const std::string reference = "env:AIRLOCK_PH_TEST_SECRET2";
  airlock_type_secret secret;
  std::memset(&secret, 0xAB, sizeof(secret));  // the trampoline must clear it
  abi::ErrorHolder error;
  EXPECT_EQ(host()->secret_resolve(host()->host_data, reference.data(), reference.size(), &secret,
                                   error.get()),
            AIRLOCK_ERR_PERMISSION_DENIED);
  EXPECT_EQ(secret.release, nullptr);
  EXPECT_EQ(secret.data, nullptr);
  EXPECT_THAT(error.message(), HasSubstr("does not resolve secrets"));
  ::unsetenv("AIRLOCK_PH_TEST_SECRET2");
}

TEST_F(HostServicesTest, EnclaveServeRunsTheRuntimeOnTheDescriptor) {
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  airlock_type_status served = -1;
  std::thread runtime([&] {
    abi::ErrorHolder error;
    served = host()->enclave_serve(host()->host_data, fds[1], error.get());
  });
  ASSERT_EQ(::write(fds[0], "ping", 4), 4);
  char reply[4];
  ASSERT_EQ(::read(fds[0], reply, 4), 4);
  EXPECT_EQ(std::string(reply, 4), "ping");
  ::close(fds[0]);  // the runtime sees EOF and returns
  runtime.join();
  EXPECT_EQ(served, AIRLOCK_OK);

  abi::ErrorHolder error;
  EXPECT_EQ(host()->enclave_serve(host()->host_data, -1, error.get()),
            AIRLOCK_ERR_INVALID_ARGUMENT);
}

// Callbacks that throw from everything: nothing may unwind into plugin code.
class ThrowingCallbacks : public HostCallbacks {
 public:
  void Log(int32_t, std::string_view, std::string_view) override {
    throw std::runtime_error("log");
  }
  Status AuditEmit(std::string_view) override { throw std::runtime_error("audit"); }
  int64_t NowMicros() override { throw std::runtime_error("now"); }
  Result<Secret> ResolveSecret(std::string_view) override { throw std::runtime_error("secret"); }
  Status EnclaveServe(int fd) override {
    ::close(fd);
    throw std::runtime_error("serve");
  }
  std::string EnclaveExecutable() override { return ""; }
};

TEST(HostServicesThrowingTest, ExceptionsBecomeInternalErrors) {
  ThrowingCallbacks callbacks;
  HostServicesTable table(callbacks);
  const airlock_host_services* host = table.get();
  host->log(host->host_data, AIRLOCK_LOG_INFO, "p", "m", 1);  // swallowed
  const std::string event = R"({"event":"e"})";
  EXPECT_EQ(host->audit_emit(host->host_data, event.data(), event.size()), AIRLOCK_ERR_INTERNAL);
  EXPECT_GT(host->now_unix_micros(host->host_data), 1'600'000'000'000'000);  // real clock
  airlock_type_secret secret{};
  abi::ErrorHolder error;
  EXPECT_EQ(host->secret_resolve(host->host_data, "env:X", 5, &secret, error.get()),
            AIRLOCK_ERR_INTERNAL);
  EXPECT_THAT(error.message(), HasSubstr("exception"));
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  abi::ErrorHolder serve_error;
  EXPECT_EQ(host->enclave_serve(host->host_data, fds[1], serve_error.get()), AIRLOCK_ERR_INTERNAL);
  ::close(fds[0]);
}

}  // namespace
}  // namespace airlock::plugin_host
