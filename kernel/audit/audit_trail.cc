#include "kernel/audit/audit_trail.h"

#include <spdlog/spdlog.h>

#include "kernel/audit/checkpoint_file.h"

namespace airlock {

namespace {

class FileHome final : public CheckpointHome {
 public:
  explicit FileHome(std::string path) : path_(std::move(path)) {}
  std::string name() const override { return path_; }
  Result<CheckpointFileContents> Read() override { return ReadCheckpointFile(path_); }
  Result<std::unique_ptr<CheckpointSink>> OpenSink(const CheckpointFileContents& found) override {
    AIRLOCK_ASSIGN_OR_RETURN(auto writer, CheckpointFileWriter::Open(path_, found.good_end_offset));
    return MakeFileCheckpointSink(std::move(writer));
  }

 private:
  std::string path_;
};

}  // namespace

std::unique_ptr<CheckpointHome> FileCheckpointHome(std::string path) {
  return std::make_unique<FileHome>(std::move(path));
}

Result<std::unique_ptr<AuditTrail>> AuditTrail::Open(const std::string& path,
                                                     AuditTrailOptions options,
                                                     AuditLogOpener open_log) {
  if (!open_log) {
    open_log = [path](AuditOptions log_options) {
      return AuditLog::Open(path, std::move(log_options));
    };
  }
  std::unique_ptr<AuditTrail> trail(new AuditTrail());
  const bool accept = options.accept_unverified_history;
  options.log.accept_missing_anchor = options.log.accept_missing_anchor || accept;
  if (!options.signer) {
    spdlog::warn(
        "audit log {}: no checkpoint signing key configured (audit.checkpoints.signing_key): the "
        "hash chain alone can be recomputed by whoever can write where it is kept",
        path);
    AIRLOCK_ASSIGN_OR_RETURN(trail->log_, open_log(std::move(options.log)));
    return trail;
  }

  // The checkpoints published so far, each signature checked with the key.
  if (!options.home) options.home = FileCheckpointHome(CheckpointsPathFor(path));
  CheckpointHome& home = *options.home;
  const std::string checkpoints_path = home.name();
  AIRLOCK_ASSIGN_OR_RETURN(CheckpointFileContents found, home.Read());
  if (found.bad_line != 0) {
    return Status::FailedPrecondition("audit checkpoints " + checkpoints_path + " " +
                                      home.Locate(found.bad_line) +
                                      " is not a checkpoint: " + found.problem);
  }
  if (found.torn_tail) {
    spdlog::warn("audit checkpoints {}: cutting off an incomplete final {}", checkpoints_path,
                 home.Locate(found.torn_line));
  }
  CheckpointVerifier verifier;
  AIRLOCK_RETURN_IF_ERROR(verifier.AddPublicKeyPem(options.signer->public_key_pem()));
  for (const std::string& pem : options.previous_public_keys) {
    AIRLOCK_RETURN_IF_ERROR(
        verifier.AddPublicKeyPem(pem).WithContext("audit.checkpoints.previous_public_keys"));
  }
  std::optional<AuditHead> last;
  for (const FoundCheckpoint& entry : found.checkpoints) {
    const Status valid = verifier.Verify(entry.checkpoint);
    if (!valid.ok()) {
      return Status::FailedPrecondition("audit checkpoints " + checkpoints_path + " " +
                                        home.Locate(entry.line) + ": " + valid.message());
    }
    AuditHead point{entry.checkpoint.seq, entry.checkpoint.hash};
    if (!last || point.seq >= last->seq) last = point;
    options.log.trusted_points.push_back(std::move(point));
  }

  AIRLOCK_ASSIGN_OR_RETURN(trail->log_, open_log(std::move(options.log)));
  const std::string& name = trail->log_->path();
  const AuditHead head = trail->log_->head();
  if (!last && head.seq > 0) {
    const std::string what = "audit log " + name + " holds " + std::to_string(head.seq) +
                             " records but no signed checkpoint (" + checkpoints_path +
                             " is missing or empty), so none of its history can be verified";
    if (!accept) {
      return Status::FailedPrecondition(
          what +
          ". If checkpoints were just enabled for this log, start once with "
          "--accept-unverified-audit-history");
    }
    spdlog::warn("{}; accepted by --accept-unverified-audit-history", what);
  } else if (last && head.seq > last->seq) {
    spdlog::warn(
        "audit log {}: records {}..{} were written after the last signed checkpoint and are not "
        "covered by a signature (a crash leaves such a tail; so would a forger); the next "
        "checkpoint covers them",
        name, last->seq + 1, head.seq);
  }

  AIRLOCK_ASSIGN_OR_RETURN(std::unique_ptr<CheckpointSink> kept, home.OpenSink(found));
  std::vector<std::unique_ptr<CheckpointSink>> sinks;
  sinks.push_back(std::move(kept));
  sinks.push_back(MakeLogCheckpointSink());
  if (options.syslog) sinks.push_back(MakeSyslogCheckpointSink());
  AuditLog* log = trail->log_.get();
  spdlog::info("audit log {}: checkpoints signed with key {} every {} records or {} s", name,
               options.signer->key_id(), options.policy.every_records,
               options.policy.every_seconds.count());
  trail->checkpointer_ = std::make_unique<Checkpointer>(
      std::move(options.signer), [log] { return log->head(); }, std::move(sinks), options.policy,
      last);
  // A fresh log gets its genesis checkpoint at once, so a log written with
  // checkpoints always has one.
  AIRLOCK_RETURN_IF_ERROR(trail->checkpointer_->CheckpointNow());
  log->set_durable_listener(trail->checkpointer_.get());
  trail->checkpointer_->Start();
  return trail;
}

AuditTrail::~AuditTrail() {
  Stop();
}

void AuditTrail::Stop() {
  if (!checkpointer_) return;
  log_->set_durable_listener(nullptr);
  checkpointer_->Stop();
}

}  // namespace airlock
