// Runs a real airlockd as a child process for end-to-end tests: writes its
// configuration into a temp directory, starts it on an ephemeral port and
// stops (or kills) it by PID.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/http_client.h"
#include "tests/support/test_pki.h"

namespace airlock::test {

class KernelProcess {
 public:
  // `config` is written to <dir>/airlock.json; the kernel listens on port 0.
  KernelProcess(std::string dir, nlohmann::json config);
  ~KernelProcess();
  KernelProcess(const KernelProcess&) = delete;
  KernelProcess& operator=(const KernelProcess&) = delete;

  // Starts the kernel and waits until it listens; false (with its log in
  // `log()`) if it exited instead.
  bool Start();
  // SIGTERM and wait: a graceful stop.
  int Stop();
  // SIGKILL and wait: a crash.
  void Kill();
  // Waits up to `timeout` for the kernel to exit by itself (a crash point,
  // kernel/audit/fault_injection.h). Returns its wait status (also when it
  // exited during the last Start()), or -1 if it is still running (it is left
  // running) or was not started.
  int WaitForExit(std::chrono::milliseconds timeout);
  // "NAME=value" entries added to the inherited environment of every later
  // Start(); an empty list restores the plain inherited environment.
  void set_extra_environment(std::vector<std::string> entries) {
    extra_environment_ = std::move(entries);
  }

  // Further `airlockd serve` arguments for the next starts.
  void set_extra_args(std::vector<std::string> args) { extra_args_ = std::move(args); }
  // Listens on `port` instead of one the system picks (for a peer that must
  // know the kernel's address before it starts).
  void set_port(uint16_t port) { requested_port_ = port; }

  uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string log() const;
  const std::string& dir() const { return dir_; }
  std::string config_path() const { return dir_ + "/airlock.json"; }

 private:
  std::string dir_;
  nlohmann::json config_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  int starts_ = 0;
  std::vector<std::string> extra_args_;
  uint16_t requested_port_ = 0;

  std::vector<std::string> extra_environment_;
  int exit_status_ = -1;  // wait status of a kernel that exited by itself
};

// Live (not zombie) airlock-enclave processes whose parent is `parent`;
// zombies among them are reaped when `parent` is this process (a test that
// makes itself the subreaper of killed kernels sees their orphaned enclaves).
std::vector<pid_t> EnclaveChildren(pid_t parent);

// Runs `airlockd <args>` to completion; returns the exit code and output.
int RunAirlockd(const std::vector<std::string>& args, std::string* output);

// Helpers every kernel-level suite needs.
// An API call's headers as the holder of bearer `token`: Authorization and a
// JSON content type.
Headers Auth(const std::string& token);
// Lowercase hex SHA-256 (static-tokens configuration holds token hashes).
std::string Sha256HexOf(const std::string& text);
// The built plugin `name` ("airlock_tunnel_https") as a path.
std::string PluginPath(const std::string& name);
// The `tunnel` plugin reference of the kernel-level suites: the https tunnel
// on 127.0.0.1, an ephemeral port, serving `pki.server`'s certificate.
nlohmann::json HttpsTunnelRef(const TestPki& pki);
// The same for the pgwire tunnel (TLS with `pki.server`'s certificate).
nlohmann::json PgwireTunnelRef(const TestPki& pki);
// A static-tokens entry for `raw` as `subject`, a human in `group`.
nlohmann::json TokenEntry(const std::string& raw, const std::string& subject,
                          const std::string& group);
// The `identity` section of the lifecycle suites: static tokens for alice
// (group analysts) and bob (group owners, the approvers).
nlohmann::json AliceAndBobIdentity(const std::string& alice_token, const std::string& bob_token);
// The `policy` reference: the rules plugin with `policy` as its document.
nlohmann::json RulesPolicyRef(const nlohmann::json& policy);
// The rules policy of the lifecycle suites: analysts may ask for `datasets`
// (names or patterns) for at most an hour, with one owner's approval.
nlohmann::json AnalystsPolicy(const nlohmann::json& datasets);
// The `isolator` reference: the process isolator keeping its state in
// `state_dir` and refusing to run without `min_isolation`.
nlohmann::json ProcessIsolatorRef(const std::string& state_dir,
                                  const nlohmann::json& min_isolation);
// A `connectors` entry for the postgres connector reading database
// "postgres" on 127.0.0.1:`port` as user "reader" (password from the secret
// reference `password_ref`) over TLS verified against `ca_file`, serving
// `datasets` ([{"name", "table"}]), with the egress that port needs.
nlohmann::json PostgresConnectorRef(int port, const std::string& ca_file,
                                    const std::string& password_ref,
                                    const nlohmann::json& datasets);
// The same for the mongodb connector: `uri` (whose server listens on
// 127.0.0.1:`port`), `database`, `datasets` ([{"name", "collection"}]).
nlohmann::json MongoConnectorRef(const std::string& uri, int port, const std::string& database,
                                 const nlohmann::json& datasets);

// A kernel of the lifecycle suites in `dir`: `identity`, one rule letting
// analysts ask for "orders" (a small CSV it writes under <dir>/data) with
// one owner's approval, the in-process isolator and the HTTPS tunnel.
nlohmann::json OrdersKernelConfig(const std::string& dir, const TestPki& pki,
                                  const nlohmann::json& identity);

// GET /v1/requests/{id} on `api` as `auth` until the request is in `state`
// or 30 s have passed; the state it was last seen in.
std::string WaitForRequestState(HttpClient& api, const std::string& id, const Headers& auth,
                                const std::string& state);

// Where a tunnel grant's "url" points: https://host:port/prefix.
struct TunnelTarget {
  std::string host;
  uint16_t port = 0;
  std::string prefix;
};
TunnelTarget ParseTunnelUrl(const std::string& url);

}  // namespace airlock::test
