#include "tests/support/postgres/pg_cluster.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include "tests/support/postgres/subprocess.h"
#include "tests/support/test_pki.h"

namespace airlock::test {
namespace {

namespace fs = std::filesystem;
using pg_internal::ProcessResult;
using pg_internal::RunProcess;

// Where initdb, pg_ctl and postgres live: $AIRLOCK_PG_BINDIR, else Debian's
// versioned directory.
std::string BinDir() {
  if (const char* env = std::getenv("AIRLOCK_PG_BINDIR"); env != nullptr && *env != '\0') {
    return env;
  }
  return "/usr/lib/postgresql/15/bin";
}

// A port that was free a moment ago (the server may still lose a race for
// it; Start retries).
int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot find a free port");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string MakeTempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = (base != nullptr && *base != '\0') ? base : "/tmp";
  pattern += "/airlock-pg-XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (::mkdtemp(buffer.data()) == nullptr) {
    throw std::runtime_error("mkdtemp " + pattern + ": " + std::strerror(errno));
  }
  return buffer.data();
}

// Hands `path` (recursively) to the postgres OS user.
void ChownToPostgres(const std::string& path) {
  const passwd* pw = ::getpwnam("postgres");
  if (pw == nullptr) throw std::runtime_error("running as root but there is no postgres user");
  auto chown_one = [&](const fs::path& p) {
    if (::chown(p.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
      throw std::runtime_error("chown " + p.string() + ": " + std::strerror(errno));
    }
  };
  chown_one(path);
  if (fs::is_directory(path)) {
    for (const auto& entry : fs::recursive_directory_iterator(path)) chown_one(entry.path());
  }
}

ProcessResult MustRun(const std::vector<std::string>& argv, const std::string& what) {
  ProcessResult result = RunProcess(argv);
  if (result.exit_code != 0) {
    throw std::runtime_error(what + " failed (exit " + std::to_string(result.exit_code) +
                             "): " + result.err + result.out);
  }
  return result;
}

struct ConnCloser {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct ResultCloser {
  void operator()(PGresult* r) const { PQclear(r); }
};

}  // namespace

std::unique_ptr<PgCluster> PgCluster::Start(const PgClusterOptions& options) {
  std::unique_ptr<PgCluster> cluster(new PgCluster());
  cluster->dir_ = MakeTempDir();
  cluster->data_dir_ = cluster->dir_ + "/data";
  cluster->log_file_ = cluster->dir_ + "/server.log";
  cluster->as_postgres_user_ = ::geteuid() == 0;

  const std::string pki_dir = cluster->dir_ + "/pki";
  fs::create_directories(pki_dir);
  TestPki pki = GenerateTestPki(pki_dir);
  cluster->ca_file_ = pki.ca.cert_file;
  cluster->other_ca_file_ = pki.other_ca.cert_file;
  ::chmod(pki.server.key_file.c_str(), 0600);  // the server refuses a group-readable key
  if (cluster->as_postgres_user_) ChownToPostgres(cluster->dir_);

  const std::string bin = BinDir();
  MustRun(cluster->AsServerUser({bin + "/initdb", "-D", cluster->data_dir_, "-U", kSuperuser,
                                 "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                                 "--locale=C", "--no-sync", "--no-instructions"}),
          "initdb");

  std::string settings = "-c listen_addresses=127.0.0.1 -k " + cluster->dir_ +
                         " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
                         " -c ssl=on -c ssl_cert_file=" +
                         pki.server.cert_file + " -c ssl_key_file=" + pki.server.key_file +
                         " -c max_connections=60";
  if (options.log_statements) settings += " -c log_statement=all";
  for (const auto& s : options.settings) settings += " -c " + s;

  cluster->settings_ = settings;

  std::string last_error;
  for (int attempt = 0; attempt < 5; ++attempt) {
    cluster->port_ = FreePort();
    if (cluster->TryStart(&last_error)) return cluster;
  }
  throw std::runtime_error("pg_ctl start failed: " + last_error);
}

std::vector<std::string> PgCluster::AsServerUser(std::vector<std::string> argv) const {
  if (!as_postgres_user_) return argv;
  std::vector<std::string> wrapped = {"runuser", "-u", "postgres", "--"};
  wrapped.insert(wrapped.end(), argv.begin(), argv.end());
  return wrapped;
}

bool PgCluster::TryStart(std::string* error) {
  ProcessResult started =
      RunProcess(AsServerUser({BinDir() + "/pg_ctl", "-D", data_dir_, "-l", log_file_, "-w", "-t",
                               "60", "-o", settings_ + " -p " + std::to_string(port_), "start"}));
  if (started.exit_code == 0) {
    running_ = true;
    return true;
  }
  *error = started.err + started.out + ReadLog();
  return false;
}

void PgCluster::StopServer() {
  MustRun(AsServerUser({BinDir() + "/pg_ctl", "-D", data_dir_, "-m", "fast", "-w", "stop"}),
          "pg_ctl stop");
  running_ = false;
}

void PgCluster::StartServer() {
  std::string error;
  if (!TryStart(&error)) throw std::runtime_error("pg_ctl start (restart) failed: " + error);
}

PgCluster& PgCluster::Shared() {
  static std::once_flag once;
  static std::unique_ptr<PgCluster> shared;
  std::call_once(once, [] { shared = Start(); });
  return *shared;
}

PgCluster::~PgCluster() {
  Stop();
}

void PgCluster::Stop() noexcept {
  try {
    if (running_) {
      RunProcess(
          AsServerUser({BinDir() + "/pg_ctl", "-D", data_dir_, "-m", "immediate", "-w", "stop"}));
      running_ = false;
    }
    if (!dir_.empty()) {
      std::error_code ignored;
      fs::remove_all(dir_, ignored);
    }
  } catch (...) {
  }
}

PgRows PgCluster::Query(std::string_view sql, std::string_view database) const {
  const std::string port = std::to_string(port_);
  const std::string db(database);
  const char* keys[] = {"host", "port", "user", "dbname", "client_encoding", nullptr};
  const char* values[] = {dir_.c_str(), port.c_str(), kSuperuser, db.c_str(), "UTF8", nullptr};
  std::unique_ptr<PGconn, ConnCloser> conn(PQconnectdbParams(keys, values, 0));
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    throw std::runtime_error(std::string("connect to test cluster: ") + PQerrorMessage(conn.get()));
  }
  const std::string text(sql);
  if (PQsendQuery(conn.get(), text.c_str()) != 1) {
    throw std::runtime_error(std::string("send: ") + PQerrorMessage(conn.get()));
  }
  PgRows rows;
  std::string error;
  while (PGresult* raw = PQgetResult(conn.get())) {
    std::unique_ptr<PGresult, ResultCloser> result(raw);
    const ExecStatusType status = PQresultStatus(raw);
    if (status == PGRES_TUPLES_OK) {
      rows.clear();
      for (int r = 0; r < PQntuples(raw); ++r) {
        std::vector<std::optional<std::string>> row;
        for (int c = 0; c < PQnfields(raw); ++c) {
          if (PQgetisnull(raw, r, c)) {
            row.emplace_back(std::nullopt);
          } else {
            row.emplace_back(
                std::string(PQgetvalue(raw, r, c), static_cast<size_t>(PQgetlength(raw, r, c))));
          }
        }
        rows.push_back(std::move(row));
      }
    } else if (status != PGRES_COMMAND_OK && status != PGRES_EMPTY_QUERY && error.empty()) {
      error = PQresultErrorMessage(raw);
    }
  }
  if (!error.empty()) throw std::runtime_error("SQL failed: " + error + "in: " + text);
  return rows;
}

std::vector<std::string> PgCluster::PsqlCommand(std::string_view database) const {
  return {"psql", "-X",
          "-h",   dir_,
          "-p",   std::to_string(port_),
          "-U",   kSuperuser,
          "-d",   std::string(database)};
}

std::string PgCluster::Psql(std::string_view sql, std::string_view database,
                            std::string_view pgoptions) const {
  std::vector<std::string> argv = PsqlCommand(database);
  for (const char* a : {"-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-F", "\x1f", "-R", "\x1e"}) {
    argv.emplace_back(a);
  }
  argv.emplace_back("-P");
  argv.emplace_back(std::string("null=") + kPsqlNull);
  argv.emplace_back("-c");
  argv.emplace_back(sql);
  std::vector<std::string> env = {"PGCLIENTENCODING=UTF8"};
  if (!pgoptions.empty()) env.push_back("PGOPTIONS=" + std::string(pgoptions));
  ProcessResult result = RunProcess(argv, env);
  if (result.exit_code != 0) throw std::runtime_error("psql failed: " + result.err);
  return result.out;
}

PgRows PgCluster::PsqlRows(std::string_view sql, std::string_view database,
                           std::string_view pgoptions) const {
  std::string out = Psql(sql, database, pgoptions);
  if (!out.empty() && out.back() == '\n') out.pop_back();
  PgRows rows;
  if (out.empty()) return rows;
  auto split = [](std::string_view text, char sep) {
    std::vector<std::string_view> parts;
    size_t start = 0;
    for (;;) {
      const size_t end = text.find(sep, start);
      parts.push_back(text.substr(start, end == std::string_view::npos ? end : end - start));
      if (end == std::string_view::npos) break;
      start = end + 1;
    }
    return parts;
  };
  for (std::string_view record : split(out, '\x1e')) {
    std::vector<std::optional<std::string>> row;
    for (std::string_view field : split(record, '\x1f')) {
      if (field == kPsqlNull) {
        row.emplace_back(std::nullopt);
      } else {
        row.emplace_back(std::string(field));
      }
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string PgCluster::ReadLog() const {
  std::ifstream in(log_file_, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace airlock::test
