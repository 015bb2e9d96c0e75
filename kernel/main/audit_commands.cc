#include "kernel/main/audit_commands.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "kernel/audit/audit_verify.h"
#include "kernel/audit/checkpoint.h"
#include "kernel/audit/postgres_audit_log.h"
#include "kernel/audit/postgres_checkpoints.h"
#include "kernel/main/audit_setup.h"
#include "kernel/main/state_backend.h"

namespace airlock {
namespace {

constexpr const char* kAuditUsage =
    "usage:\n"
    "  airlockd audit verify FILE [--public-key PEM]... [--checkpoints FILE]...\n"
    "  airlockd audit verify --config FILE [--public-key PEM]... [--checkpoints FILE]...\n"
    "  airlockd audit export --config FILE [--output PATH]\n"
    "  airlockd audit keygen --private-key PATH --public-key PATH\n";

constexpr size_t kMaxPublicKeyFile = 64 * 1024;

int Usage() {
  std::cerr << kAuditUsage;
  return kAuditExitUsage;
}

// Options "--name value" (repeatable) and positional arguments.
struct ParsedArgs {
  std::vector<std::pair<std::string, std::string>> options;
  std::vector<std::string> positional;
  bool ok = true;

  std::vector<std::string> All(const std::string& name) const {
    std::vector<std::string> out;
    for (const auto& [key, value] : options) {
      if (key == name) out.push_back(value);
    }
    return out;
  }
};

ParsedArgs Parse(int argc, char** argv, int first, const std::vector<std::string>& known) {
  ParsedArgs parsed;
  for (int i = first; i < argc; ++i) {
    const std::string arg = argv[i];
    if (!arg.starts_with("--")) {
      parsed.positional.push_back(arg);
      continue;
    }
    bool is_known = false;
    for (const auto& name : known) is_known = is_known || name == arg;
    if (!is_known || i + 1 >= argc) {
      std::cerr << "airlockd audit: " << (is_known ? "missing value for " : "unknown option ")
                << arg << "\n";
      parsed.ok = false;
      return parsed;
    }
    parsed.options.emplace_back(arg, argv[++i]);
  }
  return parsed;
}

Result<std::string> ReadSmallFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot read " + path);
  std::string text(kMaxPublicKeyFile + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxPublicKeyFile) return Status::InvalidArgument(path + " is too large");
  return text;
}

std::string Range(uint64_t from, uint64_t to) {
  return from == to ? std::to_string(from) : std::to_string(from) + ".." + std::to_string(to);
}

// Prints the verdict on the log `name` (its anchor file `anchor`) and
// returns the exit code.
int Report(const AuditVerifyReport& report, const std::string& name, const std::string& anchor) {
  const std::string prefix = name + ": ";
  switch (report.verdict) {
    case AuditVerdict::kUnreadable:
      std::cerr << "airlockd audit verify: " << report.problem << "\n";
      return kAuditExitUsage;
    case AuditVerdict::kTampered:
      std::cout << prefix << "TAMPERED"
                << (report.bad_line != 0 ? " at line " + std::to_string(report.bad_line) : "")
                << ": " << report.problem << "\n";
      return kAuditExitTampered;
    case AuditVerdict::kIncompleteTail:
      std::cout << prefix << "INCOMPLETE"
                << (report.bad_line != 0 ? " at line " + std::to_string(report.bad_line) : "")
                << ": " << report.problem << "; the " << report.records
                << " records before it verified, and the kernel cuts the incomplete record off at "
                   "its next start\n";
      return kAuditExitIncompleteTail;
    case AuditVerdict::kIntact:
      break;
  }
  std::cout << prefix << "OK (" << report.records << " records, chain intact";
  if (!report.signatures_checked) {
    std::cout << ")\n";
    std::cerr << "warning: keyless chain check only: whoever can write where the log is kept can "
                 "rewrite it and recompute every hash and the anchor; pass --public-key to "
                 "check the signed checkpoints\n";
    if (!report.anchor_checked && report.records > 0) {
      std::cerr << "warning: no anchor (" << anchor
                << "): removal of the final records cannot be detected\n";
    }
    return kAuditExitIntact;
  }
  std::cout << ", " << report.checkpoints << " signed checkpoint"
            << (report.checkpoints == 1 ? "" : "s") << " verified)\n";
  if (report.covered_seq > 0) {
    std::cout << "records " << Range(1, report.covered_seq)
              << " are covered by a signature (checkpoint of " << report.covered_time << ")\n";
  }
  if (report.covered_seq < report.records) {
    std::cout << "records " << Range(report.covered_seq + 1, report.records) << " (lines "
              << Range(report.covered_seq + 1, report.records)
              << ") are not covered by a signature: written after the last checkpoint"
              << (report.covered_time.empty() ? "" : " (" + report.covered_time + ")") << "\n";
    return kAuditExitUncovered;
  }
  return kAuditExitIntact;
}

Status WriteAllTo(int fd, std::string_view data, const std::string& what) {
  while (!data.empty()) {
    const ssize_t wrote = ::write(fd, data.data(), data.size());
    if (wrote < 0 && errno == EINTR) continue;
    if (wrote < 0) return Status::Unavailable("cannot write " + what + ": " + std::strerror(errno));
    data.remove_prefix(static_cast<size_t>(wrote));
  }
  return Status::Ok();
}

// Exports the configured chain in PostgreSQL into `fd` (named `what`).
Result<AuditExport> ExportTo(const KernelConfig& config, int fd, const std::string& what) {
  AIRLOCK_ASSIGN_OR_RETURN(PostgresConnection connection, ConfiguredPostgresConnection(config));
  return ExportPostgresAudit(connection.dsn, PostgresAuditOptionsFor(connection),
                             [&](std::string_view lines) { return WriteAllTo(fd, lines, what); });
}

// The configured chain's signed checkpoints in PostgreSQL, as the lines of
// a checkpoints file.
Result<std::string> CheckpointLinesOf(const KernelConfig& config) {
  AIRLOCK_ASSIGN_OR_RETURN(PostgresConnection connection, ConfiguredPostgresConnection(config));
  AIRLOCK_ASSIGN_OR_RETURN(
      auto checkpoints,
      PostgresCheckpoints::Open(connection.dsn, PostgresAuditOptionsFor(connection), ""));
  AIRLOCK_ASSIGN_OR_RETURN(CheckpointFileContents found, checkpoints->Read());
  if (found.bad_line != 0) {
    return Status::FailedPrecondition("audit checkpoints " + checkpoints->name() + " row " +
                                      std::to_string(found.bad_line) +
                                      " is not a checkpoint: " + found.problem);
  }
  std::string lines;
  for (const FoundCheckpoint& entry : found.checkpoints) {
    lines += FormatCheckpointLine(entry.checkpoint);
    lines += '\n';
  }
  return lines;
}

// Writes `text` into a new file `path` (mode 0600, never over an existing one).
Status WriteSmallNewFile(const std::string& path, std::string_view text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    return Status::FailedPrecondition("cannot create " + path + ": " + std::strerror(errno));
  Status wrote = WriteAllTo(fd, text, path);
  ::close(fd);
  return wrote;
}

// Removes the files it names when it goes out of scope.
class TempFiles {
 public:
  ~TempFiles() {
    for (const std::string& path : paths_) ::unlink(path.c_str());
  }
  void Add(std::string path) { paths_.push_back(std::move(path)); }

 private:
  std::vector<std::string> paths_;
};

int Verify(int argc, char** argv, int first, const AuditConfigLoader& load_config) {
  const ParsedArgs args = Parse(argc, argv, first, {"--public-key", "--checkpoints", "--config"});
  const auto config_paths = args.All("--config");
  if (!args.ok || config_paths.size() > 1 ||
      args.positional.size() != (config_paths.empty() ? 1u : 0u)) {
    return Usage();
  }

  CheckpointVerifier verifier;
  for (const std::string& key_path : args.All("--public-key")) {
    auto pem = ReadSmallFile(key_path);
    Status added = pem.ok() ? verifier.AddPublicKeyPem(*pem) : pem.status();
    if (!added.ok()) {
      std::cerr << "airlockd audit verify: --public-key " << key_path << ": " << added.message()
                << "\n";
      return kAuditExitUsage;
    }
  }
  AuditVerifyOptions options;
  options.verifier = &verifier;
  options.shipped_checkpoint_files = args.All("--checkpoints");
  if (verifier.empty() && !options.shipped_checkpoint_files.empty()) {
    std::cerr << "airlockd audit verify: --checkpoints needs --public-key\n";
    return kAuditExitUsage;
  }
  if (config_paths.empty()) {
    const std::string& file = args.positional[0];
    return Report(VerifyAuditFile(file, options), "audit log " + file, file + ".head");
  }

  auto config = load_config(config_paths[0]);
  if (!config.ok()) {
    std::cerr << "airlockd audit verify: " << config.status().message() << "\n";
    return kAuditExitUsage;
  }
  if (config->audit.backend == AuditBackend::kFile) {
    const std::string& file = config->audit_path;
    return Report(VerifyAuditFile(file, options), "audit log " + file, file + ".head");
  }
  // The chain in PostgreSQL: export one snapshot with its head as the
  // anchor, and verify that with this replica's checkpoints.
  const char* tmpdir = std::getenv("TMPDIR");
  std::string temp = std::string(tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp") +
                     "/airlock-audit-verify-XXXXXX";
  const int fd = ::mkstemp(temp.data());
  if (fd < 0) {
    std::cerr << "airlockd audit verify: cannot create a temporary file: " << std::strerror(errno)
              << "\n";
    return kAuditExitUsage;
  }
  TempFiles cleanup;
  cleanup.Add(temp);
  auto exported = ExportTo(*config, fd, temp);
  ::close(fd);
  if (!exported.ok()) {
    std::cerr << "airlockd audit verify: " << exported.status().message() << "\n";
    return kAuditExitUsage;
  }
  const std::string anchor = temp + ".head";
  cleanup.Add(anchor);
  if (Status wrote = WriteSmallNewFile(anchor, FormatAuditAnchor(exported->head)); !wrote.ok()) {
    std::cerr << "airlockd audit verify: " << wrote.message() << "\n";
    return kAuditExitUsage;
  }
  // The checkpoints every replica published beside the chain.
  auto checkpoint_lines = CheckpointLinesOf(*config);
  if (!checkpoint_lines.ok()) {
    std::cerr << "airlockd audit verify: " << checkpoint_lines.status().message() << "\n";
    return kAuditExitUsage;
  }
  options.checkpoints_path = temp + ".checkpoints";
  cleanup.Add(options.checkpoints_path);
  if (Status wrote = WriteSmallNewFile(options.checkpoints_path, *checkpoint_lines); !wrote.ok()) {
    std::cerr << "airlockd audit verify: " << wrote.message() << "\n";
    return kAuditExitUsage;
  }
  return Report(VerifyAuditFile(temp, options), "audit chain in postgres " + exported->target,
                "the head row");
}

int Export(int argc, char** argv, int first, const AuditConfigLoader& load_config) {
  const ParsedArgs args = Parse(argc, argv, first, {"--config", "--output"});
  const auto config_paths = args.All("--config");
  const auto outputs = args.All("--output");
  if (!args.ok || !args.positional.empty() || config_paths.size() != 1 || outputs.size() > 1) {
    return Usage();
  }
  auto config = load_config(config_paths[0]);
  if (!config.ok()) {
    std::cerr << "airlockd audit export: " << config.status().message() << "\n";
    return kAuditExitUsage;
  }
  if (config->audit.backend == AuditBackend::kFile) {
    std::cerr << "airlockd audit export: audit.backend is \"file\": the log is "
              << config->audit_path << " itself (with its anchor " << config->audit_path
              << ".head); verify it with `airlockd audit verify`\n";
    return kAuditExitUsage;
  }
  int fd = STDOUT_FILENO;
  std::string name = "standard output";
  if (!outputs.empty()) {
    name = outputs[0];
    fd = ::open(name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
      std::cerr << "airlockd audit export: cannot create " << name << ": " << std::strerror(errno)
                << (errno == EEXIST ? " (refusing to overwrite it)" : "") << "\n";
      return kAuditExitUsage;
    }
  }
  auto exported = ExportTo(*config, fd, name);
  if (fd != STDOUT_FILENO) {
    if (exported.ok() && ::fsync(fd) != 0) {
      exported = Status::Unavailable("cannot sync " + name + ": " + std::strerror(errno));
    }
    ::close(fd);
  }
  if (exported.ok() && !outputs.empty()) {
    const Status anchor = WriteSmallNewFile(name + ".head", FormatAuditAnchor(exported->head));
    if (!anchor.ok()) exported = anchor;
  }
  if (exported.ok() && !outputs.empty()) {
    // With its checkpoints: `airlockd audit verify F --public-key K` checks
    // the export as it checks a log file.
    auto lines = CheckpointLinesOf(*config);
    const Status kept =
        lines.ok() ? WriteSmallNewFile(name + ".checkpoints", *lines) : lines.status();
    if (!kept.ok()) exported = kept;
  }
  if (!exported.ok()) {
    std::cerr << "airlockd audit export: " << exported.status().message() << "\n";
    return 1;
  }
  std::cerr << "exported " << exported->records << " records (head seq " << exported->head.seq
            << ") of the audit chain in postgres " << exported->target << " to " << name
            << (outputs.empty()
                    ? ""
                    : " (anchor " + name + ".head, checkpoints " + name + ".checkpoints)")
            << "\n";
  return 0;
}

// Creates `path` exclusively with `mode` and writes `data`.
Status WriteNewFile(const std::string& path, std::string_view data, mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) {
    return Status::FailedPrecondition("cannot create " + path + ": " + std::strerror(errno) +
                                      (errno == EEXIST ? " (refusing to overwrite a key)" : ""));
  }
  Status status;
  if (::fchmod(fd, mode) != 0) {
    status = Status::Unavailable("cannot set the mode of " + path + ": " + std::strerror(errno));
  }
  while (status.ok() && !data.empty()) {
    const ssize_t wrote = ::write(fd, data.data(), data.size());
    if (wrote < 0 && errno == EINTR) continue;
    if (wrote < 0) {
      status = Status::Unavailable("cannot write " + path + ": " + std::strerror(errno));
      break;
    }
    data.remove_prefix(static_cast<size_t>(wrote));
  }
  if (status.ok() && ::fsync(fd) != 0) {
    status = Status::Unavailable("cannot sync " + path + ": " + std::strerror(errno));
  }
  ::close(fd);
  if (!status.ok()) ::unlink(path.c_str());
  return status;
}

int Keygen(int argc, char** argv, int first) {
  const ParsedArgs args = Parse(argc, argv, first, {"--private-key", "--public-key"});
  const auto private_paths = args.All("--private-key");
  const auto public_paths = args.All("--public-key");
  if (!args.ok || !args.positional.empty() || private_paths.size() != 1 ||
      public_paths.size() != 1) {
    return Usage();
  }
  auto pair = GenerateCheckpointKeyPair();
  if (!pair.ok()) {
    std::cerr << "airlockd audit keygen: " << pair.status().message() << "\n";
    return 1;
  }
  Status wrote = WriteNewFile(private_paths[0], pair->private_pem.Reveal(), 0600);
  if (wrote.ok()) {
    wrote = WriteNewFile(public_paths[0], pair->public_pem, 0644);
    if (!wrote.ok()) ::unlink(private_paths[0].c_str());
  }
  if (!wrote.ok()) {
    std::cerr << "airlockd audit keygen: " << wrote.message() << "\n";
    return 1;
  }
  std::cout << "audit checkpoint key " << pair->key_id << "\n"
            << "  private key (mode 0600, keep it outside the state directory): "
            << private_paths[0] << "\n"
            << "  public key (give it to whoever verifies): " << public_paths[0] << "\n"
            << "configuration: \"audit\": {\"checkpoints\": {\"signing_key\": \"file:"
            << private_paths[0] << "\"}}\n";
  return 0;
}

}  // namespace

int RunAuditCommand(int argc, char** argv, int first, const AuditConfigLoader& load_config) {
  if (first >= argc) return Usage();
  const std::string command = argv[first];
  if (command == "verify") return Verify(argc, argv, first + 1, load_config);
  if (command == "export") return Export(argc, argv, first + 1, load_config);
  if (command == "keygen") return Keygen(argc, argv, first + 1);
  return Usage();
}

}  // namespace airlock
