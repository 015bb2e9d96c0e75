#include "kernel/audit/postgres_export_cursors.h"

#include <map>
#include <mutex>
#include <optional>

#include <pqxx/pqxx>

#include "kernel/state/postgres_target.h"

namespace airlock {
namespace {

class PostgresCursors final : public ExportCursors {
 public:
  PostgresCursors(pg::Target target, std::string holder, std::chrono::milliseconds hold)
      : target_(std::move(target)), holder_(std::move(holder)), hold_(hold) {}

  Result<ExportCursor> Peek(const std::string& name) override {
    std::lock_guard lock(mu_);
    return Run<ExportCursor>("reading the audit export cursor " + name, [&](pqxx::work& tx) {
      const pqxx::result rows =
          tx.exec_params("SELECT seq, position FROM audit_export_cursors WHERE name = $1", name);
      if (rows.empty()) return ExportCursor{};
      return ExportCursor{rows[0][0].as<uint64_t>(), rows[0][1].as<uint64_t>()};
    });
  }

  Result<std::optional<ExportCursor>> Hold(const std::string& name) override {
    std::lock_guard lock(mu_);
    Held& held = held_[name];
    const auto now = std::chrono::steady_clock::now();
    if (held.holding && now - held.renewed < hold_ / 3) return std::optional(held.cursor);
    // Taken when free, when its hold ran out, or renewed when already ours.
    auto row = Run<std::optional<ExportCursor>>(
        "holding the audit export cursor " + name, [&](pqxx::work& tx) {
          tx.exec_params(
              "INSERT INTO audit_export_cursors (name) VALUES ($1) ON CONFLICT DO NOTHING", name);
          const pqxx::result rows = tx.exec_params(
              "UPDATE audit_export_cursors SET holder = $2, held_until = clock_timestamp() + "
              "$3 * interval '1 millisecond' WHERE name = $1 AND (holder = $2 OR held_until < "
              "clock_timestamp()) RETURNING seq, position",
              name, holder_, static_cast<int64_t>(hold_.count()));
          if (rows.empty()) return std::optional<ExportCursor>();
          return std::optional(ExportCursor{rows[0][0].as<uint64_t>(), rows[0][1].as<uint64_t>()});
        });
    if (!row.ok()) return row.status();
    if (!row->has_value()) {
      held.holding = false;
      return std::optional<ExportCursor>();
    }
    // Taking over: from the stored cursor. Renewing: from ours, which is
    // ahead of the stored one when a Save could not reach the database.
    if (!held.holding) held.cursor = **row;
    held.holding = true;
    held.renewed = now;
    return std::optional(held.cursor);
  }

  Status Save(const std::string& name, const ExportCursor& cursor) override {
    std::lock_guard lock(mu_);
    Held& held = held_[name];
    held.cursor = cursor;  // delivered: reading goes on after it while ours
    auto saved = Run<bool>("saving the audit export cursor " + name, [&](pqxx::work& tx) {
      return tx.exec_params(
                   "UPDATE audit_export_cursors SET seq = $3, position = $4, held_until = "
                   "clock_timestamp() + $5 * interval '1 millisecond' WHERE name = $1 AND "
                   "holder = $2",
                   name, holder_, static_cast<int64_t>(cursor.seq),
                   static_cast<int64_t>(cursor.position), static_cast<int64_t>(hold_.count()))
                 .affected_rows() == 1;
    });
    if (!saved.ok()) return saved.status();
    if (!*saved) {
      held.holding = false;
      return Status::FailedPrecondition("another replica took the audit export " + name + " over");
    }
    held.renewed = std::chrono::steady_clock::now();
    return Status::Ok();
  }

  void Release(const std::string& name) override {
    std::lock_guard lock(mu_);
    Held& held = held_[name];
    if (!held.holding) return;
    held.holding = false;
    (void)Run<bool>("releasing the audit export cursor " + name, [&](pqxx::work& tx) {
      tx.exec_params(
          "UPDATE audit_export_cursors SET held_until = '-infinity' WHERE name = $1 AND holder = "
          "$2",
          name, holder_);
      return true;
    });
  }

  std::string Where(const std::string& name) const override {
    return "postgres " + target_.Describe() + " audit_export_cursors[" + name + "]";
  }

 private:
  struct Held {
    ExportCursor cursor;
    bool holding = false;
    std::chrono::steady_clock::time_point renewed;
  };

  // One transaction on the kept connection, reconnecting once when the
  // database closed it since. Called with mu_ held.
  template <typename T, typename F>
  Result<T> Run(const std::string& what, F&& body) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (!conn_ || !conn_->is_open()) {
        auto conn = target_.Connect();
        if (!conn.ok()) return conn.status().WithContext(what);
        conn_ = std::move(conn).value();
        try {
          pqxx::nontransaction setup(*conn_);
          setup.exec("SET statement_timeout = 10000");
        } catch (const std::exception& e) {
          conn_.reset();
          return target_.Failure(what, e);
        }
      }
      try {
        pqxx::work tx(*conn_);
        T result = body(tx);
        tx.commit();
        return result;
      } catch (const pqxx::broken_connection& e) {
        conn_.reset();
        if (attempt == 1) return target_.Failure(what, e);
      } catch (const std::exception& e) {
        conn_.reset();
        return target_.Failure(what, e);
      }
    }
    return Status::Unavailable(what + " failed");
  }

  const pg::Target target_;
  const std::string holder_;
  const std::chrono::milliseconds hold_;
  std::mutex mu_;
  std::unique_ptr<pqxx::connection> conn_;  // guarded by mu_
  std::map<std::string, Held> held_;        // guarded by mu_
};

}  // namespace

Result<std::unique_ptr<ExportCursors>> PostgresExportCursors(const Secret& dsn,
                                                             const PostgresAuditOptions& options,
                                                             std::string holder,
                                                             std::chrono::milliseconds hold) {
  pg::TargetOptions target_options;
  target_options.tls = options.tls;
  target_options.connect_timeout_seconds = options.connect_timeout_seconds;
  AIRLOCK_ASSIGN_OR_RETURN(pg::Target target, pg::Target::Parse(dsn, target_options));
  return std::unique_ptr<ExportCursors>(
      std::make_unique<PostgresCursors>(std::move(target), std::move(holder), hold));
}

}  // namespace airlock
