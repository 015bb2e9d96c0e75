#include "tests/kernel/e2e/kernel_process.h"

#include <openssl/evp.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>
#include <vector>

extern char** environ;

namespace airlock::test {
namespace {

std::string AirlockdPath() {
  return std::string(AIRLOCK_BINARY_DIR) + "/bin/airlockd";
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

pid_t Spawn(const std::vector<std::string>& args, const std::string& output_file,
            const std::vector<std::string>& extra_environment = {}) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e) envp.push_back(*e);
  for (const auto& e : extra_environment) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  // fork rather than posix_spawn, for PR_SET_PDEATHSIG: a test that dies
  // (a crash, a timeout's kill) takes its kernels with it instead of
  // leaving them running. Only async-signal-safe calls after the fork.
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(127);
  const int out = ::open(output_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (out < 0 || ::dup2(out, STDOUT_FILENO) < 0 || ::dup2(out, STDERR_FILENO) < 0) ::_exit(127);
  ::execve(argv[0], argv.data(), envp.data());
  ::_exit(127);
}

}  // namespace

KernelProcess::KernelProcess(std::string dir, nlohmann::json config)
    : dir_(std::move(dir)), config_(std::move(config)) {
  std::ofstream(config_path()) << config_.dump(2);
}

KernelProcess::~KernelProcess() {
  if (pid_ > 0) Kill();
}

bool KernelProcess::Start() {
  exit_status_ = -1;
  const std::string port_file = dir_ + "/port-" + std::to_string(++starts_);
  // Another KernelProcess may have run in this directory before: only this
  // start's file says this process listens.
  std::error_code ignored;
  std::filesystem::remove(port_file, ignored);
  std::vector<std::string> args = {AirlockdPath(), "serve",  "--config",
                                   config_path(),  "--port", std::to_string(requested_port_),
                                   "--port-file",  port_file};
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  pid_ = Spawn(args, dir_ + "/airlockd.log", extra_environment_);
  if (pid_ <= 0) return false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    if (std::filesystem::exists(port_file)) {
      port_ = static_cast<uint16_t>(std::stoi(Slurp(port_file)));
      return true;
    }
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      exit_status_ = status;
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  Kill();
  return false;
}

int KernelProcess::Stop() {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void KernelProcess::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

int KernelProcess::WaitForExit(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return exit_status_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      exit_status_ = status;
      return status;
    }
    if (std::chrono::steady_clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::string KernelProcess::log() const {
  return Slurp(dir_ + "/airlockd.log");
}

int RunAirlockd(const std::vector<std::string>& args, std::string* output) {
  char name[] = "/tmp/airlockd-out-XXXXXX";
  const int fd = mkstemp(name);
  if (fd < 0) return -1;
  close(fd);
  std::vector<std::string> full = {AirlockdPath()};
  full.insert(full.end(), args.begin(), args.end());
  const pid_t pid = Spawn(full, name);
  int status = 0;
  if (pid > 0) waitpid(pid, &status, 0);
  if (output != nullptr) *output = Slurp(name);
  unlink(name);
  if (pid <= 0) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string Sha256HexOf(const std::string& text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < length; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  return out;
}

std::vector<pid_t> EnclaveChildren(pid_t parent) {
  std::vector<pid_t> live;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return live;
  while (dirent* entry = ::readdir(proc)) {
    const pid_t pid = static_cast<pid_t>(std::atoi(entry->d_name));
    if (pid <= 0) continue;
    const std::string stat = Slurp("/proc/" + std::to_string(pid) + "/stat");
    const size_t close = stat.rfind(')');
    if (close == std::string::npos || stat.find("(airlock-enclave)") == std::string::npos) {
      continue;
    }
    std::istringstream rest(stat.substr(close + 2));
    char state = 0;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid != parent) continue;
    if (state == 'Z') {
      if (parent == ::getpid()) ::waitpid(pid, nullptr, WNOHANG);
      continue;
    }
    live.push_back(pid);
  }
  ::closedir(proc);
  return live;
}

std::string PluginPath(const std::string& name) {
  return std::string(AIRLOCK_PLUGIN_DIR) + "/" + name + ".so";
}

namespace {

// Tunnel `name` (airlock_tunnel_<name>) on 127.0.0.1, an ephemeral port, TLS
// with `pki.server`'s certificate.
nlohmann::json TunnelRef(const std::string& name, const TestPki& pki) {
  return {{"name", name},
          {"plugin", PluginPath("airlock_tunnel_" + name)},
          {"config",
           {{"listen_address", "127.0.0.1"},
            {"port", 0},
            {"public_host", "127.0.0.1"},
            {"tls",
             {{"certificate_file", pki.server.cert_file},
              {"private_key_file", pki.server.key_file}}}}}};
}

}  // namespace

nlohmann::json HttpsTunnelRef(const TestPki& pki) {
  return TunnelRef("https", pki);
}

nlohmann::json PgwireTunnelRef(const TestPki& pki) {
  return TunnelRef("pgwire", pki);
}

nlohmann::json AnalystsPolicy(const nlohmann::json& datasets) {
  return {{"version", 1},
          {"rules",
           {{{"name", "analysts"},
             {"effect", "allow"},
             {"subjects", {{"groups", {"analysts"}}}},
             {"datasets", datasets},
             {"max_window_seconds", 3600},
             {"approval", {{"groups", {"owners"}}, {"count", 1}}}}}}};
}

nlohmann::json OrdersKernelConfig(const std::string& dir, const TestPki& pki,
                                  const nlohmann::json& identity) {
  std::filesystem::create_directories(dir + "/data");
  std::ofstream(dir + "/data/orders.csv") << "order_id,amount\n1,10\n2,20\n";
  const nlohmann::json policy = AnalystsPolicy({"orders"});
  return {
      {"server", {{"listen_address", "127.0.0.1"}, {"port", 0}}},
      {"state_dir", dir + "/state"},
      {"identity", identity},
      {"policy", RulesPolicyRef(policy)},
      {"isolator", {{"name", "inprocess"}, {"plugin", PluginPath("airlock_isolator_inprocess")}}},
      {"tunnel", HttpsTunnelRef(pki)},
      {"connectors",
       {{"files",
         {{"plugin", PluginPath("airlock_connector_files")},
          {"config", {{"root", dir + "/data"}}}}}}},
      {"datasets", {{{"name", "orders"}, {"connector", "files"}}}}};
}

Headers Auth(const std::string& token) {
  return {{"Authorization", "Bearer " + token}, {"Content-Type", "application/json"}};
}

nlohmann::json TokenEntry(const std::string& raw, const std::string& subject,
                          const std::string& group) {
  return {
      {"sha256", Sha256HexOf(raw)}, {"subject", subject}, {"kind", "human"}, {"groups", {group}}};
}

nlohmann::json AliceAndBobIdentity(const std::string& alice_token, const std::string& bob_token) {
  return {{{"name", "tokens"},
           {"plugin", PluginPath("airlock_identity_static_tokens")},
           {"config",
            {{"tokens",
              {TokenEntry(alice_token, "alice", "analysts"),
               TokenEntry(bob_token, "bob", "owners")}}}}}};
}

nlohmann::json RulesPolicyRef(const nlohmann::json& policy) {
  return {{"name", "rules"}, {"plugin", PluginPath("airlock_policy_rules")}, {"config", policy}};
}

nlohmann::json ProcessIsolatorRef(const std::string& state_dir,
                                  const nlohmann::json& min_isolation) {
  return {{"name", "process"},
          {"plugin", PluginPath("airlock_isolator_process")},
          {"config", {{"state_dir", state_dir}, {"min_isolation", min_isolation}}}};
}

nlohmann::json PostgresConnectorRef(int port, const std::string& ca_file,
                                    const std::string& password_ref,
                                    const nlohmann::json& datasets) {
  return {{"plugin", PluginPath("airlock_connector_postgres")},
          {"egress", {"127.0.0.1:" + std::to_string(port)}},
          {"config",
           {{"host", "127.0.0.1"},
            {"port", port},
            {"database", "postgres"},
            {"user", "reader"},
            {"password", password_ref},
            {"sslmode", "verify-ca"},
            {"ca_file", ca_file},
            {"datasets", datasets}}}};
}

nlohmann::json MongoConnectorRef(const std::string& uri, int port, const std::string& database,
                                 const nlohmann::json& datasets) {
  return {{"plugin", PluginPath("airlock_connector_mongodb")},
          {"egress", {"127.0.0.1:" + std::to_string(port)}},
          {"config", {{"uri", uri}, {"database", database}, {"datasets", datasets}}}};
}

TunnelTarget ParseTunnelUrl(const std::string& url) {
  std::smatch m;
  static const std::regex kUrl(R"(https://([^:/]+):(\d+)(/.*)?)");
  TunnelTarget t;
  if (std::regex_match(url, m, kUrl)) {
    t.host = m[1];
    t.port = static_cast<uint16_t>(std::stoi(m[2]));
    t.prefix = m[3];
  }
  return t;
}

std::string WaitForRequestState(HttpClient& api, const std::string& id, const Headers& auth,
                                const std::string& state) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  std::string seen;
  while (std::chrono::steady_clock::now() < deadline) {
    seen = api.Get("/v1/requests/" + id, auth).json().value("state", "");
    if (seen == state) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return seen;
}

}  // namespace airlock::test
