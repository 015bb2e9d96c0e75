#include "kernel/main/audit_setup.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "kernel/audit/postgres_audit_log.h"
#include "kernel/audit/postgres_checkpoints.h"
#include "kernel/main/state_backend.h"
#include "kernel/plugin_host/secret_reference.h"

namespace airlock {
namespace {

// A key file others can read is a key others may hold.
Status CheckKeyFileMode(const std::string& reference) {
  if (!reference.starts_with("file:")) return Status::Ok();
  const std::string path = reference.substr(5);
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) return Status::Ok();  // resolution names the problem
  if ((info.st_mode & 077) != 0) {
    return Status::FailedPrecondition(
        "audit.checkpoints.signing_key " + path +
        " is accessible to group or others; make it readable by the kernel's user only (chmod "
        "600)");
  }
  return Status::Ok();
}

std::string HostName() {
  char name[256] = {};
  return ::gethostname(name, sizeof(name) - 1) == 0 ? std::string(name) : std::string();
}

}  // namespace

PostgresAuditOptions PostgresAuditOptionsFor(const PostgresConnection& connection,
                                             AuditOptions log) {
  PostgresAuditOptions options;
  options.tls = connection.tls;
  options.connect_timeout_seconds = connection.connect_timeout_seconds;
  options.log = std::move(log);
  return options;
}

Result<std::unique_ptr<AuditTrail>> OpenKernelAuditTrail(const KernelConfig& config) {
  AuditTrailOptions options;
  options.accept_unverified_history = config.accept_unverified_audit_history;
  const AuditCheckpointConfig& checkpoints = config.audit.checkpoints;
  if (checkpoints.enabled) {
    AIRLOCK_RETURN_IF_ERROR(CheckKeyFileMode(checkpoints.signing_key));
    auto key = plugin_host::ResolveSecretReference(checkpoints.signing_key);
    if (!key.ok()) return key.status().WithContext("audit.checkpoints.signing_key");
    auto signer = CheckpointSigner::FromPem(*key);
    key->Wipe();
    if (!signer.ok()) return signer.status().WithContext("audit.checkpoints.signing_key");
    options.signer = std::move(signer).value();
    for (const std::string& path : checkpoints.previous_public_keys) {
      std::ifstream in(path, std::ios::binary);
      std::stringstream pem;
      pem << in.rdbuf();
      if (!in) {
        return Status::NotFound("audit.checkpoints.previous_public_keys: cannot read " + path);
      }
      options.previous_public_keys.push_back(pem.str());
    }
    options.policy.every_records = static_cast<uint64_t>(checkpoints.every_records);
    options.policy.every_seconds = std::chrono::seconds(checkpoints.every_seconds);
    options.syslog = checkpoints.syslog;
  }
  AuditLogOpener open_log;
  if (config.audit.backend == AuditBackend::kPostgres) {
    AIRLOCK_ASSIGN_OR_RETURN(PostgresConnection connection, ConfiguredPostgresConnection(config));
    auto shared = std::make_shared<PostgresConnection>(std::move(connection));
    open_log = [shared](AuditOptions log_options) {
      return OpenPostgresAuditLog(shared->dsn, PostgresAuditOptionsFor(*shared, log_options));
    };
    // Every replica signs the shared chain and keeps its checkpoints beside
    // it, where the others find them.
    if (options.signer) {
      AIRLOCK_ASSIGN_OR_RETURN(
          auto checkpoints,
          PostgresCheckpoints::Open(shared->dsn, PostgresAuditOptionsFor(*shared), HostName()));
      options.home = PostgresCheckpointHome(std::move(checkpoints));
    }
  }
  return AuditTrail::Open(config.audit_path, std::move(options), std::move(open_log));
}

}  // namespace airlock
