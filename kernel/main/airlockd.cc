// airlockd: the Airlock kernel daemon and its operator commands.
//
//   airlockd serve --config FILE [--port N] [--port-file PATH]
//                  [--accept-unverified-audit-history]
//   airlockd check-config --config FILE
//   airlockd state migrate --config FILE
//   airlockd audit verify FILE [--public-key PEM]... [--checkpoints FILE]...
//   airlockd audit verify --config FILE [--public-key PEM]... [--checkpoints FILE]...
//   airlockd audit export --config FILE [--output PATH]
//   airlockd audit keygen --private-key PATH --public-key PATH
//   airlockd token create --subject NAME [--kind human|service|agent] [--groups a,b]
//   airlockd version
#include <signal.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "kernel/common/crypto.h"
#include "kernel/core/config.h"
#include "kernel/main/audit_commands.h"
#include "kernel/main/kernel_app.h"
#include "kernel/main/state_backend.h"

namespace {

using airlock::Status;

constexpr const char* kUsage =
    "usage:\n"
    "  airlockd serve --config FILE [--port N] [--port-file PATH]\n"
    "                 [--accept-unverified-audit-history]\n"
    "  airlockd check-config --config FILE\n"
    "  airlockd state migrate --config FILE\n"
    "  airlockd audit verify FILE [--public-key PEM]... [--checkpoints FILE]...\n"
    "  airlockd audit verify --config FILE [--public-key PEM]... [--checkpoints FILE]...\n"
    "  airlockd audit export --config FILE [--output PATH]\n"
    "  airlockd audit keygen --private-key PATH --public-key PATH\n"
    "  airlockd token create --subject NAME [--kind human|service|agent] [--groups a,b]\n"
    "  airlockd version\n";

// Reads "--name value" pairs after the subcommand.
class Flags {
 public:
  Flags(int argc, char** argv, int first) {
    for (int i = first; i < argc; ++i) args_.emplace_back(argv[i]);
  }
  std::string Get(const std::string& name, const std::string& fallback = "") const {
    for (size_t i = 0; i + 1 < args_.size(); ++i) {
      if (args_[i] == name) return args_[i + 1];
    }
    return fallback;
  }
  bool Has(const std::string& name) const {
    for (const auto& arg : args_) {
      if (arg == name) return true;
    }
    return false;
  }
  const std::vector<std::string>& positional() const { return args_; }

 private:
  std::vector<std::string> args_;
};

std::string DefaultPluginDir() {
  if (const char* env = std::getenv("AIRLOCK_PLUGIN_DIR"); env != nullptr && *env != '\0') {
    return env;
  }
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return "plugins";
  return (exe.parent_path().parent_path() / "plugins").string();
}

// The configuration named by --config, or nothing after saying why.
std::optional<airlock::KernelConfig> ConfigFromFlags(const Flags& flags) {
  const std::string path = flags.Get("--config");
  if (path.empty()) {
    std::cerr << kUsage;
    return std::nullopt;
  }
  auto config = airlock::LoadKernelConfig(path, DefaultPluginDir());
  if (!config.ok()) {
    std::cerr << "airlockd: invalid configuration: " << config.status().message() << "\n";
    return std::nullopt;
  }
  return std::move(config).value();
}

int Serve(const Flags& flags) {
  auto config = ConfigFromFlags(flags);
  if (!config) return 2;
  if (const std::string port = flags.Get("--port"); !port.empty()) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value > 65535) {
      std::cerr << "airlockd: --port must be a number between 0 and 65535\n";
      return 2;
    }
    config->server.port = static_cast<uint16_t>(value);
  }
  config->accept_unverified_audit_history = flags.Has("--accept-unverified-audit-history");

  // Signals are taken synchronously by this thread; every other thread
  // inherits the blocked mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  const std::string address = config->server.listen_address;  // config moves into the app
  auto app = airlock::KernelApp::Start(std::move(config).value());
  if (!app.ok()) {
    std::cerr << "airlockd: cannot start: " << app.status().message() << "\n";
    return 1;
  }
  const uint16_t port = (*app)->port();
  std::cout << "airlockd listening on " << ((*app)->tls() ? "https" : "http") << "://" << address
            << ":" << port << std::endl;
  if (const std::string port_file = flags.Get("--port-file"); !port_file.empty()) {
    const std::string tmp = port_file + ".tmp";
    std::ofstream(tmp) << port << "\n";
    std::filesystem::rename(tmp, port_file);
  }
  for (;;) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) continue;
    if (sig == SIGHUP) {
      const Status reloaded = (*app)->ReloadPolicy();
      if (reloaded.ok()) {
        spdlog::info("policy reloaded");
      } else {
        spdlog::error("policy reload rejected, previous policy stays: {}", reloaded.message());
      }
      continue;
    }
    spdlog::info("shutting down (signal {})", sig);
    break;
  }
  (*app)->Stop();
  // EX_TEMPFAIL: another replica took this one's requests over; a service
  // manager starts it again, as a new replica.
  return (*app)->lease_lost() ? 75 : 0;
}

// Validates as `serve` does before it starts serving (KernelApp::Check):
// exit 0 and "ok: ..." when serve would accept the configuration, 1 and the
// reason otherwise. Notes name what could not be checked without starting it.
int CheckConfig(const Flags& flags) {
  auto config = ConfigFromFlags(flags);
  if (!config) return 1;
  auto report = airlock::KernelApp::Check(*config);
  if (!report.ok()) {
    std::cerr << "airlockd: invalid configuration: " << report.status().message() << "\n";
    return 1;
  }
  for (const auto& note : report->notes) std::cout << "note: " << note << "\n";
  std::cout << "ok: " << config->datasets.size() << " datasets, " << report->plugins.size()
            << " plugins (" << config->identity.size() << " identity provider(s))\n";
  return 0;
}

// Brings the configured state store's schema up to this binary's. Safe to
// run again, and from several hosts at once (PostgreSQL serialises
// migrators); refused when the database is newer than this binary.
int StateMigrate(const Flags& flags) {
  auto config = ConfigFromFlags(flags);
  if (!config) return 2;
  auto report = airlock::MigrateConfiguredStateStore(*config);
  if (!report.ok()) {
    std::cerr << "airlockd: state migrate failed: " << report.status().message() << "\n";
    return 1;
  }
  if (report->from_version == report->to_version) {
    std::cout << "state store " << report->store << ": schema already at version "
              << report->to_version << "\n";
  } else {
    std::cout << "state store " << report->store << ": schema migrated from version "
              << report->from_version << " to " << report->to_version << "\n";
  }
  return 0;
}

int TokenCreate(const Flags& flags) {
  const std::string subject = flags.Get("--subject");
  if (subject.empty()) {
    std::cerr << kUsage;
    return 2;
  }
  const std::string kind = flags.Get("--kind", "human");
  if (kind != "human" && kind != "service" && kind != "agent") {
    std::cerr << "--kind must be human, service or agent\n";
    return 2;
  }
  nlohmann::json groups = nlohmann::json::array();
  std::string list = flags.Get("--groups");
  for (size_t start = 0; start < list.size();) {
    size_t end = list.find(',', start);
    if (end == std::string::npos) end = list.size();
    if (end > start) groups.push_back(list.substr(start, end - start));
    start = end + 1;
  }
  const std::string token = "alk_" + airlock::RandomHex(24);
  nlohmann::json entry = {{"sha256", airlock::Sha256Hex(token)},
                          {"subject", subject},
                          {"kind", kind},
                          {"groups", groups}};
  std::cout << "token (shown once, store it now): " << token << "\n"
            << "configuration entry for identity static-tokens:\n"
            << entry.dump(2) << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << kUsage;
    return 2;
  }
  const std::string command = argv[1];
  if (command == "serve") return Serve(Flags(argc, argv, 2));
  if (command == "check-config") return CheckConfig(Flags(argc, argv, 2));
  if (command == "state" && argc >= 3 && std::strcmp(argv[2], "migrate") == 0) {
    return StateMigrate(Flags(argc, argv, 3));
  }
  if (command == "audit") {
    return airlock::RunAuditCommand(argc, argv, 2, [](const std::string& path) {
      return airlock::LoadKernelConfig(path, DefaultPluginDir());
    });
  }
  if (command == "token" && argc >= 3 && std::strcmp(argv[2], "create") == 0) {
    return TokenCreate(Flags(argc, argv, 3));
  }
  if (command == "version") {
    std::cout << "airlockd " << AIRLOCK_VERSION << " (plugin ABI " << AIRLOCK_ABI_MAJOR << "."
              << AIRLOCK_ABI_MINOR << ")\n";
    return 0;
  }
  std::cerr << kUsage;
  return 2;
}
