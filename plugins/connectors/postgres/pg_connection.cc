#include "pg_connection.h"

#include <poll.h>
#include <string.h>

#include <cctype>
#include <cerrno>
#include <cstring>

namespace airlock::connectors::postgres {
namespace {

// How often a wait looks at cancellation and the deadline.
constexpr int kPollMillis = 20;
// How long a cancelled statement may take to end before the wait gives up.
constexpr std::chrono::seconds kCancelGrace{5};

std::string Trim(std::string text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  return text;
}

std::string Lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Replaces every occurrence of `secret` in `text` (before the secret is wiped).
void Scrub(std::string* text, std::string_view secret) {
  if (secret.empty()) return;
  for (size_t at = text->find(secret); at != std::string::npos; at = text->find(secret, at)) {
    text->replace(at, secret.size(), "***");
    at += 3;
  }
}

// libpq reports connection failures as text only (no SQLSTATE reaches the
// caller), so the class comes from its wording, which is stable across
// PostgreSQL 12-17.
Status ConnectFailure(std::string message) {
  message = Trim(std::move(message));
  const std::string lower = Lower(message);
  auto has = [&lower](std::string_view needle) { return lower.find(needle) != std::string::npos; };
  if (has("password authentication failed") || has("authentication failed") ||
      has("no password supplied") || has("pg_hba.conf") || has("role \"")) {
    return Status::Unauthenticated("the source refused the credentials: " + message);
  }
  if (has("database \"") && has("does not exist")) {
    return Status::NotFound("the source database does not exist: " + message);
  }
  if (has("permission denied for database")) {
    return Status::PermissionDenied("not allowed to connect to the source database: " + message);
  }
  if (has("certificate") || has("ssl") || has("tls")) {
    return Status::Unavailable("TLS with the source failed (check ca_file and host): " + message);
  }
  return Status::Unavailable("the source is unreachable: " + message);
}

}  // namespace

std::string QuoteIdentifier(std::string_view name) {
  std::string out;
  out.reserve(name.size() + 2);
  out.push_back('"');
  for (char c : name) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

Status StatusFromResult(const PGresult* result) {
  const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
  const char* primary = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY);
  const std::string code = state != nullptr ? state : "";
  std::string message = primary != nullptr ? primary : Trim(PQresultErrorMessage(result));
  if (message.empty()) message = "the source reported an error";
  const std::string text = code.empty() ? message : message + " (SQLSTATE " + code + ")";
  auto cls = [&code](std::string_view prefix) { return code.starts_with(prefix); };
  if (code == "42P01" || code == "3F000" || code == "42703" || code == "3D000") {
    return Status::NotFound(text);
  }
  if (code == "42501") return Status::PermissionDenied(text);
  if (code == "57014") {
    if (message.find("statement timeout") != std::string::npos) {
      return Status::DeadlineExceeded(text);
    }
    return Status::Cancelled(text);
  }
  if (code.empty() || cls("08") || cls("57P")) return Status::Unavailable(text);
  if (cls("28")) return Status::Unauthenticated(text);
  if (cls("53")) return Status::ResourceExhausted(text);
  if (cls("22") || cls("42") || code == "25006") return Status::InvalidArgument(text);
  return Status::Unknown(text);
}

Result<std::unique_ptr<PgConnection>> PgConnection::Connect(const PostgresConfig& config,
                                                            const sdk::Host& host) {
  // The password lives in `password` (NUL-terminated for libpq) only for the
  // duration of PQconnectdbParams; both copies are wiped on every path.
  std::vector<char> password;
  struct Wipe {
    std::vector<char>* bytes;
    ~Wipe() {
      if (!bytes->empty()) explicit_bzero(bytes->data(), bytes->size());
    }
  } wipe{&password};
  if (!config.password_ref.empty()) {
    auto secret = host.ResolveSecret(config.password_ref);
    if (!secret.ok()) return secret.status().WithContext("resolving the source password");
    const std::string_view bytes = secret->view();
    if (bytes.find('\0') != std::string_view::npos) {
      return Status::InvalidArgument("the source password contains a NUL byte");
    }
    password.reserve(bytes.size() + 1);
    password.assign(bytes.begin(), bytes.end());
    password.push_back('\0');
    secret->reset();
  }

  const std::string port = std::to_string(config.port);
  const std::string timeout = std::to_string(config.connect_timeout_seconds);
  std::vector<const char*> keys = {"host",
                                   "port",
                                   "dbname",
                                   "user",
                                   "sslmode",
                                   "connect_timeout",
                                   "application_name",
                                   "client_encoding",
                                   "gssencmode",
                                   "options"};
  std::vector<const char*> values = {
      config.host.c_str(), port.c_str(), config.database.c_str(), config.user.c_str(),
      config.sslmode.c_str(), timeout.c_str(), config.application_name.c_str(), "UTF8", "disable",
      // Fixed session settings: the text forms the connector delivers (and
      // hashes) must not depend on the server's or the role's defaults.
      "-c TimeZone=UTC -c DateStyle=ISO -c IntervalStyle=iso_8601 -c extra_float_digits=1"};
  if (!config.ca_file.empty()) {
    keys.push_back("sslrootcert");
    values.push_back(config.ca_file.c_str());
  }
  if (!password.empty()) {
    keys.push_back("password");
    values.push_back(password.data());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);

  PGconn* conn = PQconnectdbParams(keys.data(), values.data(), 0);
  if (conn == nullptr) return Status::ResourceExhausted("libpq could not allocate a connection");
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = PQerrorMessage(conn);
    if (!password.empty()) Scrub(&message, std::string_view(password.data(), password.size() - 1));
    PQfinish(conn);
    return ConnectFailure(std::move(message));
  }
  std::unique_ptr<PgConnection> connection(new PgConnection(conn));
  connection->cancel_.reset(PQgetCancel(conn));
  return connection;
}

PgConnection::~PgConnection() {
  if (conn_ != nullptr) PQfinish(conn_);
}

void PgConnection::RequestCancel() {
  if (!cancel_) return;
  char error[256];
  (void)PQcancel(cancel_.get(), error, sizeof error);
}

Status PgConnection::Send(std::string_view sql, const std::vector<Param>& params,
                          bool result_binary) {
  const std::string text(sql);
  std::vector<Oid> types;
  std::vector<const char*> values;
  std::vector<int> lengths;
  std::vector<int> formats;
  for (const Param& p : params) {
    types.push_back(p.type_oid);
    values.push_back(p.value.c_str());
    lengths.push_back(static_cast<int>(p.value.size()));
    formats.push_back(p.binary ? 1 : 0);
  }
  const int sent = PQsendQueryParams(
      conn_, text.c_str(), static_cast<int>(params.size()), params.empty() ? nullptr : types.data(),
      params.empty() ? nullptr : values.data(), params.empty() ? nullptr : lengths.data(),
      params.empty() ? nullptr : formats.data(), result_binary ? 1 : 0);
  if (sent != 1)
    return Status::Unavailable("sending to the source failed: " + Trim(PQerrorMessage(conn_)));
  return Status::Ok();
}

Result<PgResult> PgConnection::Await(const Interrupt& interrupt) {
  Status stop = Status::Ok();
  bool cancel_sent = false;
  std::chrono::steady_clock::time_point cancelled_at;
  PgResult error;
  PgResult last;
  for (;;) {
    while (PQisBusy(conn_) != 0) {
      pollfd p{PQsocket(conn_), POLLIN, 0};
      if (::poll(&p, 1, kPollMillis) < 0 && errno != EINTR) {
        return Status::Unavailable(std::string("waiting for the source failed: ") +
                                   std::strerror(errno));
      }
      if (!cancel_sent && interrupt) {
        Status why = interrupt();
        if (!why.ok()) {
          stop = std::move(why);
          RequestCancel();
          cancel_sent = true;
          cancelled_at = std::chrono::steady_clock::now();
        }
      }
      // A server that does not answer its cancel request is given up on; the
      // caller drops the connection, which ends the backend's statement.
      if (cancel_sent && std::chrono::steady_clock::now() - cancelled_at > kCancelGrace) {
        return stop;
      }
      if (PQconsumeInput(conn_) == 0) {
        return Status::Unavailable("lost the connection to the source: " +
                                   Trim(PQerrorMessage(conn_)));
      }
    }
    PGresult* raw = PQgetResult(conn_);
    if (raw == nullptr) break;
    PgResult owned(raw);
    const ExecStatusType status = PQresultStatus(raw);
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
      last = std::move(owned);
    } else if (!error) {
      error = std::move(owned);
    }
  }
  if (error) {
    if (PQstatus(conn_) == CONNECTION_BAD) {
      return Status::Unavailable("lost the connection to the source: " +
                                 Trim(PQerrorMessage(conn_)));
    }
    Status failed = StatusFromResult(error.get());
    if (cancel_sent && failed.code() == StatusCode::kCancelled) return stop;
    return failed;
  }
  if (!stop.ok()) return stop;
  if (!last) return Status::Internal("the source sent no result");
  return last;
}

Result<PgResult> PgConnection::Run(std::string_view sql, const std::vector<Param>& params,
                                   bool result_binary, const Interrupt& interrupt) {
  AIRLOCK_RETURN_IF_ERROR(Send(sql, params, result_binary));
  return Await(interrupt);
}

Result<PgResult> PgConnection::Describe(std::string_view sql, const Interrupt& interrupt) {
  const std::string text(sql);
  if (PQsendPrepare(conn_, "", text.c_str(), 0, nullptr) != 1) {
    return Status::Unavailable("sending to the source failed: " + Trim(PQerrorMessage(conn_)));
  }
  AIRLOCK_ASSIGN_OR_RETURN(PgResult prepared, Await(interrupt));
  if (PQsendDescribePrepared(conn_, "") != 1) {
    return Status::Unavailable("sending to the source failed: " + Trim(PQerrorMessage(conn_)));
  }
  return Await(interrupt);
}

}  // namespace airlock::connectors::postgres
