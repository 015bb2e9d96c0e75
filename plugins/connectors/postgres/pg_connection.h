// One libpq connection to the source, opened for one describe or pull.
//
// Connect() resolves the password reference through the host, hands it to
// libpq and wipes every copy the connector made before returning (libpq keeps
// its own until PQfinish, which zeroes it). Error messages never contain the
// password: libpq's text is scrubbed of it before the copy is wiped.
//
// Commands run asynchronously: while waiting for the server, the connection
// polls `Interrupt` (cancellation, deadline) every few milliseconds and, when
// it fires, asks the server to cancel the running statement (PQcancel), so a
// stopped pull also stops the server-side query.
//
// Thread-safety: one connection is used by one thread.
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "airlock/cpp/host.hpp"
#include "airlock/cpp/status.hpp"
#include "config.h"

namespace airlock::connectors::postgres {

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, ResultDeleter>;

// Why a wait should stop: a non-OK status (Cancelled, DeadlineExceeded) or Ok
// to keep waiting. Called from the waiting thread.
using Interrupt = std::function<Status()>;

// A parameter of a command: text (format 0) or binary (format 1) bytes.
struct Param {
  std::string value;
  uint32_t type_oid = 0;  // 0: let the server infer it
  bool binary = false;
};

class PgConnection {
 public:
  // Opens a connection. Unauthenticated (bad password, no pg_hba entry),
  // NotFound (no such database), PermissionDenied (no CONNECT privilege) or
  // Unavailable (unreachable, TLS verification failed, server refused).
  static Result<std::unique_ptr<PgConnection>> Connect(const PostgresConfig& config,
                                                       const sdk::Host& host);
  ~PgConnection();
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // Runs one command and waits for its single result. `result_binary` asks
  // for binary-format result columns. Returns the result on PGRES_COMMAND_OK /
  // PGRES_TUPLES_OK, else a status classified from the SQLSTATE.
  Result<PgResult> Run(std::string_view sql, const std::vector<Param>& params, bool result_binary,
                       const Interrupt& interrupt);

  // Sends a command without waiting (pair with Await).
  Status Send(std::string_view sql, const std::vector<Param>& params, bool result_binary);
  // Waits for the result of the command sent last.
  Result<PgResult> Await(const Interrupt& interrupt);

  // Describes `sql` without running it (unnamed prepared statement).
  Result<PgResult> Describe(std::string_view sql, const Interrupt& interrupt);

  PGconn* raw() { return conn_; }

 private:
  explicit PgConnection(PGconn* conn) : conn_(conn) {}
  // Asks the server to cancel the running statement; best effort.
  void RequestCancel();

  PGconn* conn_;
  std::unique_ptr<PGcancel, void (*)(PGcancel*)> cancel_{nullptr, &PQfreeCancel};
};

// A status for a failed result: NotFound (42P01 undefined table, 3F000 schema,
// 42703 column), PermissionDenied (42501), DeadlineExceeded (57014 after a
// statement timeout), Cancelled (57014 otherwise), Unavailable (08*, 57P*),
// Unauthenticated (28*), ResourceExhausted (53*), InvalidArgument (22*, 42*
// other), Unknown otherwise. The message carries the server's primary text
// and the SQLSTATE.
Status StatusFromResult(const PGresult* result);

// `name` as a double-quoted SQL identifier (embedded quotes doubled).
std::string QuoteIdentifier(std::string_view name);

}  // namespace airlock::connectors::postgres
