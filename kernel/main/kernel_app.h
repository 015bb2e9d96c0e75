// The composition root: builds every kernel part from a KernelConfig and
// wires them together (audit, state store, plugin host, request manager, HTTP
// API). Owns nothing but the parts; all behaviour lives in them.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "airlock/cpp/status.hpp"
#include "kernel/api/http_types.h"
#include "kernel/core/config.h"

namespace airlock {

// What `airlockd check-config` found: the plugins as /v1/plugins would list
// them, and what could not be checked without starting it.
struct ConfigCheckReport {
  nlohmann::json plugins = nlohmann::json::array();
  std::vector<std::string> notes;
};

class KernelApp {
 public:
  // The checks Start makes on `config` before it serves, with nothing
  // started and no state, audit or listener opened: every plugin file and
  // its own configuration, connector files, the API's TLS files (see
  // LoadPluginSet). Refuses with the same message Start would.
  static Result<ConfigCheckReport> Check(const KernelConfig& config);

  // Opens the state store and the audit log, loads the plugin set, recovers
  // requests a previous run left, and starts serving HTTP.
  static Result<std::unique_ptr<KernelApp>> Start(KernelConfig config);
  ~KernelApp();

  // Answers one API request in this process exactly as the HTTP server's
  // handler threads do (same authentication, limits and durability); for
  // embedding the kernel and for measuring it without sockets. Blocks while
  // the request's commits are made durable. Thread-safe.
  HttpResponse Handle(const HttpRequest& request) const;

  uint16_t port() const;
  bool tls() const;
  // Re-reads the policy plugin's configuration; the old policy stays on failure.
  Status ReloadPolicy();
  // Stops serving, tears down live enclaves. Idempotent.
  void Stop();
  // True once another replica fenced this one and took its requests over
  // (the kernel then stops itself with SIGTERM).
  bool lease_lost() const;

 private:
  KernelApp();
  struct Parts;
  static Status StartPeerLink(const KernelConfig& cfg, const std::string& instance_id, Parts& p);
  static Status StartAuditExport(const KernelConfig& cfg, const std::string& instance_id, Parts& p);
  static Status StartEventRelay(const KernelConfig& cfg, const std::string& instance_id, Parts& p);
  std::unique_ptr<Parts> parts_;
};

}  // namespace airlock
