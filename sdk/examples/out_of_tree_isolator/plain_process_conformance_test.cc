// Runs the SDK's isolator conformance kit against the plain-process isolator,
// with a stand-in for airlock-enclave (stand_in_enclave.cc). The kit checks
// that it reports no isolation honestly and that terminate and destroy end
// its enclaves (their control sockets read end of file). Since the kit takes
// an isolation of "none" at its word, the tests after it look at the
// process itself: started, in a process group of its own, killed and reaped
// by terminate, given only the variables secret_env names.
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <airlock/testing/isolator_conformance.hpp>

namespace {

namespace conformance = airlock::conformance;
using Json = nlohmann::json;

class PlainProcessFixture : public conformance::IsolatorFixture {
 public:
  airlock::Result<conformance::IsolatorSetup> Prepare() override {
    return conformance::IsolatorSetup{PLAIN_PROCESS_PLUGIN_PATH, "{}", STAND_IN_ENCLAVE};
  }
};

}  // namespace

AIRLOCK_ISOLATOR_CONFORMANCE_SUITE(PlainProcess, PlainProcessFixture);

namespace {

// This process's children, zombies included.
std::set<pid_t> Children() {
  std::set<pid_t> out;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in(entry.path() / "stat");
    std::stringstream text;
    text << in.rdbuf();
    const std::string stat = text.str();
    const size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    char state = 0;
    pid_t parent = 0;
    rest >> state >> parent;
    if (parent == ::getpid()) out.insert(static_cast<pid_t>(std::stol(name)));
  }
  return out;
}

// What the stand-in enclave wrote first: its environment, up to the empty line.
std::vector<std::string> EnvironmentOf(int control_fd) {
  std::string text;
  char c = 0;
  while (text.size() < 65536 && ::recv(control_fd, &c, 1, 0) == 1) {
    text.push_back(c);
    if (text == "\n" || (text.size() >= 2 && text.compare(text.size() - 2, 2, "\n\n") == 0)) break;
  }
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

bool ReadsEndOfFile(int fd) {
  timeval timeout{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  char buffer[4096];
  ssize_t n;
  while ((n = ::recv(fd, buffer, sizeof buffer, 0)) > 0) {
  }
  return n == 0;
}

class PlainProcessIsolator : public ::testing::Test {
 protected:
  void SetUp() override {
    conformance::KitHost::Get().SetEnclaveExecutable(STAND_IN_ENCLAVE);
    auto info = conformance::EnterPluginFile(PLAIN_PROCESS_PLUGIN_PATH);
    ASSERT_TRUE(info.ok()) << info.status().message();
    ASSERT_TRUE(conformance::CheckManifest(**info, AIRLOCK_KIND_ISOLATOR, "isolator").ok());
    info_ = *info;
    table_ = static_cast<const airlock_type_isolator_vtable*>(info_->vtable);
  }
  void TearDown() override {
    if (instance_ != nullptr) table_->destroy(instance_);
  }

  airlock_type_status Create(const std::string& config, std::string* message = nullptr) {
    airlock::abi::ErrorHolder error;
    const airlock_type_status status =
        table_->create(config.data(), config.size(), &instance_, error.get());
    if (message != nullptr) *message = error.message();
    return status;
  }

  airlock_type_status Provision(const Json& spec, airlock_type_enclave_launch* launch,
                                std::string* message = nullptr) {
    const std::string text = spec.dump();
    *launch = {};
    launch->size = sizeof *launch;
    launch->control_fd = -1;
    airlock::abi::ErrorHolder error;
    const airlock_type_status status =
        table_->provision(instance_, text.data(), text.size(), launch, error.get());
    if (message != nullptr) *message = error.message();
    return status;
  }

  airlock_type_status Terminate(void* enclave) {
    airlock::abi::ErrorHolder error;
    return table_->terminate(instance_, enclave, error.get());
  }

  const airlock_type_plugin_info* info_ = nullptr;
  const airlock_type_isolator_vtable* table_ = nullptr;
  void* instance_ = nullptr;
};

TEST_F(PlainProcessIsolator, ItSaysItIsolatesNothing) {
  ASSERT_EQ(Create("{}"), AIRLOCK_OK);
  airlock::abi::BufferHolder out;
  airlock::abi::ErrorHolder error;
  ASSERT_EQ(table_->describe_isolation(instance_, out.get(), error.get()), AIRLOCK_OK);
  const Json description = Json::parse(out.view(), nullptr, false);
  EXPECT_EQ(description.value("isolation", ""), "none") << out.view();
  EXPECT_EQ(description.value("mechanisms", Json()), Json::object()) << out.view();
  EXPECT_EQ(description.value("development_only", false), true) << out.view();
}

TEST_F(PlainProcessIsolator, TerminateKillsAndReapsTheEnclaveProcess) {
  ASSERT_EQ(Create("{}"), AIRLOCK_OK);
  const auto before = Children();
  airlock_type_enclave_launch launch;
  ASSERT_EQ(Provision({{"request_id", "r-terminate"}}, &launch), AIRLOCK_OK);
  std::set<pid_t> started;
  for (pid_t pid : Children()) {
    if (before.count(pid) == 0) started.insert(pid);
  }
  ASSERT_EQ(started.size(), 1u) << "provision must start exactly one process";
  const pid_t pid = *started.begin();
  std::error_code ec;
  EXPECT_TRUE(std::filesystem::equivalent(
      std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/exe", ec), STAND_IN_ENCLAVE,
      ec))
      << "the enclave process does not run the host's enclave executable";
  EXPECT_EQ(::getpgid(pid), pid) << "the enclave is not in a process group of its own";
  EnvironmentOf(launch.control_fd);  // it runs and speaks on the channel

  ASSERT_EQ(Terminate(launch.enclave), AIRLOCK_OK);
  EXPECT_FALSE(std::filesystem::exists("/proc/" + std::to_string(pid)))
      << "process " << pid << " was not killed and reaped by terminate";
  EXPECT_TRUE(ReadsEndOfFile(launch.control_fd));
  ::close(launch.control_fd);
}

TEST_F(PlainProcessIsolator, TheEnclaveInheritsOnlyTheVariablesSecretEnvNames) {
  ::setenv("PLAIN_PROCESS_TEST_SOURCE", "source-password", 1);
  ::setenv("PLAIN_PROCESS_TEST_OTHER", "not-for-this-enclave", 1);
  ::unsetenv("PLAIN_PROCESS_TEST_UNSET");
  ASSERT_EQ(Create("{}"), AIRLOCK_OK);
  airlock_type_enclave_launch launch;
  ASSERT_EQ(Provision({{"request_id", "r-env"},
                       {"secret_env", {"PLAIN_PROCESS_TEST_SOURCE", "PLAIN_PROCESS_TEST_UNSET"}}},
                      &launch),
            AIRLOCK_OK);
  EXPECT_EQ(EnvironmentOf(launch.control_fd),
            std::vector<std::string>{"PLAIN_PROCESS_TEST_SOURCE=source-password"});
  EXPECT_EQ(Terminate(launch.enclave), AIRLOCK_OK);
  ::close(launch.control_fd);

  std::string message;
  EXPECT_EQ(
      Provision({{"request_id", "r-bad-env"}, {"secret_env", {"NOT A NAME"}}}, &launch, &message),
      AIRLOCK_ERR_INVALID_ARGUMENT);
  EXPECT_NE(message.find("secret_env"), std::string::npos) << message;
}

TEST_F(PlainProcessIsolator, AnExecutableThatCannotStartIsAnErrorAndLeavesNoChild) {
  ASSERT_EQ(Create(Json{{"enclave_executable", "/nonexistent/airlock-enclave"}}.dump()),
            AIRLOCK_OK);
  const auto before = Children();
  airlock_type_enclave_launch launch;
  std::string message;
  EXPECT_EQ(Provision({{"request_id", "r-missing"}}, &launch, &message), AIRLOCK_ERR_UNAVAILABLE);
  EXPECT_NE(message.find("/nonexistent/airlock-enclave"), std::string::npos) << message;
  EXPECT_EQ(launch.enclave, nullptr);
  EXPECT_EQ(Children(), before) << "a failed start left a child (or a zombie) behind";
}

TEST_F(PlainProcessIsolator, ABadConfigurationIsRefusedNamingTheKey) {
  for (const std::string config :
       {R"({"enclave_exe": "/bin/true"})", R"({"enclave_executable": 7})"}) {
    SCOPED_TRACE(config);
    std::string message;
    EXPECT_EQ(Create(config, &message), AIRLOCK_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(instance_, nullptr);
    EXPECT_NE(message.find("enclave_exe"), std::string::npos) << message;
    ASSERT_NE(info_->check_config, nullptr);
    airlock::abi::ErrorHolder checked;
    EXPECT_EQ(info_->check_config(config.data(), config.size(), checked.get()),
              AIRLOCK_ERR_INVALID_ARGUMENT);
  }
}

}  // namespace
