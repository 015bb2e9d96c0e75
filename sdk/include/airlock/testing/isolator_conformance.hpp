// The isolator conformance kit: one GoogleTest suite any enclave isolator
// runs against itself, through the C ABI as the kernel drives it.
//
//   class MyFixture : public airlock::conformance::IsolatorFixture {
//    public:
//     airlock::Result<airlock::conformance::IsolatorSetup> Prepare() override { ... }
//   };
//   AIRLOCK_ISOLATOR_CONFORMANCE_SUITE(MyIsolator, MyFixture);   // at global scope
//
// It checks that an isolator reports its isolation honestly and tears
// down what it starts:
//   - describe_isolation answers {"isolation", "mechanisms"}, and an
//     isolation other than "none" runs the enclave in a process of its own
//     (the host's enclave executable, a descendant of the host);
//   - every mechanism it reports that the kit can see from outside holds for
//     that process: pid, network, mount, IPC, UTS and user namespaces other
//     than the host's, no_new_privs, a seccomp filter, no effective
//     capabilities (the others, such as rlimits and cgroups, are taken on
//     trust and named in the test's output);
//   - provision hands back a connected control socket; terminate ends the
//     enclave (its process is gone, the socket reads end of file), and is
//     safe to call for an enclave that already ended;
//   - destroying the isolator (the kernel exits) ends the enclaves still
//     running;
//   - a malformed spec is refused without a crash.
//
// Header-only. Depends on the SDK headers, GoogleTest and dlopen (link
// ${CMAKE_DL_LIBS}); Linux (/proc).
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "airlock/c/airlock_plugin.h"
#include "airlock/cpp/abi_util.hpp"
#include "airlock/cpp/status.hpp"
#include "airlock/testing/plugin_harness.hpp"

// LeakSanitizer's, when the test runs under it (see
// DestroyingTheIsolatorEndsItsEnclaves).
extern "C" void __lsan_ignore_object(const void* p) __attribute__((weak));

namespace airlock::conformance {

struct IsolatorSetup {
  std::string plugin_path;
  std::string config_json;  // a JSON object
  // The airlock-enclave executable the host offers (enclave_executable).
  std::string enclave_executable;
};

class IsolatorFixture {
 public:
  virtual ~IsolatorFixture() = default;
  virtual Result<IsolatorSetup> Prepare() = 0;
};

namespace isolator_detail {

inline std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Descendants of this process, now.
inline std::set<pid_t> Descendants() {
  std::map<pid_t, std::vector<pid_t>> children;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string stat = ReadText(entry.path().string() + "/stat");
    const size_t close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    char state = 0;
    pid_t parent = 0;
    rest >> state >> parent;
    if (state != 'Z') children[parent].push_back(static_cast<pid_t>(std::stol(name)));
  }
  std::set<pid_t> out;
  std::vector<pid_t> queue = {::getpid()};
  while (!queue.empty()) {
    const pid_t pid = queue.back();
    queue.pop_back();
    for (pid_t child : children[pid]) {
      if (out.insert(child).second) queue.push_back(child);
    }
  }
  return out;
}

inline bool Alive(pid_t pid) {
  const std::string stat = ReadText("/proc/" + std::to_string(pid) + "/stat");
  const size_t close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

inline std::string Namespace(pid_t pid, const char* kind) {
  std::error_code ec;
  return std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/ns/" + kind, ec).string();
}

inline std::string StatusField(pid_t pid, const std::string& field) {
  std::istringstream lines(ReadText("/proc/" + std::to_string(pid) + "/status"));
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(field + ":", 0) == 0) {
      std::string value = line.substr(field.size() + 1);
      value.erase(0, value.find_first_not_of(" \t"));
      return value;
    }
  }
  return {};
}

class Isolator {
 public:
  Isolator(const airlock_type_isolator_vtable* table, const std::string& config) : table_(table) {
    abi::ErrorHolder error;
    status_ = table_->create(config.data(), config.size(), &instance_, error.get());
    error_ = error.message();
  }
  ~Isolator() { Destroy(); }
  Isolator(const Isolator&) = delete;
  Isolator& operator=(const Isolator&) = delete;

  airlock_type_status created() const { return status_; }
  const std::string& create_error() const { return error_; }

  void Destroy() {
    if (instance_ != nullptr) table_->destroy(instance_);
    instance_ = nullptr;
  }

  Result<nlohmann::json> Describe() const {
    abi::BufferHolder out;
    abi::ErrorHolder error;
    const airlock_type_status rc = table_->describe_isolation(instance_, out.get(), error.get());
    if (rc != AIRLOCK_OK) return error.ToStatus(rc, "describe_isolation failed");
    auto parsed = nlohmann::json::parse(out.view(), nullptr, false);
    if (!parsed.is_object()) return Status::InvalidArgument("the description is not an object");
    return parsed;
  }

  struct Launched {
    int control_fd = -1;
    void* enclave = nullptr;
  };
  Result<Launched> Provision(const std::string& spec) const {
    airlock_type_enclave_launch launch{};
    launch.size = sizeof(launch);
    launch.control_fd = -1;
    abi::ErrorHolder error;
    const airlock_type_status rc =
        table_->provision(instance_, spec.data(), spec.size(), &launch, error.get());
    if (rc != AIRLOCK_OK) return error.ToStatus(rc, "provision failed");
    return Launched{launch.control_fd, launch.enclave};
  }

  Status Terminate(void* enclave) const {
    abi::ErrorHolder error;
    return error.ToStatus(table_->terminate(instance_, enclave, error.get()), "terminate failed");
  }

 private:
  const airlock_type_isolator_vtable* table_;
  void* instance_ = nullptr;
  airlock_type_status status_ = AIRLOCK_ERR_INTERNAL;
  std::string error_;
};

inline Result<const airlock_type_isolator_vtable*> LoadIsolator(const std::string& path) {
  return LoadTable<airlock_type_isolator_vtable>(path, AIRLOCK_KIND_ISOLATOR, "isolator",
                                                 "isolator", AIRLOCK_ISOLATOR_VTABLE_1_0_SIZE);
}

// Reads from `fd` until end of file or `timeout`; true on end of file.
inline bool ReadsEndOfFile(int fd, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buffer[4096];
  while (std::chrono::steady_clock::now() < deadline) {
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
    if (n == 0) return true;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

}  // namespace isolator_detail

template <typename Fixture>
class IsolatorConformance : public ::testing::Test {
 protected:
  void SetUp() override {
    Fixture fixture;
    auto prepared = fixture.Prepare();
    ASSERT_TRUE(prepared.ok()) << "the fixture could not prepare: " << prepared.status().message();
    setup_ = std::move(prepared).value();
    KitHost::Get().SetEnclaveExecutable(setup_.enclave_executable);
    auto table = isolator_detail::LoadIsolator(setup_.plugin_path);
    ASSERT_TRUE(table.ok()) << table.status().message();
    table_ = *table;
    isolator_ = std::make_unique<isolator_detail::Isolator>(table_, setup_.config_json);
    ASSERT_EQ(isolator_->created(), AIRLOCK_OK)
        << "create() refused the fixture's configuration: " << isolator_->create_error();
    auto described = isolator_->Describe();
    ASSERT_TRUE(described.ok()) << described.status().message();
    description_ = *described;
  }

  bool Isolates() const { return description_.value("isolation", "none") != "none"; }

  std::string Spec(const std::string& request_id) const {
    return nlohmann::json{{"request_id", request_id},
                          {"limits", {{"memory_bytes", 256 << 20}, {"query_timeout_ms", 30000}}},
                          {"egress", nlohmann::json::array()}}
        .dump();
  }

  // The enclave's process once it runs the enclave executable: a
  // descendant that was not there before provision (0 when none).
  pid_t EnclaveProcess(const std::set<pid_t>& before) const {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      for (pid_t pid : isolator_detail::Descendants()) {
        if (before.count(pid)) continue;
        std::error_code ec;
        const auto exe = std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/exe", ec);
        if (!ec && std::filesystem::equivalent(exe, setup_.enclave_executable, ec)) return pid;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return 0;
  }

  static bool GoneWithin(pid_t pid, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (!isolator_detail::Alive(pid)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return !isolator_detail::Alive(pid);
  }

  IsolatorSetup setup_;
  const airlock_type_isolator_vtable* table_ = nullptr;
  std::unique_ptr<isolator_detail::Isolator> isolator_;
  nlohmann::json description_;
};

TYPED_TEST_SUITE_P(IsolatorConformance);

TYPED_TEST_P(IsolatorConformance, ItsDescriptionIsWellFormed) {
  EXPECT_TRUE(this->description_.contains("isolation")) << this->description_.dump();
  EXPECT_TRUE(this->description_.value("mechanisms", nlohmann::json()).is_object())
      << this->description_.dump();
  if (!this->Isolates()) {
    EXPECT_TRUE(this->description_.value("development_only", false))
        << "an isolator providing no isolation must say it is for development only";
  }
}

TYPED_TEST_P(IsolatorConformance, TheMechanismsItReportsHoldForAnEnclave) {
  if (!this->Isolates()) GTEST_SKIP() << "isolation none: nothing to verify";
  const auto before = isolator_detail::Descendants();
  auto launched = this->isolator_->Provision(this->Spec("conformance-mechanisms"));
  ASSERT_TRUE(launched.ok()) << launched.status().message();
  const pid_t pid = this->EnclaveProcess(before);
  ASSERT_NE(pid, 0) << "no process of its own runs the enclave executable";
  const pid_t self = ::getpid();
  const auto mechanisms = this->description_["mechanisms"];
  const std::map<std::string, const char*> namespaces = {
      {"pid_namespace", "pid"}, {"network_namespace", "net"}, {"mount_namespace", "mnt"},
      {"ipc_namespace", "ipc"}, {"uts_namespace", "uts"},     {"user_namespace", "user"}};
  std::vector<std::string> on_trust;
  for (const auto& [name, claimed] : mechanisms.items()) {
    if (claimed != nlohmann::json(true)) continue;
    SCOPED_TRACE(name);
    if (auto ns = namespaces.find(name); ns != namespaces.end()) {
      const char* kind = ns->second;
      EXPECT_NE(isolator_detail::Namespace(pid, kind), isolator_detail::Namespace(self, kind))
          << "reported, but the enclave shares the host's " << kind << " namespace";
    } else if (name == "no_new_privs") {
      EXPECT_EQ(isolator_detail::StatusField(pid, "NoNewPrivs"), "1");
    } else if (name == "seccomp") {
      EXPECT_EQ(isolator_detail::StatusField(pid, "Seccomp"), "2") << "no seccomp filter";
    } else if (name == "capabilities_dropped") {
      EXPECT_EQ(isolator_detail::StatusField(pid, "CapEff"), "0000000000000000");
    } else {
      on_trust.push_back(name);
    }
  }
  if (!on_trust.empty()) {
    std::string names;
    for (const auto& n : on_trust) names += (names.empty() ? "" : ", ") + n;
    std::cout << "[ INFO     ] taken on trust (not visible from outside): " << names << "\n";
  }
  EXPECT_TRUE(this->isolator_->Terminate(launched->enclave).ok());
  ::close(launched->control_fd);
}

TYPED_TEST_P(IsolatorConformance, TerminateEndsTheEnclave) {
  const auto before = isolator_detail::Descendants();
  auto launched = this->isolator_->Provision(this->Spec("conformance-terminate"));
  ASSERT_TRUE(launched.ok()) << launched.status().message();
  ASSERT_GE(launched->control_fd, 0);
  int type = 0;
  socklen_t length = sizeof type;
  ASSERT_EQ(::getsockopt(launched->control_fd, SOL_SOCKET, SO_TYPE, &type, &length), 0)
      << "the control descriptor is not a socket";
  EXPECT_EQ(type, SOCK_STREAM);
  const pid_t pid = this->Isolates() ? this->EnclaveProcess(before) : 0;
  if (this->Isolates()) ASSERT_NE(pid, 0) << "no process of its own runs the enclave";
  ASSERT_TRUE(this->isolator_->Terminate(launched->enclave).ok());
  if (pid != 0) {
    EXPECT_TRUE(this->GoneWithin(pid, std::chrono::seconds(5)))
        << "process " << pid << " outlived terminate";
  }
  EXPECT_TRUE(isolator_detail::ReadsEndOfFile(launched->control_fd, std::chrono::seconds(5)))
      << "the control channel stayed open after terminate";
  ::close(launched->control_fd);
}

TYPED_TEST_P(IsolatorConformance, DestroyingTheIsolatorEndsItsEnclaves) {
  const auto before = isolator_detail::Descendants();
  auto first = this->isolator_->Provision(this->Spec("conformance-exit-1"));
  ASSERT_TRUE(first.ok()) << first.status().message();
  const pid_t pid = this->Isolates() ? this->EnclaveProcess(before) : 0;
  auto second = this->isolator_->Provision(this->Spec("conformance-exit-2"));
  ASSERT_TRUE(second.ok()) << second.status().message();
  // The kernel exits: the isolator goes, the enclaves were not terminated.
  // Their handles can never be released now (terminate needs the isolator):
  // not a leak of the isolator's.
  if (__lsan_ignore_object != nullptr) {
    __lsan_ignore_object(first->enclave);
    __lsan_ignore_object(second->enclave);
  }
  this->isolator_->Destroy();
  if (pid != 0) {
    EXPECT_TRUE(this->GoneWithin(pid, std::chrono::seconds(5)))
        << "enclave process " << pid << " outlived its isolator";
  }
  EXPECT_TRUE(isolator_detail::ReadsEndOfFile(first->control_fd, std::chrono::seconds(5)));
  EXPECT_TRUE(isolator_detail::ReadsEndOfFile(second->control_fd, std::chrono::seconds(5)));
  ::close(first->control_fd);
  ::close(second->control_fd);
}

TYPED_TEST_P(IsolatorConformance, AMalformedSpecIsRefusedWithoutACrash) {
  for (const std::string& spec :
       {std::string("{\"request_id\""), std::string("[]"), std::string(R"({"request_id": 7})")}) {
    auto launched = this->isolator_->Provision(spec);
    if (launched.ok()) {
      // Tolerated only if it is a working enclave; end it.
      (void)this->isolator_->Terminate(launched->enclave);
      ::close(launched->control_fd);
      ADD_FAILURE() << "provisioned from a malformed spec: " << spec.substr(0, 60);
      continue;
    }
    EXPECT_NE(launched.status().code(), StatusCode::kInternal) << launched.status().message();
  }
}

REGISTER_TYPED_TEST_SUITE_P(IsolatorConformance, ItsDescriptionIsWellFormed,
                            TheMechanismsItReportsHoldForAnEnclave, TerminateEndsTheEnclave,
                            DestroyingTheIsolatorEndsItsEnclaves,
                            AMalformedSpecIsRefusedWithoutACrash);

}  // namespace airlock::conformance

// Instantiates the suite for `Fixture` (an IsolatorFixture), at global scope.
#define AIRLOCK_ISOLATOR_CONFORMANCE_SUITE(Name, Fixture)                               \
  namespace airlock::conformance {                                                      \
  INSTANTIATE_TYPED_TEST_SUITE_P(Name, IsolatorConformance, ::testing::Types<Fixture>); \
  }                                                                                     \
  static_assert(true, "require a trailing semicolon")
