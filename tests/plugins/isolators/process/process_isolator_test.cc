// Loads the built airlock_isolator_process.so through the kernel's plugin
// host and drives real airlock-enclave processes through it.
#if defined(AIRLOCK_SANITIZED_BUILD)
#include <sanitizer/lsan_interface.h>
#endif
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "airlock/cpp/arrow.hpp"
#include "airlock/cpp/batch.hpp"
#include "kernel/enclave/enclave_client.h"
#include "kernel/plugin_host/host_services.h"
#include "kernel/plugin_host/plugin_instances.h"
#include "kernel/plugin_host/plugin_loader.h"

namespace airlock::isolators::process {
namespace {

using Json = nlohmann::json;
using plugin_host::EnclaveHandle;
using plugin_host::IsolatorPlugin;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr char kPluginPath[] = AIRLOCK_PLUGIN_DIR "/airlock_isolator_process.so";
constexpr char kFilesConnector[] = AIRLOCK_PLUGIN_DIR "/airlock_connector_files.so";

class Callbacks : public plugin_host::HostCallbacks {
 public:
  void Log(int32_t, std::string_view, std::string_view message) override {
    std::lock_guard<std::mutex> lock(mutex_);
    logs_.emplace_back(message);
  }
  Status AuditEmit(std::string_view) override { return Status::Ok(); }
  int64_t NowMicros() override { return 0; }
  Result<Secret> ResolveSecret(std::string_view) override {
    return Status::PermissionDenied("not here");
  }
  Status EnclaveServe(int fd) override {
    ::close(fd);
    return Status::NotImplemented("tests use the executable");
  }
  std::string EnclaveExecutable() override { return AIRLOCK_BINARY_DIR "/bin/airlock-enclave"; }

 private:
  std::mutex mutex_;
  std::vector<std::string> logs_;
};

struct TempDir {
  std::string path;
  TempDir() {
    std::string pattern = std::filesystem::temp_directory_path().string() + "/airlock-proc-XXXXXX";
    path = ::mkdtemp(pattern.data());
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The value after "<key>:" on a line of /proc/<pid>/status.
std::string StatusField(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) {
      const size_t start = line.find_first_not_of(" \t", key.size() + 1);
      return start == std::string::npos ? "" : line.substr(start);
    }
  }
  return {};
}

std::string NamespaceOf(const std::string& pid, const std::string& ns) {
  std::error_code ec;
  return std::filesystem::read_symlink("/proc/" + pid + "/ns/" + ns, ec).string();
}

// Keeps the single int64 a `SELECT <n>` returns.
class ScalarConsumer : public sdk::BatchConsumer {
 public:
  Status OnSchema(arrow::OwnedSchema schema) override {
    for (int64_t i = 0; i < schema->n_children; ++i) {
      auto field = arrow::ParseField(*schema->children[i]);
      if (!field.ok()) return field.status();
      fields_.push_back(*field);
    }
    return Status::Ok();
  }
  Status OnBatch(arrow::OwnedArray batch) override {
    auto view = arrow::BatchView::Make(fields_, *batch.get());
    if (!view.ok()) return view.status();
    if (view->num_rows() > 0) value = view->GetInt64(0, 0);
    return Status::Ok();
  }
  int64_t value = -1;

 private:
  std::vector<arrow::Field> fields_;
};

class ProcessIsolatorTest : public ::testing::Test {
 protected:
  ProcessIsolatorTest() : table_(callbacks_), loader_(table_.get()) {}

  void SetUp() override {
    auto loaded = loader_.Load(kPluginPath, std::nullopt, AIRLOCK_KIND_ISOLATOR);
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    library_ = *loaded;
  }

  Json BaseConfig() const { return {{"state_dir", state_.path + "/state"}}; }

  std::unique_ptr<IsolatorPlugin> Create(const Json& config) {
    auto made = IsolatorPlugin::Create(library_, config);
    EXPECT_TRUE(made.ok()) << made.status().ToString();
    return made.ok() ? std::move(*made) : nullptr;
  }

  // The record of `request_id` in the state directory (any instance's), or empty.
  std::string RecordPath(const std::string& request_id) const {
    for (const auto& instance : std::filesystem::directory_iterator(state_.path + "/state")) {
      if (instance.path().filename().string().rfind("instance-", 0) != 0) continue;
      for (const auto& entry : std::filesystem::directory_iterator(instance.path())) {
        if (entry.path().extension() != ".json") continue;
        const Json record = Json::parse(ReadFile(entry.path()), nullptr, false);
        if (record.is_object() && record.value("request_id", "") == request_id) {
          return entry.path().string();
        }
      }
    }
    return {};
  }

  // The pid recorded in the state directory for `request_id`, or -1.
  pid_t RecordedPid(const std::string& request_id) const {
    const std::string path = RecordPath(request_id);
    if (path.empty()) return -1;
    return Json::parse(ReadFile(path), nullptr, false).value("pid", -1);
  }

  // BaseConfig() as the kernel with identity `instance` hands it over.
  Json InstanceConfig(const std::string& instance) const {
    Json config = BaseConfig();
    config["$instance_id"] = instance;
    return config;
  }

  // Provisions an enclave for `request_id` and abandons its handle, as a
  // crashed kernel would; returns its pid and keeps the kernel's channel end.
  pid_t Abandoned(IsolatorPlugin& isolator, const std::string& request_id, int* control) {
    auto handle = isolator.Provision({{"request_id", request_id}});
    EXPECT_TRUE(handle.ok()) << handle.status().ToString();
    if (!handle.ok()) return -1;
    const pid_t pid = RecordedPid(request_id);
    *control = (*handle)->ReleaseControlFd();
    auto* abandoned = handle->release();
#if defined(AIRLOCK_SANITIZED_BUILD)
    __lsan_ignore_object(abandoned);  // deliberate, and everything it holds
#endif
    (void)abandoned;
    return pid;
  }

  Json EnclaveSpec() const {
    std::ofstream(data_.path + "/t.csv") << "id,name\n1,a\n2,b\n3,c\n";
    return {{"request_id", "r-proc"},
            {"mode", "interactive"},
            {"datasets",
             {{{"name", "t"},
               {"connector",
                {{"name", "files"}, {"path", kFilesConnector}, {"config", {{"root", data_.path}}}}},
               {"pull", {{"dataset", "t"}, {"object", "t.csv"}}}}}}};
  }

  Callbacks callbacks_;
  plugin_host::HostServicesTable table_;
  plugin_host::PluginLoader loader_;
  std::shared_ptr<plugin_host::PluginLibrary> library_;
  TempDir state_, data_;
};

bool ReadsEof(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) return false;
  char c;
  return ::read(fd, &c, 1) == 0;
}

TEST_F(ProcessIsolatorTest, DescribesARealIsolator) {
  auto isolator = Create(BaseConfig());
  ASSERT_NE(isolator, nullptr);
  auto described = isolator->DescribeIsolation();
  ASSERT_TRUE(described.ok());
  EXPECT_EQ(described->at("isolator"), "process");
  EXPECT_EQ(described->at("isolation"), "process");
  EXPECT_EQ(described->at("development_only"), false);
  const Json& mechanisms = described->at("mechanisms");
  // Available on any Linux host this suite runs on.
  EXPECT_EQ(mechanisms.at("no_new_privs"), true);
  EXPECT_EQ(mechanisms.at("seccomp"), true);
  EXPECT_EQ(mechanisms.at("rlimits"), true);
  EXPECT_EQ(described->at("seccomp"), "allow-list");
  // Either a private root, or the reason there is none.
  const std::string filesystem = described->at("filesystem");
  EXPECT_EQ(filesystem.rfind(mechanisms.at("pivot_root") == true ? "pivot_root" : "host root", 0),
            0u)
      << filesystem;
}

TEST_F(ProcessIsolatorTest, PivotRootCanBeDemanded) {
  auto probe = Create(BaseConfig());
  ASSERT_NE(probe, nullptr);
  const bool available = probe->DescribeIsolation()->at("mechanisms").at("pivot_root") == true;
  Json config = BaseConfig();
  config["min_isolation"] = {"pivot_root", "seccomp"};
  auto made = IsolatorPlugin::Create(library_, config);
  EXPECT_EQ(made.ok(), available) << made.status().ToString();
  if (!available) {
    EXPECT_NE(made.status().message().find("pivot_root"), std::string::npos);
  }
}

TEST_F(ProcessIsolatorTest, RefusesReadPathsThatWouldExposeTheHost) {
  auto isolator = Create(BaseConfig());
  ASSERT_NE(isolator, nullptr);
  if (isolator->DescribeIsolation()->at("mechanisms").at("pivot_root") != true) {
    GTEST_SKIP() << "no private root on this host";
  }
  auto refused = isolator->Provision({{"request_id", "r-bad"}, {"read_paths", {"/proc/1"}}});
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
}

TEST_F(ProcessIsolatorTest, RejectsUnknownConfiguration) {
  EXPECT_EQ(IsolatorPlugin::Create(library_, {{"memory_mb", 1}}).status().code(),
            StatusCode::kInvalidArgument);
  auto bad = IsolatorPlugin::Create(library_, {{"min_isolation", {"magic"}}});
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("magic"), std::string::npos);
}

TEST_F(ProcessIsolatorTest, ProvisionsASandboxedEnclaveThatAnswersQueries) {
  Json config = BaseConfig();
  config["default_memory_bytes"] = int64_t{3} << 30;
  auto isolator = Create(config);
  ASSERT_NE(isolator, nullptr);
  const Json mechanisms = isolator->DescribeIsolation()->at("mechanisms");
  auto handle = isolator->Provision(
      {{"request_id", "r-proc"},
       {"limits", {{"memory_bytes", int64_t{1} << 31}, {"open_files", 256}, {"cpu_seconds", 60}}},
       {"egress", Json::array()},
       {"read_paths", {kFilesConnector, data_.path}}});
  ASSERT_TRUE(handle.ok()) << handle.status().ToString();
  const pid_t pid = RecordedPid("r-proc");
  ASSERT_GT(pid, 0);
  const std::string id = std::to_string(pid);

  std::mutex mutex;
  std::condition_variable changed;
  Json outcome;
  enclave::EnclaveEvents events;
  events.on_state = [&](const Json& state) {
    const std::string name = state.value("state", "");
    if (name != "sealed" && name != "failed") return;
    std::lock_guard<std::mutex> lock(mutex);
    outcome = state;
    changed.notify_all();
  };
  auto client = enclave::EnclaveClient::Start((*handle)->ReleaseControlFd(), events);
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  ASSERT_TRUE((*client)->SendSpec(EnclaveSpec()).ok());
  {
    std::unique_lock<std::mutex> lock(mutex);
    ASSERT_TRUE(changed.wait_for(lock, 30s, [&] { return !outcome.is_null(); }));
    ASSERT_EQ(outcome.value("state", ""), "sealed") << outcome.dump();
  }
  ScalarConsumer one;
  const Status queried = (*client)->Query("SELECT 1", one, 20s);
  ASSERT_TRUE(queried.ok()) << queried.ToString();
  EXPECT_EQ(one.value, 1);
  ScalarConsumer count;
  ASSERT_TRUE((*client)->Query("SELECT count(*) FROM t", count, 20s).ok());
  EXPECT_EQ(count.value, 3);

  // The process is the executable we asked for, with the hardening applied.
  EXPECT_NE(ReadFile("/proc/" + id + "/cmdline").find("airlock-enclave"), std::string::npos);
  EXPECT_EQ(StatusField(pid, "NoNewPrivs"), "1");
  EXPECT_EQ(StatusField(pid, "Seccomp"), "2");
  EXPECT_EQ(StatusField(pid, "CapEff"), "0000000000000000");
  EXPECT_EQ(StatusField(pid, "CapBnd"), "0000000000000000");
  const std::string limits = ReadFile("/proc/" + id + "/limits");
#if !defined(AIRLOCK_SANITIZED_BUILD)  // see sandbox.cc: no RLIMIT_AS under AddressSanitizer
  EXPECT_NE(limits.find("Max address space         2147483648           2147483648"),
            std::string::npos)
      << limits;
#endif
  EXPECT_NE(limits.find("Max open files            256                  256"), std::string::npos);
  EXPECT_NE(limits.find("Max core file size        0                    0"), std::string::npos);
  EXPECT_NE(limits.find("Max cpu time              60                   60"), std::string::npos);
  // Only descriptors 0-3 stay open (1 and 2 are inherited for diagnostics).
  std::vector<std::string> fds;
  for (const auto& e : std::filesystem::directory_iterator("/proc/" + id + "/fd")) {
    fds.push_back(e.path().filename().string());
  }
  EXPECT_LE(fds.size(), 4u + 2u) << "fds: " << Json(fds).dump();  // +SQLite/connector files

  // Namespaces the host allowed are distinct from ours.
  const std::pair<const char*, const char*> kNamespaces[] = {
      {"user_namespace", "user"},   {"pid_namespace", "pid"}, {"mount_namespace", "mnt"},
      {"network_namespace", "net"}, {"ipc_namespace", "ipc"}, {"uts_namespace", "uts"}};
  for (const auto& [mechanism, ns] : kNamespaces) {
    if (mechanisms.at(mechanism) != true) continue;
    EXPECT_NE(NamespaceOf(id, ns), NamespaceOf("self", ns)) << ns;
    EXPECT_FALSE(NamespaceOf(id, ns).empty()) << ns;
  }
  if (mechanisms.at("pid_namespace") == true) {
    // The enclave is the init of its own PID namespace.
    EXPECT_EQ(StatusField(pid, "NSpid"), id + "\t1");
  }
  if (mechanisms.at("cgroup_memory") == true) {
    // Under this instance's own sub-tree.
    const std::string cgroup = ReadFile("/proc/" + id + "/cgroup");
    EXPECT_NE(cgroup.find("/airlock/"), std::string::npos) << cgroup;
    EXPECT_NE(cgroup.find("/r-proc."), std::string::npos) << cgroup;
  }
  if (mechanisms.at("pivot_root") == true) {
    // Its root is not ours: the state directory (other enclaves' records)
    // does not exist in it.
    EXPECT_FALSE(std::filesystem::exists("/proc/" + id + "/root" + state_.path));
    EXPECT_TRUE(std::filesystem::exists("/proc/" + id + "/root" + data_.path + "/t.csv"));
  }

  (*client)->Close();
  EXPECT_TRUE((*handle)->Terminate().ok());
}

TEST_F(ProcessIsolatorTest, TerminateKillsAndReapsPromptlyAndTwice) {
  auto isolator = Create(BaseConfig());
  ASSERT_NE(isolator, nullptr);
  auto handle = isolator->Provision({{"request_id", "r-kill"}});
  ASSERT_TRUE(handle.ok()) << handle.status().ToString();
  const pid_t pid = RecordedPid("r-kill");
  ASSERT_GT(pid, 0);
  ASSERT_EQ(::kill(pid, 0), 0);
  const int control = (*handle)->ReleaseControlFd();

  const auto start = Clock::now();
  ASSERT_TRUE((*handle)->Terminate().ok());
  EXPECT_LT(Clock::now() - start, 1s);
  // Reaped already: not our child any more, and no zombie left behind.
  EXPECT_EQ(::waitpid(pid, nullptr, WNOHANG), -1);
  EXPECT_EQ(errno, ECHILD);
  EXPECT_FALSE(std::filesystem::exists("/proc/" + std::to_string(pid)));
  EXPECT_TRUE(ReadsEof(control, 1000));
  EXPECT_EQ(RecordedPid("r-kill"), -1);  // record removed
  EXPECT_TRUE((*handle)->Terminate().ok());
  ::close(control);
}

TEST_F(ProcessIsolatorTest, MissingRequiredMechanismIsRefusedByName) {
  Json config = BaseConfig();
  config["cgroup_root"] = state_.path + "/not-a-cgroup";
  config["min_isolation"] = {"no_new_privs", "cgroup_memory"};
  auto made = IsolatorPlugin::Create(library_, config);
  ASSERT_FALSE(made.ok());
  EXPECT_EQ(made.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(made.status().message().find("cgroup_memory"), std::string::npos)
      << made.status().message();
  EXPECT_EQ(made.status().message().find("no_new_privs"), std::string::npos);
}

TEST_F(ProcessIsolatorTest, ReapOrphansKillsAnEnclaveLeftByAnEarlierInstance) {
  auto first = Create(BaseConfig());
  ASSERT_NE(first, nullptr);
  auto handle = first->Provision({{"request_id", "r-orphan"}});
  ASSERT_TRUE(handle.ok()) << handle.status().ToString();
  const pid_t pid = RecordedPid("r-orphan");
  ASSERT_GT(pid, 0);
  const int control = (*handle)->ReleaseControlFd();
  // Leak the handle: nothing terminates the enclave, as after a crash.
  auto* abandoned = handle->release();
#if defined(AIRLOCK_SANITIZED_BUILD)
  __lsan_ignore_object(abandoned);  // deliberate, and everything it holds
#endif
  (void)abandoned;
  first.reset();
  ASSERT_EQ(::kill(pid, 0), 0);
  EXPECT_FALSE(ReadsEof(control, 100));  // still serving

  auto second = Create(BaseConfig());
  ASSERT_NE(second, nullptr);
  ASSERT_TRUE(second->ReapOrphans().ok());
  EXPECT_TRUE(ReadsEof(control, 1000));
  EXPECT_EQ(RecordedPid("r-orphan"), -1);
  // Killed and (being our child) reaped by the reaper.
  EXPECT_FALSE(std::filesystem::exists("/proc/" + std::to_string(pid)));
  ::close(control);
}

TEST_F(ProcessIsolatorTest, ReapOrphansLeavesAnotherKernelsEnclavesAlone) {
  // Two kernels (two instance identities) sharing one state_dir and one cgroup tree.
  auto first = Create(InstanceConfig("aaaa1111"));
  auto second = Create(InstanceConfig("bbbb2222"));
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  auto handle = first->Provision({{"request_id", "r-neighbour"}});
  ASSERT_TRUE(handle.ok()) << handle.status().ToString();
  const pid_t pid = RecordedPid("r-neighbour");
  ASSERT_GT(pid, 0);
  const int control = (*handle)->ReleaseControlFd();

  ASSERT_TRUE(second->ReapOrphans().ok());
  EXPECT_FALSE(ReadsEof(control, 100)) << "the other kernel's enclave was killed";
  EXPECT_EQ(::kill(pid, 0), 0);
  EXPECT_EQ(RecordedPid("r-neighbour"), pid) << "its record was deleted";
  if (first->DescribeIsolation()->at("mechanisms").at("cgroup_memory") == true) {
    const std::string cgroup = ReadFile("/proc/" + std::to_string(pid) + "/cgroup");
    EXPECT_NE(cgroup.find("/airlock/aaaa1111/r-neighbour."), std::string::npos) << cgroup;
  }
  EXPECT_TRUE((*handle)->Terminate().ok());
  EXPECT_TRUE(ReadsEof(control, 1000));
  ::close(control);
}

TEST_F(ProcessIsolatorTest, ReapOrphansFindsAnOrphanByItsCgroupWithoutARecord) {
  auto first = Create(InstanceConfig("cccc3333"));
  ASSERT_NE(first, nullptr);
  if (first->DescribeIsolation()->at("mechanisms").at("cgroup_memory") != true) {
    GTEST_SKIP() << "cgroups are not writable here; the record path covers this host";
  }
  int control = -1;
  const pid_t pid = Abandoned(*first, "r-unrecorded", &control);
  ASSERT_GT(pid, 0);
  // As if the kernel died between starting the enclave and recording it.
  ASSERT_EQ(::unlink(RecordPath("r-unrecorded").c_str()), 0);
  first.reset();
  EXPECT_FALSE(ReadsEof(control, 100));  // still serving

  auto other = Create(InstanceConfig("dddd4444"));
  ASSERT_NE(other, nullptr);
  ASSERT_TRUE(other->ReapOrphans().ok());
  EXPECT_FALSE(ReadsEof(control, 100)) << "another instance reaped it";

  auto again = Create(InstanceConfig("cccc3333"));
  ASSERT_NE(again, nullptr);
  ASSERT_TRUE(again->ReapOrphans().ok());
  EXPECT_TRUE(ReadsEof(control, 1000));
  EXPECT_FALSE(std::filesystem::exists("/proc/" + std::to_string(pid)));
  ::close(control);
}

TEST_F(ProcessIsolatorTest, EnclaveInheritsOnlyTheSecretEnvironmentOfItsSpec) {
  ASSERT_EQ(::setenv("AIRLOCK_PI_SOURCE_A", "value-of-a", 1), 0);
  ASSERT_EQ(::setenv("AIRLOCK_PI_SOURCE_B", "value-of-b", 1), 0);
  auto isolator = Create(BaseConfig());
  ASSERT_NE(isolator, nullptr);
  auto handle = isolator->Provision(
      {{"request_id", "r-env"}, {"secret_env", {"AIRLOCK_PI_SOURCE_A", "AIRLOCK_PI_UNSET"}}});
  ::unsetenv("AIRLOCK_PI_SOURCE_A");
  ::unsetenv("AIRLOCK_PI_SOURCE_B");
  ASSERT_TRUE(handle.ok()) << handle.status().ToString();
  const pid_t pid = RecordedPid("r-env");
  ASSERT_GT(pid, 0);
  std::vector<std::string> environment;
  const std::string block = ReadFile("/proc/" + std::to_string(pid) + "/environ");
  for (size_t start = 0; start < block.size();) {
    const size_t end = std::min(block.find('\0', start), block.size());
    if (end > start) environment.push_back(block.substr(start, end - start));
    start = end + 1;
  }
  std::vector<std::string> expected = {"AIRLOCK_PI_SOURCE_A=value-of-a"};
#if defined(AIRLOCK_SANITIZED_BUILD)
  for (const char* name : {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"}) {
    if (const char* value = std::getenv(name)) expected.push_back(std::string(name) + "=" + value);
  }
#endif
  EXPECT_EQ(environment, expected) << "the enclave starts from an empty environment";
  EXPECT_TRUE((*handle)->Terminate().ok());
}

TEST_F(ProcessIsolatorTest, RefusesSecretEnvironmentNamesThatAreNotNames) {
  auto isolator = Create(BaseConfig());
  ASSERT_NE(isolator, nullptr);
  for (const Json& names : {Json::array({"A=B"}), Json::array({""}), Json::array({"1ABC"}),
                            Json::array({"PATH;rm"}), Json::array({7}), Json("NAME")}) {
    auto refused = isolator->Provision({{"request_id", "r-bad-env"}, {"secret_env", names}});
    EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument) << names.dump();
  }
  Json many = Json::array();
  for (int i = 0; i < 257; ++i) many.push_back("N" + std::to_string(i));
  EXPECT_EQ(isolator->Provision({{"request_id", "r-many"}, {"secret_env", many}}).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace airlock::isolators::process
