// The kernel's side of outbound-only agents: the TLS listener agents dial,
// enrollment (one-time token + CSR, signed by the kernel-managed CA), the
// authenticated links (one per agent, mutual TLS), certificate renewal over
// the link, status (online / offline with the reason and last-seen time), and
// the enclaves those agents run for the supervisor (RemoteEnclaveHost).
//
// LINK PROTOCOL (control documents, link_frame.h stream 0):
//   unauthenticated connection (no client certificate): exactly one
//     A {"type":"enroll","agent","token","csr"}
//     K {"type":"enrolled","certificate","ca"} | {"type":"error","message"}; closed
//   authenticated link (client certificate issued by this CA, CN = agent name):
//     A {"type":"hello","enclaves":[stream...],"isolation":{...}}
//     K {"type":"welcome","heartbeat_interval_ms","offline_after_ms"}
//     A {"type":"ping"}                        K {"type":"pong"}
//     A {"type":"renew","csr"}                 K {"type":"renewed","certificate"} | error
//     K {"type":"provision","stream","request_id","spec"}
//     A {"type":"provisioned","stream"} | {"type":"provision_failed","stream","message"}
//     K {"type":"terminate","stream"}
//     A {"type":"egress","stream","endpoint","outcome","reason"?}  (audited)
//     A {"type":"catalog","datasets":[{"name","description"?,"tags"?,
//        "columns"?,"error"?,"synced_at_us"}]}   metadata of the datasets the
//        agent's site owns (site_catalog.h): never a value (audited)
//   Enclave frames flow on their stream in both directions; the agent serves
//   the enclave's egress dials itself, against the endpoints of the spec.
//
// Only an agent's latest certificate (or the one it replaced) opens a link:
// renewal and re-enrollment retire older ones before they expire.
//
// Audited: enclave.egress (dials the agent served), agent.connection_refused
// (a superseded certificate), agent.enrolled, agent.enrollment_refused, agent.certificate_issued,
// agent.certificate_renewed, agent.connected, agent.disconnected. Tokens,
// keys and certificates' private halves never reach logs or the audit.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "airlock/cpp/status.hpp"
#include "kernel/agent/enrollment_book.h"
#include "kernel/core/config.h"
#include "kernel/core/remote_enclaves.h"
#include "kernel/core/site_catalog.h"

namespace airlock {
class AuditLog;
}

namespace airlock::agent {

class AgentRegistry : public RemoteEnclaveHost {
 public:
  // Opens (or creates) the CA in config.ca_dir, pins it in `book` (null:
  // the file book in config.state_dir), issues the listener's certificate
  // and starts listening. FailedPrecondition when the book already pins
  // another CA (replicas must share one). `audit` must outlive the registry.
  // `sites` (may be null) receives the metadata of the datasets each
  // agent's site owns ("catalog" documents); it must outlive the registry.
  static Result<std::unique_ptr<AgentRegistry>> Start(const AgentsConfig& config, AuditLog* audit,
                                                      std::unique_ptr<EnrollmentBook> book = {},
                                                      SiteCatalog* sites = nullptr);
  ~AgentRegistry() override;

  uint16_t port() const;
  // Takes a connection accepted elsewhere (the HTTPS API's port, whose
  // ClientHello offered kLinkAlpn), nothing read from it yet, and serves it
  // as if it had dialled the agent port. Owns `fd` from the call.
  void Adopt(int fd);
  // {"listen":{"address","port"},"ca_certificate_file","agents":[AgentStatus...]}
  nlohmann::json StatusJson() const;
  // Closes the listener and every link. Idempotent.
  void Stop();

  Result<std::unique_ptr<RemoteEnclave>> Provision(const std::string& agent,
                                                   const std::string& request_id,
                                                   const nlohmann::json& isolator_spec) override;
  nlohmann::json AgentStatus(const std::string& agent) const override;
  std::map<std::string, int64_t> LinkedAgents() const override;

  struct Impl;

 private:
  explicit AgentRegistry(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace airlock::agent
