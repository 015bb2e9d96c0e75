// airlock-agent: runs enclaves on a host that accepts no inbound connections.
// It dials the kernel over mutual TLS, enrolls once with a one-time token,
// and provisions enclaves through its local isolator when the kernel asks.
//
//   airlock-agent --config FILE
//   airlock-agent version
#include <signal.h>

#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>

#include <spdlog/spdlog.h>

#include "kernel/agent_main/agent_client.h"
#include "kernel/agent_main/agent_config.h"
#include "kernel/core/instance_identity.h"
#include "kernel/plugin_host/host_services.h"
#include "kernel/plugin_host/plugin_loader.h"

namespace {

using airlock::Result;
using airlock::Secret;
using airlock::Status;

std::string SelfDirectory() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : exe.parent_path().string();
}

// What the agent offers the isolator plugin. Enclaves resolve their own
// secrets; the agent, like the kernel, never does.
class AgentHostCallbacks : public airlock::plugin_host::HostCallbacks {
 public:
  void Log(int32_t level, std::string_view plugin, std::string_view message) override {
    if (level >= AIRLOCK_LOG_WARN) {
      spdlog::warn("[{}] {}", plugin, message);
    } else {
      spdlog::info("[{}] {}", plugin, message);
    }
  }
  Status AuditEmit(std::string_view event_json) override {
    spdlog::info("isolator audit event: {}", event_json.substr(0, 2048));
    return Status::Ok();
  }
  int64_t NowMicros() override {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  Result<Secret> ResolveSecret(std::string_view) override {
    return Status::PermissionDenied("the agent never resolves secrets; enclaves do");
  }
  Status EnclaveServe(int) override {
    return Status::NotImplemented("the agent runs enclaves as separate processes only");
  }
  std::string EnclaveExecutable() override { return SelfDirectory() + "/airlock-enclave"; }
};

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "version") == 0) {
      std::cout << "airlock-agent " << AIRLOCK_VERSION << "\n";
      return 0;
    }
    if (std::strcmp(argv[i], "--config") == 0 && i + 1 < argc) config_path = argv[++i];
  }
  if (config_path.empty()) {
    std::cerr << "usage: airlock-agent --config FILE\n";
    return 2;
  }
  auto config = airlock::agent::LoadAgentConfig(config_path);
  if (!config.ok()) {
    std::cerr << "airlock-agent: invalid configuration: " << config.status().message() << "\n";
    return 2;
  }
  // Signals are taken by one thread; every other thread blocks them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  AgentHostCallbacks callbacks;
  airlock::plugin_host::HostServicesTable services(callbacks);
  airlock::plugin_host::PluginLoader loader(services.get());
  auto library = loader.Load(config->isolator_plugin, std::nullopt, AIRLOCK_KIND_ISOLATOR);
  if (!library.ok()) {
    std::cerr << "airlock-agent: isolator: " << library.status().message() << "\n";
    return 2;
  }
  // The isolator scopes the enclaves it starts and reaps to this agent.
  std::error_code made;
  std::filesystem::create_directories(config->state_dir, made);
  std::filesystem::permissions(config->state_dir, std::filesystem::perms::owner_all,
                               std::filesystem::perm_options::replace, made);
  auto instance_id = airlock::LoadInstanceId(config->state_dir);
  if (!instance_id.ok()) {
    std::cerr << "airlock-agent: " << instance_id.status().message() << "\n";
    return 2;
  }
  airlock::AnnotateIsolatorConfig(config->isolator_config, config->state_dir, *instance_id);
  auto isolator = airlock::plugin_host::IsolatorPlugin::Create(std::move(library).value(),
                                                               config->isolator_config);
  if (!isolator.ok()) {
    std::cerr << "airlock-agent: isolator: " << isolator.status().message() << "\n";
    return 2;
  }
  if (const Status reaped = (*isolator)->ReapOrphans(); !reaped.ok()) {
    spdlog::warn("reaping enclaves a previous run left failed: {}", reaped.ToString());
  }
  auto isolation = (*isolator)->DescribeIsolation();
  airlock::agent::AgentClient client(*config, **isolator,
                                     isolation.ok() ? *isolation : nlohmann::json::object());
  // A kernel that cannot be reached yet (still starting, network not up) is
  // retried; a refusal is final.
  std::string last_failure;  // said once while it stays the same
  for (;;) {
    const Status enrolled = client.EnsureEnrolled();
    if (enrolled.ok()) break;
    if (enrolled.code() != airlock::StatusCode::kUnavailable) {
      std::cerr << "airlock-agent: " << enrolled.message() << "\n";
      return 3;
    }
    if (enrolled.message() != last_failure) {
      spdlog::warn("{}; retrying every {} ms", enrolled.message(), config->reconnect_ms);
      last_failure = enrolled.message();
    } else {
      spdlog::debug("{}; retrying", enrolled.message());
    }
    sigset_t pending;
    sigpending(&pending);
    if (sigismember(&pending, SIGTERM) || sigismember(&pending, SIGINT)) return 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(config->reconnect_ms));
  }
  std::thread waiter([&client, signals] {
    int received = 0;
    sigwait(&signals, &received);
    client.Stop();
  });
  client.Run();
  // Wake the waiter if the loop ended for another reason.
  pthread_kill(waiter.native_handle(), SIGTERM);
  waiter.join();
  return 0;
}
