// A throwaway PostgreSQL 15 cluster for tests and benchmarks.
//
//   static airlock::test::PgCluster& pg = airlock::test::PgCluster::Shared();
//   pg.Exec("CREATE TABLE t (id int)");
//   auto rows = pg.Query("SELECT id FROM t");          // through libpq
//   auto psql = pg.Psql("SELECT id FROM t");           // through the real psql
//
// Start() runs initdb into a fresh temporary directory (through
// `runuser -u postgres --` when the process is root, as initdb refuses root),
// then `pg_ctl start` listening on 127.0.0.1 on a free port, with its unix
// socket in that directory, fsync off and TLS on (server certificate issued
// by a test CA, see ca_file()). Authentication: the superuser "postgres"
// connects over the unix socket without a password (what Query/Exec/Psql
// use); every TCP connection needs a password (scram-sha-256), over TLS or
// not. The destructor stops the server and removes the directory.
//
// Shared() starts one cluster per process on first use and keeps it until
// exit, so a test binary pays for initdb once (~0.5 s).
//
// Failures throw std::runtime_error (a fixture that cannot start is a broken
// test). A process that dies without unwinding (abort, exit, a crash) leaves
// its server running: stop it with `pg_ctl -D <dir>/data stop`. Thread-safety: Query/Exec/Psql may
// be called from several threads.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace airlock::test {

struct PgClusterOptions {
  // Logs every statement the server runs (log_statement=all) to log_file().
  bool log_statements = false;
  // Extra "name=value" server settings passed with -c.
  std::vector<std::string> settings;
};

// Rows as text; a NULL cell is std::nullopt.
using PgRows = std::vector<std::vector<std::optional<std::string>>>;

class PgCluster {
 public:
  static std::unique_ptr<PgCluster> Start(const PgClusterOptions& options = {});
  // The process-wide cluster (started with default options on first use).
  static PgCluster& Shared();

  ~PgCluster();
  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

  const std::string& host() const { return host_; }  // "127.0.0.1"
  int port() const { return port_; }
  const std::string& dir() const { return dir_; }          // owned temp directory
  const std::string& socket_dir() const { return dir_; }   // unix socket directory
  const std::string& ca_file() const { return ca_file_; }  // CA of the server certificate
  // A CA that did not issue the server certificate (for verify-full failures).
  const std::string& other_ca_file() const { return other_ca_file_; }
  const std::string& log_file() const { return log_file_; }
  static constexpr const char* kSuperuser = "postgres";

  // Runs `sql` as the superuser through libpq (simple query protocol, so
  // several statements are allowed); returns the last result's rows.
  PgRows Query(std::string_view sql, std::string_view database = "postgres") const;
  void Exec(std::string_view sql, std::string_view database = "postgres") const {
    Query(sql, database);
  }

  // Runs `sql` through the real psql binary as the superuser, unaligned,
  // tuples only, fields separated by \x1f, records by \x1e, NULL printed as
  // kPsqlNull. `pgoptions` is passed as PGOPTIONS (e.g. "-c TimeZone=UTC").
  // Throws when psql exits non-zero (with its stderr).
  std::string Psql(std::string_view sql, std::string_view database = "postgres",
                   std::string_view pgoptions = "") const;
  // Psql() split into rows and fields (kPsqlNull becomes std::nullopt).
  PgRows PsqlRows(std::string_view sql, std::string_view database = "postgres",
                  std::string_view pgoptions = "") const;
  static constexpr const char* kPsqlNull = "\x01NULL\x01";

  // Arguments that make psql connect to this cluster as the superuser
  // ({"psql", "-X", "-h", socket_dir, "-p", port, "-U", "postgres", "-d", database}).
  std::vector<std::string> PsqlCommand(std::string_view database = "postgres") const;

  // The server log (stderr of the postmaster and, with log_statements, statements).
  std::string ReadLog() const;

  // Stops the server (fast shutdown: every client is disconnected) and
  // starts it again on the same port with the same data, for clients that
  // must ride out a database restart. Throws when pg_ctl fails.
  void StopServer();
  void StartServer();

 private:
  PgCluster() = default;
  void Stop() noexcept;
  // `argv` run as the server's OS user (postgres when this process is root).
  std::vector<std::string> AsServerUser(std::vector<std::string> argv) const;
  // pg_ctl start with settings_ on port_; the exit code and output.
  bool TryStart(std::string* error);

  std::string host_ = "127.0.0.1";
  int port_ = 0;
  std::string dir_;
  std::string data_dir_;
  std::string ca_file_;
  std::string other_ca_file_;
  std::string log_file_;
  std::string settings_;  // server -c settings, without the port
  bool as_postgres_user_ = false;
  bool running_ = false;
};

}  // namespace airlock::test
