// Loads the built airlock_isolator_inprocess.so through the C ABI and drives it
// with a host whose enclave runtime echoes bytes until its channel closes.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "airlock/c/airlock_plugin.h"
#include "airlock/cpp/abi_util.hpp"
#include "tests/support/dl_plugin.h"
#include "kernel/plugin_host/plugin_instances.h"
#include "kernel/plugin_host/plugin_loader.h"

namespace {

using airlock::abi::BufferHolder;
using airlock::abi::ErrorHolder;
using airlock::testing::DlPlugin;
using Clock = std::chrono::steady_clock;

constexpr char kPluginPath[] = AIRLOCK_PLUGIN_DIR "/airlock_isolator_inprocess.so";

// The host side: records log lines and runs an echoing "enclave runtime".
struct TestHost {
  std::mutex mutex;
  std::condition_variable changed;
  std::vector<std::pair<int32_t, std::string>> logs;
  int serves_started = 0;
  int serves_returned = 0;
  std::vector<std::thread::id> serve_threads;

  airlock_host_services services{};

  explicit TestHost(bool with_runtime = true) {
    services.size = sizeof(services);
    services.abi_major = AIRLOCK_ABI_MAJOR;
    services.abi_minor = AIRLOCK_ABI_MINOR;
    services.host_data = this;
    services.log = [](void* data, int32_t level, const char*, const char* message, size_t len) {
      auto* self = static_cast<TestHost*>(data);
      std::lock_guard<std::mutex> lock(self->mutex);
      self->logs.emplace_back(level, std::string(message, len));
    };
    services.now_unix_micros = [](void*) -> int64_t { return 1'700'000'000'000'000; };
    if (with_runtime) services.enclave_serve = &Serve;
  }

  // Echoes until end-of-file, then closes the descriptor it was given (the
  // ABI says enclave_serve owns it).
  static airlock_type_status Serve(void* data, int fd, airlock_type_error*) {
    auto* self = static_cast<TestHost*>(data);
    {
      std::lock_guard<std::mutex> lock(self->mutex);
      ++self->serves_started;
      self->serve_threads.push_back(std::this_thread::get_id());
    }
    self->changed.notify_all();
    char buf[256];
    for (;;) {
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) break;
      if (::write(fd, buf, static_cast<size_t>(n)) != n) break;
    }
    ::close(fd);
    {
      std::lock_guard<std::mutex> lock(self->mutex);
      ++self->serves_returned;
    }
    self->changed.notify_all();
    return AIRLOCK_OK;
  }

  bool WaitReturned(int count, std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> lock(mutex);
    return changed.wait_for(lock, timeout, [&] { return serves_returned >= count; });
  }
  int returned() {
    std::lock_guard<std::mutex> lock(mutex);
    return serves_returned;
  }
  bool Logged(int32_t level, const std::string& needle) {
    std::lock_guard<std::mutex> lock(mutex);
    for (const auto& [l, m] : logs) {
      if (l == level && m.find(needle) != std::string::npos) return true;
    }
    return false;
  }
};

class InprocessIsolatorTest : public ::testing::Test {
 protected:
  void Load(TestHost& host) {
    std::string error;
    plugin_ = DlPlugin::Load(kPluginPath, &host.services, &error);
    ASSERT_NE(plugin_, nullptr) << error;
    ASSERT_EQ(plugin_->info().kind, AIRLOCK_KIND_ISOLATOR);
    table_ = &plugin_->vtable<airlock_type_isolator_vtable>();
  }

  void* Create(const std::string& config, airlock_type_status expect = AIRLOCK_OK,
               std::string* message = nullptr) {
    void* instance = nullptr;
    ErrorHolder error;
    EXPECT_EQ(table_->create(config.data(), config.size(), &instance, error.get()), expect)
        << error.message();
    if (message != nullptr) *message = error.message();
    return instance;
  }

  airlock_type_enclave_launch Provision(void* instance, const std::string& spec,
                                        airlock_type_status expect = AIRLOCK_OK) {
    airlock_type_enclave_launch launch{};
    launch.size = sizeof(launch);
    launch.control_fd = -1;
    ErrorHolder error;
    EXPECT_EQ(table_->provision(instance, spec.data(), spec.size(), &launch, error.get()), expect)
        << error.message();
    return launch;
  }

  airlock_type_status Terminate(void* instance, void* enclave) {
    ErrorHolder error;
    return table_->terminate(instance, enclave, error.get());
  }

  void TearDown() override {
    table_ = nullptr;
    plugin_.reset();
  }

  std::unique_ptr<DlPlugin> plugin_;
  const airlock_type_isolator_vtable* table_ = nullptr;
};

// Sends `text` and reads the same number of bytes back (with a 2 s bound).
std::string RoundTrip(int fd, const std::string& text) {
  if (::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) return "";
  std::string got;
  while (got.size() < text.size()) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 2000) <= 0) break;
    char buf[256];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

// True when `fd` reports end-of-file within `timeout_ms`.
bool ReadsEof(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) return false;
  char c;
  return ::read(fd, &c, 1) == 0;
}

TEST_F(InprocessIsolatorTest, ManifestSaysDevelopmentOnly) {
  TestHost host;
  Load(host);
  EXPECT_STREQ(plugin_->info().name, "inprocess");
  EXPECT_NE(std::string(plugin_->info().description).find("DEVELOPMENT ONLY"), std::string::npos);
  EXPECT_NE(std::string(plugin_->info().description).find("NO ISOLATION"), std::string::npos);
  EXPECT_GE(table_->size, AIRLOCK_ISOLATOR_VTABLE_1_0_SIZE);
  EXPECT_NE(table_->reap_orphans, nullptr);
}

TEST_F(InprocessIsolatorTest, CreateWarnsThatThereIsNoIsolation) {
  TestHost host;
  Load(host);
  void* instance = Create("{}");
  ASSERT_NE(instance, nullptr);
  EXPECT_TRUE(host.Logged(AIRLOCK_LOG_WARN, "DEVELOPMENT ONLY"));
  EXPECT_TRUE(host.Logged(AIRLOCK_LOG_WARN, "NO ISOLATION"));
  table_->destroy(instance);
}

TEST_F(InprocessIsolatorTest, RejectsUnknownConfigKeyByName) {
  TestHost host;
  Load(host);
  std::string message;
  void* instance = Create(R"({"memory_mb": 512})", AIRLOCK_ERR_INVALID_ARGUMENT, &message);
  EXPECT_EQ(instance, nullptr);
  EXPECT_NE(message.find("memory_mb"), std::string::npos) << message;
  Create("[1]", AIRLOCK_ERR_INVALID_ARGUMENT);
}

TEST_F(InprocessIsolatorTest, DescribeSaysNoneAndDevelopmentOnly) {
  TestHost host;
  Load(host);
  void* instance = Create("{}");
  BufferHolder buffer;
  ErrorHolder error;
  ASSERT_EQ(table_->describe_isolation(instance, buffer.get(), error.get()), AIRLOCK_OK);
  const auto doc = nlohmann::json::parse(buffer.view());
  EXPECT_EQ(doc.at("isolator"), "inprocess");
  EXPECT_EQ(doc.at("isolation"), "none");
  EXPECT_EQ(doc.at("development_only"), true);
  EXPECT_TRUE(doc.at("mechanisms").is_object());
  EXPECT_TRUE(doc.at("mechanisms").empty());
  table_->destroy(instance);
}

TEST_F(InprocessIsolatorTest, ReapOrphansHasNothingToDo) {
  TestHost host;
  Load(host);
  void* instance = Create("{}");
  ErrorHolder error;
  EXPECT_EQ(table_->reap_orphans(instance, error.get()), AIRLOCK_OK);
  table_->destroy(instance);
}

TEST_F(InprocessIsolatorTest, ProvisionReturnsAChannelServedOnAnotherThread) {
  TestHost host;
  Load(host);
  void* instance = Create("{}");
  auto launch = Provision(instance, R"({"request_id":"req-1"})");
  ASSERT_GE(launch.control_fd, 0);
  ASSERT_NE(launch.enclave, nullptr);

  EXPECT_EQ(RoundTrip(launch.control_fd, "hello enclave"), "hello enclave");
  {
    std::lock_guard<std::mutex> lock(host.mutex);
    ASSERT_EQ(host.serves_started, 1);
    EXPECT_NE(host.serve_threads[0], std::this_thread::get_id());
  }
  EXPECT_EQ(host.returned(), 0);  // still serving until terminated

  EXPECT_EQ(Terminate(instance, launch.enclave), AIRLOCK_OK);
  ::close(launch.control_fd);
  table_->destroy(instance);
}

TEST_F(InprocessIsolatorTest, TerminateEndsTheRuntimePromptlyAndIsSafeTwice) {
  TestHost host;
  Load(host);
  void* instance = Create("{}");
  auto launch = Provision(instance, R"({"request_id":"req-2"})");
  ASSERT_EQ(RoundTrip(launch.control_fd, "x"), "x");

  const auto start = Clock::now();
  EXPECT_EQ(Terminate(instance, launch.enclave), AIRLOCK_OK);
  const auto took = Clock::now() - start;
  EXPECT_LT(took, std::chrono::seconds(1));
  // terminate joined the thread: the runtime has already returned.
  EXPECT_EQ(host.returned(), 1);
  // The kernel end sees the enclave go away.
  EXPECT_TRUE(ReadsEof(launch.control_fd, 1000));
  // The handle is gone after terminate; a second terminate of "no enclave" is harmless.
  EXPECT_EQ(Terminate(instance, nullptr), AIRLOCK_OK);
  EXPECT_EQ(host.returned(), 1);

  ::close(launch.control_fd);
  table_->destroy(instance);
}

TEST_F(InprocessIsolatorTest, KernelHangingUpEndsTheRuntimeAndTerminateStillWorks) {
  TestHost host;
  Load(host);
  void* instance = Create("{}");
  auto launch = Provision(instance, R"({"request_id":"req-3"})");
  ::close(launch.control_fd);
  EXPECT_TRUE(host.WaitReturned(1, std::chrono::seconds(2)));
  EXPECT_EQ(Terminate(instance, launch.enclave), AIRLOCK_OK);
  table_->destroy(instance);
}

TEST_F(InprocessIsolatorTest, EnclavesAreIndependent) {
  TestHost host;
  Load(host);
  void* instance = Create("{}");
  auto a = Provision(instance, R"({"request_id":"a"})");
  auto b = Provision(instance, R"({"request_id":"b"})");
  ASSERT_EQ(RoundTrip(a.control_fd, "a"), "a");
  ASSERT_EQ(RoundTrip(b.control_fd, "b"), "b");

  EXPECT_EQ(Terminate(instance, a.enclave), AIRLOCK_OK);
  EXPECT_EQ(host.returned(), 1);
  EXPECT_EQ(RoundTrip(b.control_fd, "still here"), "still here");
  EXPECT_EQ(Terminate(instance, b.enclave), AIRLOCK_OK);
  EXPECT_EQ(host.returned(), 2);

  ::close(a.control_fd);
  ::close(b.control_fd);
  table_->destroy(instance);
}

TEST_F(InprocessIsolatorTest, LimitsAndEgressAreReportedAsNotEnforced) {
  TestHost host;
  Load(host);
  void* instance = Create("{}");
  auto launch = Provision(
      instance, R"({"request_id":"req-4","limits":{"memory_mb":64},"egress":["db:5432"]})");
  EXPECT_TRUE(host.Logged(AIRLOCK_LOG_WARN, "NOT enforced"));
  EXPECT_EQ(Terminate(instance, launch.enclave), AIRLOCK_OK);
  ::close(launch.control_fd);
  table_->destroy(instance);
}

TEST_F(InprocessIsolatorTest, ProvisionFailsWithoutAnEnclaveRuntime) {
  TestHost host(/*with_runtime=*/false);
  Load(host);
  void* instance = Create("{}");
  auto launch = Provision(instance, R"({"request_id":"req-5"})", AIRLOCK_ERR_FAILED_PRECONDITION);
  EXPECT_EQ(launch.enclave, nullptr);
  EXPECT_EQ(launch.control_fd, -1);
  Provision(instance, "[]", AIRLOCK_ERR_INVALID_ARGUMENT);
  table_->destroy(instance);
}

TEST_F(InprocessIsolatorTest, WorksThroughTheKernelPluginHost) {
  TestHost host;
  airlock::plugin_host::PluginLoader loader(&host.services);
  auto library = loader.Load(kPluginPath, std::nullopt, AIRLOCK_KIND_ISOLATOR);
  ASSERT_TRUE(library.ok()) << library.status().ToString();
  auto isolator = airlock::plugin_host::IsolatorPlugin::Create(*library, nlohmann::json::object());
  ASSERT_TRUE(isolator.ok()) << isolator.status().ToString();
  auto described = (*isolator)->DescribeIsolation();
  ASSERT_TRUE(described.ok()) << described.status().ToString();
  EXPECT_EQ(described->at("development_only"), true);
  EXPECT_TRUE((*isolator)->ReapOrphans().ok());
  auto enclave = (*isolator)->Provision({{"request_id", "via-kernel"}});
  ASSERT_TRUE(enclave.ok()) << enclave.status().ToString();
  EXPECT_EQ(RoundTrip((*enclave)->control_fd(), "ping"), "ping");

  const auto start = Clock::now();
  EXPECT_TRUE((*enclave)->Terminate().ok());
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(1));
  EXPECT_EQ(host.returned(), 1);
  EXPECT_TRUE((*enclave)->Terminate().ok());  // the handle makes a second call a no-op
  EXPECT_EQ(host.returned(), 1);
}

}  // namespace
