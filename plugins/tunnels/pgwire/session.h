// One client connection, served on its own thread with blocking I/O: the
// startup phase (SSLRequest → TLS, StartupMessage, SCRAM-SHA-256), then the
// simple and extended query protocols until the client terminates, the
// endpoint is revoked or a deadline passes. Statements run through the
// endpoint's query channel on this same thread; their rows are written to the
// client batch by batch as the channel delivers them.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include "airlock/cpp/arrow.hpp"
#include "airlock/cpp/connection_budget.hpp"
#include "airlock/cpp/host.hpp"
#include "catalog.h"
#include "config.h"
#include "connection.h"
#include "endpoint.h"
#include "grant_schema.h"
#include "row_cursor.h"
#include "translator.h"
#include "wire.h"

namespace airlock::tunnels::pgwire {

// Routes a CancelRequest (process id + secret key) to its session.
class CancelRouter {
 public:
  virtual ~CancelRouter() = default;
  virtual void Cancel(int32_t process_id, int32_t secret_key) = 0;
};

// What every session shares. Owned by the tunnel; outlives every session.
struct SessionContext {
  const PgwireConfig& config;
  const sdk::Host& host;
  EndpointRegistry& registry;
  boost::asio::ssl::context* tls;  // null without TLS configuration
  CancelRouter& cancels;
};

// How a statement's rows go out: as DataRows, or as COPY data in `copy`'s
// format; `column_types` (Translation::column_types) can present a column
// as the PostgreSQL type the statement gives it.
struct ResultOutput {
  const CopyFormat* copy = nullptr;
  const std::vector<uint32_t>* column_types = nullptr;
  bool catalog = false;  // the statement reads the catalog (Translation::catalog)
};

class Session final : public SessionHandle, public std::enable_shared_from_this<Session> {
 public:
  // `ticket`: the connection's place in the listener's budget; the session
  // moves it out of the pre-authentication pool once attached to an endpoint.
  // `accepted_at`: the startup timeout runs from the accept, not from Run().
  Session(SessionContext& context, boost::asio::ip::tcp::socket socket, int32_t process_id,
          int32_t secret_key, sdk::ConnectionBudget::Ticket ticket,
          Connection::Clock::time_point accepted_at);
  ~Session() override;

  // Serves the connection until it ends; on the session's own thread.
  void Run();

  // --- any thread ----------------------------------------------------------
  void Revoke() override;
  void Kill() override;
  // A CancelRequest for this process id: cancels the running statement when
  // `secret_key` matches (compared in constant time).
  void RequestCancel(int32_t secret_key);
  // The watchdog: shuts the socket down once the current deadline passed.
  void EnforceDeadline(Connection::Clock::time_point now);

 private:
  struct PreparedStatement {
    std::string sql;  // as the client sent it: one statement, or empty
    std::string keyword;
    std::vector<uint32_t> parameter_types;  // declared, else inferred
    // The enclave's SQL. Absent for session statements the tunnel answers
    // and for writes, which go as they are for the enclave to refuse.
    std::optional<Translation> translation;
  };
  struct Portal {
    std::string sql;  // what runs: parameters substituted
    std::string keyword;
    bool translated = false;  // else a session statement or a write, sent as it is
    bool catalog = false;     // Translation::catalog
    StatementKind kind = StatementKind::kQuery;
    std::optional<CopyFormat> copy;      // COPY ... TO STDOUT
    CursorCommand cursor_command;        // DECLARE, FETCH, CLOSE
    std::vector<uint32_t> column_types;  // Translation::column_types
    std::vector<int16_t> result_formats;
    std::optional<std::vector<arrow::Field>> described;
    bool executed = false;
    // Executed with a row limit: the rows not yet sent (PortalSuspended).
    std::unique_ptr<RowCursor> rows;
  };
  // A cursor of DECLARE, read by FETCH until CLOSE (or COMMIT, unless WITH HOLD).
  struct SqlCursor {
    std::unique_ptr<RowCursor> rows;
    std::vector<uint32_t> column_types;
    bool hold = false;
  };
  class ResultStream;
  class SchemaProbe;

  // Startup phase; false when the connection must close.
  bool Startup();
  bool Authenticate(const std::string& user, const std::string& database);
  void SendStartupParameters();

  // One message: false on end of stream, error, or a fatal refusal.
  bool ReadMessage(char* type, std::string* body);
  bool Dispatch(char type, const std::string& body);

  void SimpleQuery(const std::string& body);
  void Parse(const std::string& body);
  void Bind(const std::string& body);
  void Describe(const std::string& body);
  void Execute(const std::string& body);
  void CloseObject(const std::string& body);
  void Sync();
  void ResolvePendingDescribe();

  // Reads one statement: translated for the enclave unless it is a session
  // statement or a write. The error is the client's when it cannot be.
  std::optional<PgError> Prepare(std::string sql, std::vector<uint32_t> declared,
                                 PreparedStatement* out);
  // The grant's tables, read from the channel once per connection.
  const GrantSchema& Schema();

  // Session-level statements answered by the tunnel itself (BEGIN, SET,
  // SHOW...): their response (or error) is written unless kNotLocal.
  enum class LocalOutcome { kNotLocal, kDone, kFailed };
  LocalOutcome RunLocal(const std::string& keyword, const std::string& sql, bool describe);
  // Writes RowDescription or NoData for a local statement; false if not local.
  bool DescribeLocal(const std::string& keyword, const std::string& sql);

  // Runs a statement through the channel; writes RowDescription (when
  // `describe`), DataRows and CommandComplete, or an ErrorResponse. False on
  // failure. `expected` is the shape an earlier Describe announced.
  bool ExecuteSql(const std::string& sql, const std::string& keyword,
                  const std::vector<int16_t>& formats, bool describe,
                  const std::vector<arrow::Field>* expected, ResultOutput output = {});
  // The result columns of `sql`, by running it until the channel delivers the
  // schema. Writes the ErrorResponse and returns nullopt on failure.
  std::optional<std::vector<arrow::Field>> ProbeSchema(const std::string& sql,
                                                       const std::string& keyword, bool catalog);

  // DECLARE, FETCH/MOVE and CLOSE; `describe`: FETCH writes its
  // RowDescription. False on failure (the error is written).
  bool RunCursorCommand(StatementKind kind, const CursorCommand& command, const std::string& sql,
                        const std::vector<uint32_t>& column_types, bool describe,
                        const std::vector<int16_t>& formats);
  // Execute with a row limit (0: the rest): the portal's statement runs
  // on a RowCursor and stops after `max_rows` rows with PortalSuspended.
  bool ExecuteIncrementally(Portal& portal, uint64_t max_rows, bool describe);
  // Sends up to `max_rows` of `cursor`'s rows as DataRows (none when
  // `skip`, for MOVE). False on failure (the error is written).
  bool SendCursorRows(RowCursor& cursor, uint64_t max_rows, bool skip,
                      const std::vector<uint32_t>& column_types,
                      const std::vector<int16_t>& formats, RowCursor::Fetched* fetched);
  // The error for a cursor's failed statement.
  void CursorError(const Status& status, const std::string& keyword);
  // COMMIT and ROLLBACK end the cursors declared without HOLD.
  void EndTransactionCursors();
  std::unique_ptr<RowCursor> StartCursor(const std::string& sql, bool catalog);
  // Runs `sql` on the catalog or through the endpoint's channel; nullopt
  // when the endpoint is closed.
  std::optional<Status> RunStatement(bool catalog, const std::string& sql,
                                     sdk::BatchConsumer& consumer);
  // The connection's catalog database, built on first use; null if it
  // cannot be (logged).
  CatalogDatabase* Catalog();

  void WriteRowDescription(const std::vector<arrow::Field>& fields,
                           const std::vector<int16_t>& formats,
                           const std::vector<uint32_t>* column_types = nullptr);
  // Error in the extended protocol: discard messages until Sync.
  void ExtendedError(const PgError& error);
  // Sends a FATAL error and marks the connection for closing.
  void Fatal(std::string_view sqlstate, std::string message);
  void SendFatal(const PgError& error);
  // The session's endpoint was closed: tells the client why and ends.
  void EndedFatal();
  void ProtocolViolation(std::string message);
  bool Flush();
  bool statement_cancelled() const;

  SessionContext& context_;
  Connection connection_;
  sdk::ConnectionBudget::Ticket ticket_;
  const Connection::Clock::time_point accepted_at_;
  const int32_t process_id_;
  const int32_t secret_key_;

  std::string out_;
  bool terminate_ = false;
  bool ignore_till_sync_ = false;
  std::string user_;
  std::string database_;
  std::string application_name_;
  std::optional<GrantSchema> schema_;
  std::unique_ptr<CatalogDatabase> catalog_db_;
  std::shared_ptr<EndpointState> endpoint_;
  bool attached_ = false;
  std::map<std::string, PreparedStatement> statements_;
  std::map<std::string, Portal> portals_;
  std::map<std::string, SqlCursor> cursors_;
  // Inside BEGIN ... COMMIT: portals outlive Sync (ReadyForQuery says T).
  // Every statement still runs on its own, read-only.
  bool in_transaction_ = false;
  std::optional<std::string> pending_describe_;  // portal whose Describe awaits its Execute
  Connection::Clock::time_point statement_deadline_{};

  std::atomic<bool> revoked_{false};
  std::atomic<bool> timed_out_{false};
  std::atomic<bool> writing_{false};
  std::atomic<bool> cancel_requested_{false};
  std::atomic<bool> broken_{false};
};

}  // namespace airlock::tunnels::pgwire
