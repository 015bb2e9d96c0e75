// The airlock-enclave executable, started as a real process with the control
// socket inherited as --fd N.
#include <fcntl.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <thread>

#include <gtest/gtest.h>

#include "tests/kernel/enclave/enclave_test_support.h"
#include "tests/kernel/enclave/gen_rows.h"

extern char** environ;

namespace airlock::enclave {
namespace {

using namespace test_support;  // NOLINT

struct Child {
  pid_t pid = -1;
  int kernel_fd = -1;

  // Waits up to `timeout` for the process; its exit code, or -1.
  int Wait(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      const pid_t done = ::waitpid(pid, &status, WNOHANG);
      if (done == pid) {
        pid = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }
  ~Child() {
    if (pid > 0) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
};

// The child's initial environment block, as the kernel exposes it. Right
// after the spawn the block may read empty for a moment (exec in progress):
// retries until it holds `name`, which stays in it even when wiped.
std::string ReadEnvironment(pid_t pid, const std::string& name) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  std::string block;
  do {
    std::ifstream in("/proc/" + std::to_string(pid) + "/environ", std::ios::binary);
    block.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (block.find(name + "=") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  } while (std::chrono::steady_clock::now() < deadline);
  return block;
}

Child Spawn(std::vector<std::string> args, bool with_socket = true) {
  Child child;
  int fds[2] = {-1, -1};
  if (with_socket) {
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    ::fcntl(fds[0], F_SETFD, 0);  // the child inherits this end
    for (auto& a : args) {
      if (auto at = a.find("{fd}"); at != std::string::npos) {
        a.replace(at, 4, std::to_string(fds[0]));
      }
    }
  }
  std::vector<char*> argv;
  std::string binary = AIRLOCK_ENCLAVE_BINARY;
  argv.push_back(binary.data());
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  EXPECT_EQ(::posix_spawn(&child.pid, binary.c_str(), nullptr, nullptr, argv.data(), environ), 0);
  if (with_socket) {
    ::close(fds[0]);
    child.kernel_fd = fds[1];
  }
  return child;
}

TEST(EnclaveBinary, ServesAnEnclaveOverTheInheritedDescriptor) {
  ::setenv("AIRLOCK_TEST_BINARY_SECRET", gen::kExpectedSecret, 1);
  Child child = Spawn({"--fd", "{fd}"});
  // The credential is in the process environment from the start...
  EXPECT_NE(ReadEnvironment(child.pid, "AIRLOCK_TEST_BINARY_SECRET").find(gen::kExpectedSecret),
            std::string::npos);
  EventLog log;
  auto client = EnclaveClient::Start(child.kernel_fd, log.Events());
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(
      (*client)
          ->SendSpec(MakeSpec(
              {GenDataset("a", {{"rows", 20000}, {"secret", "env:AIRLOCK_TEST_BINARY_SECRET"}}),
               GenDataset("b", {{"rows", 5000}, {"shape", "narrow"}})}))
          .ok());
  Json outcome = log.WaitForOutcome();
  ASSERT_EQ(outcome.value("state", ""), "sealed") << outcome.dump();
  // ...and wiped from it once the enclave sealed.
  EXPECT_EQ(ReadEnvironment(child.pid, "AIRLOCK_TEST_BINARY_SECRET").find(gen::kExpectedSecret),
            std::string::npos);
  // In a process of its own it reports that process's resident memory: what
  // /proc says of the child now, within a factor of two (it moves a little).
  const int64_t reported = outcome["memory"].value("resident_bytes", int64_t{0});
  int64_t size_pages = 0, resident_pages = 0;
  std::ifstream("/proc/" + std::to_string(child.pid) + "/statm") >> size_pages >> resident_pages;
  const int64_t resident = resident_pages * ::sysconf(_SC_PAGESIZE);
  EXPECT_GT(reported, resident / 2) << outcome["memory"].dump();
  EXPECT_LT(reported, resident * 2) << outcome["memory"].dump();
  EXPECT_GT(outcome["memory"].value("data_bytes", int64_t{0}), 25000 * 8);
  CollectingConsumer out;
  ASSERT_TRUE((*client)
                  ->Query("SELECT count(*) FROM a JOIN b USING (id)", out, std::chrono::seconds(10))
                  .ok());
  EXPECT_EQ(out.ScalarInt(), 5000);
  CollectingConsumer denied;
  EXPECT_EQ((*client)->Query("DROP TABLE a", denied, std::chrono::seconds(10)).code(),
            StatusCode::kPermissionDenied);
  (*client)->Close();
  EXPECT_EQ(child.Wait(std::chrono::seconds(10)), 0);
  ::unsetenv("AIRLOCK_TEST_BINARY_SECRET");
}

TEST(EnclaveBinary, AFailedIngestionIsReportedAndTheProcessStillExitsCleanly) {
  Child child = Spawn({"--fd={fd}"});
  EventLog log;
  auto client = EnclaveClient::Start(child.kernel_fd, log.Events());
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(
      (*client)->SendSpec(MakeSpec({GenDataset("a", {{"rows", 100}, {"fail", true}})})).ok());
  Json outcome = log.WaitForOutcome();
  EXPECT_EQ(outcome.value("state", ""), "failed");
  (*client)->Close();
  EXPECT_EQ(child.Wait(std::chrono::seconds(10)), 0);
}

TEST(EnclaveBinary, TheKernelDisappearingEndsTheProcess) {
  Child child = Spawn({"--fd", "{fd}"});
  ::close(child.kernel_fd);  // before even sending a spec
  EXPECT_EQ(child.Wait(std::chrono::seconds(10)), 1);
}

TEST(EnclaveBinary, RejectsBadUsage) {
  EXPECT_EQ(Spawn({}, false).Wait(std::chrono::seconds(10)), 2);
  EXPECT_EQ(Spawn({"--fd", "x"}, false).Wait(std::chrono::seconds(10)), 2);
  EXPECT_EQ(Spawn({"--fd", "0"}, false).Wait(std::chrono::seconds(10)), 2);  // not a socket
}

}  // namespace
}  // namespace airlock::enclave
