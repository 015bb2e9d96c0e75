#include "kernel/agent/postgres_enrollment_book.h"

#include <mutex>

#include <pqxx/pqxx>

#include "kernel/state/postgres_target.h"

namespace airlock::agent {
namespace {

class PostgresEnrollmentBook final : public EnrollmentBook {
 public:
  explicit PostgresEnrollmentBook(pg::Target target) : target_(std::move(target)) {}

  Result<std::optional<EnrollmentRecord>> Find(const std::string& agent) override {
    return Run<std::optional<EnrollmentRecord>>(
        "reading an agent's enrollment", [&](pqxx::work& tx) -> std::optional<EnrollmentRecord> {
          const pqxx::result rows = tx.exec_params(
              "SELECT token_sha256, serial, previous_serial, enrolled_at_us "
              "FROM agent_enrollments WHERE agent = $1",
              agent);
          if (rows.empty()) return std::nullopt;
          EnrollmentRecord record;
          record.token_sha256 = rows[0][0].as<std::string>();
          record.serial = rows[0][1].as<std::string>();
          record.previous_serial = rows[0][2].as<std::string>();
          record.enrolled_at_us = rows[0][3].as<int64_t>();
          return record;
        });
  }

  Result<bool> Enroll(const std::string& agent, const EnrollmentRecord& record) override {
    return Run<bool>("recording an agent's enrollment", [&](pqxx::work& tx) {
      // The row changes only when the token differs from the stored one.
      const pqxx::result rows = tx.exec_params(
          "INSERT INTO agent_enrollments AS e "
          "(agent, token_sha256, serial, previous_serial, enrolled_at_us) "
          "VALUES ($1, $2, $3, $4, $5) "
          "ON CONFLICT (agent) DO UPDATE SET token_sha256 = EXCLUDED.token_sha256, "
          "serial = EXCLUDED.serial, previous_serial = EXCLUDED.previous_serial, "
          "enrolled_at_us = EXCLUDED.enrolled_at_us "
          "WHERE e.token_sha256 <> EXCLUDED.token_sha256 RETURNING agent",
          agent, record.token_sha256, record.serial, record.previous_serial, record.enrolled_at_us);
      return !rows.empty();
    });
  }

  Result<bool> Renew(const std::string& agent, const std::string& current_serial,
                     const std::string& serial) override {
    return Run<bool>("recording an agent's renewed certificate", [&](pqxx::work& tx) {
      const pqxx::result rows = tx.exec_params(
          "UPDATE agent_enrollments SET previous_serial = serial, serial = $3 "
          "WHERE agent = $1 AND serial = $2 RETURNING agent",
          agent, current_serial, serial);
      return !rows.empty();
    });
  }

  Result<std::string> PinCa(const std::string& fingerprint) override {
    return Run<std::string>("pinning the agent CA", [&](pqxx::work& tx) {
      tx.exec_params(
          "INSERT INTO agent_ca (id, fingerprint) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
          fingerprint);
      return tx.exec("SELECT fingerprint FROM agent_ca WHERE id = 1")[0][0].as<std::string>();
    });
  }

  std::string Describe() const override {
    return "postgres " + target_.Describe() + " agent_enrollments";
  }

 private:
  // Runs `body` in one transaction on the book's connection, once more on a
  // fresh connection when the old one turns out broken (a database restart).
  template <typename T, typename Body>
  Result<T> Run(const char* what, Body&& body) {
    std::lock_guard lock(mu_);
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (!conn_ || !conn_->is_open()) {
        auto conn = target_.Connect();
        if (!conn.ok()) return conn.status();
        conn_ = std::move(conn).value();
      }
      try {
        pqxx::work tx(*conn_);
        T out = body(tx);
        tx.commit();
        return out;
      } catch (const pqxx::broken_connection& e) {
        conn_.reset();
        if (attempt == 1) return target_.Failure(what, e);
      } catch (const pqxx::undefined_table& e) {
        return Status::FailedPrecondition(
            std::string(what) +
            ": the database has no agent tables (schema version 6); run `airlockd state "
            "migrate`");
      } catch (const std::exception& e) {
        conn_.reset();
        return target_.Failure(what, e);
      }
    }
    return Status::Unavailable(std::string(what) + " failed");
  }

  const pg::Target target_;
  std::mutex mu_;
  std::unique_ptr<pqxx::connection> conn_;  // GUARDED_BY(mu_)
};

}  // namespace

Result<std::unique_ptr<EnrollmentBook>> OpenPostgresEnrollmentBook(
    const Secret& dsn, const PostgresBookOptions& options) {
  pg::TargetOptions target_options;
  target_options.tls = options.tls;
  target_options.connect_timeout_seconds = options.connect_timeout_seconds;
  AIRLOCK_ASSIGN_OR_RETURN(pg::Target target, pg::Target::Parse(dsn, target_options));
  return std::unique_ptr<EnrollmentBook>(new PostgresEnrollmentBook(std::move(target)));
}

}  // namespace airlock::agent
