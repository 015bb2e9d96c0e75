#include "kernel/audit/postgres_checkpoints.h"

#include <pqxx/pqxx>

#include "kernel/audit/checkpoint.h"
#include "kernel/state/postgres_target.h"

namespace airlock {

struct PostgresCheckpoints::Impl {
  Impl(pg::Target t, std::string r)
      : target(std::move(t)),
        replica(std::move(r)),
        name("postgres " + target.Describe() + " audit_checkpoints") {}

  const pg::Target target;
  const std::string replica;
  const std::string name;
};

namespace {

// Rows read per query.
constexpr int64_t kReadBatch = 5000;

class PostgresSink final : public CheckpointSink {
 public:
  explicit PostgresSink(std::shared_ptr<PostgresCheckpoints::Impl> impl) : impl_(std::move(impl)) {}

  Status Publish(const AuditCheckpoint& checkpoint, const std::string& line) override {
    // One retry on a fresh connection: the previous one may have been closed
    // by a database restart since the last checkpoint.
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (!conn_ || !conn_->is_open()) {
        auto conn = impl_->target.Connect();
        if (!conn.ok()) return conn.status();
        conn_ = std::move(conn).value();
      }
      try {
        pqxx::work tx(*conn_);
        tx.exec_params("INSERT INTO audit_checkpoints (seq, line, replica) VALUES ($1, $2, $3)",
                       static_cast<int64_t>(checkpoint.seq), line, impl_->replica);
        tx.commit();
        return Status::Ok();
      } catch (const pqxx::broken_connection& e) {
        conn_.reset();
        if (attempt == 1) return impl_->target.Failure("publishing a checkpoint", e);
      } catch (const std::exception& e) {
        conn_.reset();
        return impl_->target.Failure("publishing a checkpoint", e);
      }
    }
    return Status::Unavailable("publishing a checkpoint failed");
  }

  std::string name() const override { return impl_->name; }

 private:
  std::shared_ptr<PostgresCheckpoints::Impl> impl_;
  std::unique_ptr<pqxx::connection> conn_;
};

}  // namespace

PostgresCheckpoints::PostgresCheckpoints(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
PostgresCheckpoints::~PostgresCheckpoints() = default;

Result<std::unique_ptr<PostgresCheckpoints>> PostgresCheckpoints::Open(
    const Secret& dsn, const PostgresAuditOptions& options, std::string replica) {
  pg::TargetOptions target_options;
  target_options.tls = options.tls;
  target_options.connect_timeout_seconds = options.connect_timeout_seconds;
  AIRLOCK_ASSIGN_OR_RETURN(pg::Target target, pg::Target::Parse(dsn, target_options));
  return std::unique_ptr<PostgresCheckpoints>(
      new PostgresCheckpoints(std::make_shared<Impl>(std::move(target), std::move(replica))));
}

const std::string& PostgresCheckpoints::name() const {
  return impl_->name;
}

std::unique_ptr<CheckpointSink> PostgresCheckpoints::MakeSink() const {
  return std::make_unique<PostgresSink>(impl_);
}

Result<CheckpointFileContents> PostgresCheckpoints::Read() const {
  AIRLOCK_ASSIGN_OR_RETURN(auto conn, impl_->target.Connect());
  CheckpointFileContents out;
  out.exists = true;
  try {
    pqxx::read_transaction tx(*conn);
    int64_t last_id = 0;
    while (true) {
      const pqxx::result rows = tx.exec_params(
          "SELECT id, line FROM audit_checkpoints WHERE id > $1 ORDER BY id LIMIT $2", last_id,
          kReadBatch);
      for (const auto& row : rows) {
        last_id = row[0].as<int64_t>();
        auto parsed = ParseCheckpointLine(std::string_view(row[1].c_str(), row[1].size()));
        if (!parsed.ok()) {
          out.bad_line = static_cast<uint64_t>(last_id);
          out.problem = parsed.status().message();
          return out;
        }
        out.checkpoints.push_back(
            FoundCheckpoint{impl_->name, static_cast<uint64_t>(last_id), std::move(*parsed)});
      }
      if (rows.size() < static_cast<size_t>(kReadBatch)) break;
    }
  } catch (const std::exception& e) {
    return impl_->target.Failure("reading the audit checkpoints", e);
  }
  return out;
}

namespace {

class PostgresHome final : public CheckpointHome {
 public:
  explicit PostgresHome(std::unique_ptr<PostgresCheckpoints> checkpoints)
      : checkpoints_(std::move(checkpoints)) {}
  std::string name() const override { return checkpoints_->name(); }
  std::string Locate(uint64_t n) const override { return "row " + std::to_string(n); }
  Result<CheckpointFileContents> Read() override { return checkpoints_->Read(); }
  Result<std::unique_ptr<CheckpointSink>> OpenSink(const CheckpointFileContents&) override {
    return checkpoints_->MakeSink();
  }

 private:
  std::unique_ptr<PostgresCheckpoints> checkpoints_;
};

}  // namespace

std::unique_ptr<CheckpointHome> PostgresCheckpointHome(
    std::unique_ptr<PostgresCheckpoints> checkpoints) {
  return std::make_unique<PostgresHome>(std::move(checkpoints));
}

}  // namespace airlock
