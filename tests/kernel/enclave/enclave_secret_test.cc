// Secrets: resolved only inside the enclave, and never sent to the kernel.
// Every byte the enclave writes goes through a relay that records it.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/kernel/enclave/enclave_test_support.h"
#include "tests/kernel/enclave/gen_rows.h"

namespace airlock::enclave {
namespace {

using namespace test_support;  // NOLINT
using ::testing::HasSubstr;

// Copies bytes both ways between two sockets and records what `from_enclave`
// sends. Stops when either side closes.
class RecordingRelay {
 public:
  RecordingRelay(int enclave_side, int kernel_side)
      : enclave_(enclave_side), kernel_(kernel_side), thread_([this] { Run(); }) {}
  ~RecordingRelay() {
    ::shutdown(enclave_, SHUT_RDWR);
    ::shutdown(kernel_, SHUT_RDWR);
    thread_.join();
    ::close(enclave_);
    ::close(kernel_);
  }
  std::string recorded() {
    std::lock_guard<std::mutex> lock(mutex_);
    return recorded_;
  }

 private:
  void Run() {
    char buf[65536];
    for (;;) {
      pollfd fds[2] = {{enclave_, POLLIN, 0}, {kernel_, POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      for (int i = 0; i < 2; ++i) {
        if (fds[i].revents == 0) continue;
        const int from = i == 0 ? enclave_ : kernel_;
        const int to = i == 0 ? kernel_ : enclave_;
        const ssize_t n = ::recv(from, buf, sizeof buf, 0);
        if (n <= 0) {
          ::shutdown(to, SHUT_RDWR);
          return;
        }
        if (i == 0) {
          std::lock_guard<std::mutex> lock(mutex_);
          recorded_.append(buf, static_cast<size_t>(n));
        }
        for (ssize_t done = 0; done < n;) {
          const ssize_t w = ::send(to, buf + done, static_cast<size_t>(n - done), MSG_NOSIGNAL);
          if (w <= 0) return;
          done += w;
        }
      }
    }
  }

  int enclave_, kernel_;
  std::mutex mutex_;
  std::string recorded_;
  std::thread thread_;
};

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) { ::setenv(name, value, 1); }
  ~ScopedEnv() { ::unsetenv(name_); }

 private:
  const char* name_;
};

TEST(EnclaveSecrets, NoByteFromTheEnclaveContainsTheSecret) {
  ScopedEnv env("AIRLOCK_TEST_GEN_SECRET", gen::kExpectedSecret);
  InProcessEnclave enclave;
  const int kernel_fd = enclave.TakeKernelFd();
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  RecordingRelay relay(kernel_fd, pair[0]);
  EventLog log;
  auto client = EnclaveClient::Start(pair[1], log.Events());
  ASSERT_TRUE(client.ok());

  Json spec = MakeSpec(
      {GenDataset("a",
                  {{"rows", 3000}, {"secret", "env:AIRLOCK_TEST_GEN_SECRET"}, {"audit", true}}),
       GenDataset(
           "b", {{"rows", 1000}, {"shape", "narrow"}, {"secret", "env:AIRLOCK_TEST_GEN_SECRET"}})});
  // The kernel sends references only.
  ASSERT_EQ(spec.dump().find(gen::kExpectedSecret), std::string::npos);
  ASSERT_TRUE((*client)->SendSpec(spec).ok());
  Json outcome = log.WaitForOutcome();
  ASSERT_EQ(outcome.value("state", ""), "sealed") << outcome.dump();
  EXPECT_TRUE(outcome.value("credentials_cleared", false));

  // Results, schema listings and errors: none of it carries the secret.
  CollectingConsumer all;
  ASSERT_TRUE((*client)->Query("SELECT * FROM a", all, 10s).ok());
  EXPECT_EQ(all.rows, 3000u);
  for (const char* sql : {"SELECT * FROM b", "SELECT * FROM sqlite_master",
                          "SELECT * FROM lane1.sqlite_master", "PRAGMA compile_options"}) {
    CollectingConsumer out;
    (void)(*client)->Query(sql, out, 10s);
  }
  ASSERT_TRUE((*client)->Tables(5s).ok());
  (*client)->Close();
  EXPECT_TRUE(enclave.WaitFinished());

  std::string events;
  for (const auto& list : {log.progress(), log.states(), log.audits()}) {
    for (const Json& j : list) events += j.dump();
  }
  EXPECT_FALSE(log.audits().empty());
  EXPECT_EQ(events.find(gen::kExpectedSecret), std::string::npos);

  const std::string wire = relay.recorded();
  // The search can succeed: the data's own strings crossed the relay.
  EXPECT_NE(wire.find("name-2999"), std::string::npos);
  EXPECT_EQ(wire.find(gen::kExpectedSecret), std::string::npos);
}

TEST(EnclaveSecrets, AWrongCredentialFailsIngestionWithoutQuotingIt) {
  ScopedEnv env("AIRLOCK_TEST_GEN_WRONG", "not-the-password-1234");
  InProcessEnclave enclave;
  EventLog log;
  enclave.StartClient(log.Events());
  ASSERT_TRUE(enclave.client
                  ->SendSpec(MakeSpec(
                      {GenDataset("a", {{"rows", 100}, {"secret", "env:AIRLOCK_TEST_GEN_WRONG"}})}))
                  .ok());
  Json outcome = log.WaitForOutcome();
  ASSERT_EQ(outcome.value("state", ""), "failed");
  EXPECT_EQ(outcome.value("code", ""), "unauthenticated");
  std::string everything;
  for (const auto& list : {log.progress(), log.states()}) {
    for (const Json& j : list) everything += j.dump();
  }
  EXPECT_EQ(everything.find("not-the-password-1234"), std::string::npos);
}

TEST(EnclaveSecrets, AMissingSecretFailsIngestionNamingTheReference) {
  ::unsetenv("AIRLOCK_TEST_GEN_UNSET");
  InProcessEnclave enclave;
  EventLog log;
  enclave.StartClient(log.Events());
  ASSERT_TRUE(enclave.client
                  ->SendSpec(MakeSpec(
                      {GenDataset("a", {{"rows", 100}, {"secret", "env:AIRLOCK_TEST_GEN_UNSET"}})}))
                  .ok());
  Json outcome = log.WaitForOutcome();
  ASSERT_EQ(outcome.value("state", ""), "failed");
  EXPECT_EQ(outcome.value("code", ""), "not_found");
  EXPECT_THAT(outcome.value("reason", ""), HasSubstr("AIRLOCK_TEST_GEN_UNSET"));
}

}  // namespace
}  // namespace airlock::enclave
