#include "session.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <exception>
#include <utility>

#include "airlock/cpp/batch.hpp"
#include "errors.h"
#include "messages.h"
#include "scram.h"
#include "sql_text.h"
#include "types.h"

namespace airlock::tunnels::pgwire {
namespace {

using Clock = Connection::Clock;

// Output is written once this much is pending (rows stream, memory stays bounded).
constexpr size_t kFlushThreshold = 64 * 1024;
constexpr int kMaxParameters = 65535;
// What is read and dropped of an oversized message before closing.
constexpr size_t kMaxDrainBytes = 4 << 20;
constexpr char kServerVersion[] = "15.0 (airlock)";

struct ServerParameter {
  const char* name;
  const char* value;
};
constexpr ServerParameter kServerParameters[] = {
    {"server_version", kServerVersion},
    {"server_encoding", "UTF8"},
    {"client_encoding", "UTF8"},
    {"DateStyle", "ISO, MDY"},
    {"IntervalStyle", "postgres"},
    {"integer_datetimes", "on"},
    {"standard_conforming_strings", "on"},
    {"TimeZone", "UTC"},
    {"is_superuser", "off"},
    {"default_transaction_read_only", "on"},
    {"in_hot_standby", "off"},
};

// What SHOW answers beyond the ParameterStatus values (lower-case names).
constexpr ServerParameter kShowOnlyParameters[] = {
    {"transaction_read_only", "on"},
    {"search_path", "\"$user\", public"},
    {"transaction_isolation", "read committed"},
    {"default_transaction_isolation", "read committed"},
    {"server_version_num", "150000"},
    {"max_identifier_length", "63"},
    {"lc_collate", "C.UTF-8"},
    {"lc_ctype", "C.UTF-8"},
    {"bytea_output", "hex"},
    {"extra_float_digits", "1"},
};

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The SELECT-like statements whose tag is "SELECT n".
bool IsSelectKeyword(const std::string& keyword) {
  return keyword == "SELECT" || keyword == "WITH" || keyword == "VALUES" || keyword == "TABLE" ||
         keyword.empty();
}

std::string CommandTag(const std::string& keyword, uint64_t rows) {
  if (IsSelectKeyword(keyword)) return "SELECT " + std::to_string(rows);
  return keyword;
}

bool FieldsMatch(const std::vector<arrow::Field>& a, const std::vector<arrow::Field>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (OidFor(a[i]) != OidFor(b[i])) return false;
  }
  return true;
}

// The format of result column `col`: formats apply to all columns when one
// is given, per column when as many as columns are given.
int16_t FormatOf(const std::vector<int16_t>& formats, size_t col) {
  if (formats.empty()) return 0;
  if (formats.size() == 1) return formats[0];
  return col < formats.size() ? formats[col] : 0;
}

// The presentation of column `col` given the statement's column types.
ColumnPresentation PresentationOf(const std::vector<arrow::Field>& fields, size_t col,
                                  const std::vector<uint32_t>* column_types) {
  const bool known = column_types != nullptr && column_types->size() == fields.size();
  return PresentColumn(fields[col], known ? (*column_types)[col] : 0);
}

// Appends row `row` as a DataRow; the column whose value cannot be shown
// as its presented type, if any (the row is then incomplete).
std::optional<size_t> AppendDataRow(std::string& out, const arrow::BatchView& view, size_t row,
                                    const std::vector<ColumnPresentation>& presentations,
                                    const std::vector<int16_t>& formats) {
  MessageWriter writer(out);
  writer.Begin('D');
  writer.PutInt16(static_cast<int16_t>(view.num_columns()));
  for (size_t col = 0; col < view.num_columns(); ++col) {
    if (view.IsNull(col, row) || view.field(col).type == arrow::Type::kNull) {
      writer.PutInt32(-1);
      continue;
    }
    const size_t length_at = out.size();
    writer.PutInt32(0);
    if (!AppendPresented(out, presentations[col], FormatOf(formats, col), view, col, row)) {
      return col;
    }
    const uint32_t length = static_cast<uint32_t>(out.size() - length_at - 4);
    for (int i = 0; i < 4; ++i) {
      out[length_at + static_cast<size_t>(i)] = static_cast<char>((length >> (24 - 8 * i)) & 0xff);
    }
  }
  writer.End();
  return std::nullopt;
}

std::vector<ColumnPresentation> Presentations(const std::vector<arrow::Field>& fields,
                                              const std::vector<uint32_t>* column_types) {
  std::vector<ColumnPresentation> out;
  for (size_t col = 0; col < fields.size(); ++col) {
    out.push_back(PresentationOf(fields, col, column_types));
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------
// Result streaming

// Writes RowDescription and DataRows as batches arrive; flushes to the client
// every kFlushThreshold bytes so that no result is buffered whole.
class Session::ResultStream final : public sdk::BatchConsumer {
 public:
  ResultStream(Session& session, const std::vector<int16_t>& formats, bool describe,
               const std::vector<arrow::Field>* expected, ResultOutput output)
      : session_(session),
        formats_(formats),
        describe_(describe),
        expected_(expected),
        copy_(output.copy),
        column_types_(output.column_types) {}

  Status OnSchema(arrow::OwnedSchema schema) override {
    if (have_schema_) return Fail(Status::Internal("the channel sent a second schema"));
    auto fields = ResultFields(schema);
    if (!fields.ok()) return Fail(fields.status());
    fields_ = std::move(fields).value();
    if (formats_.size() > 1 && formats_.size() != fields_.size()) {
      protocol_error_ = "bind message has " + std::to_string(formats_.size()) +
                        " result formats but query has " + std::to_string(fields_.size()) +
                        " columns";
      return Status::Cancelled("result formats do not match");
    }
    if (expected_ != nullptr && !FieldsMatch(*expected_, fields_)) {
      return Fail(Status::Internal("the result columns changed between Describe and Execute"));
    }
    have_schema_ = true;
    presentations_ = Presentations(fields_, column_types_);
    if (copy_ != nullptr) {
      MessageWriter w(session_.out_);
      w.Begin('H');  // CopyOutResponse: text, every column text
      w.PutInt8(0);
      w.PutInt16(static_cast<int16_t>(fields_.size()));
      for (size_t i = 0; i < fields_.size(); ++i) w.PutInt16(0);
      w.End();
      if (copy_->header) {
        std::string line;
        for (size_t col = 0; col < fields_.size(); ++col) {
          if (col > 0) line.push_back(copy_->delimiter);
          AppendCopyValue(line, fields_[col].name);
        }
        line.push_back('\n');
        MessageWriter(session_.out_).CopyData(line);
      }
    } else if (describe_) {
      session_.WriteRowDescription(fields_, formats_, column_types_);
    }
    return Status::Ok();
  }

  Status OnBatch(arrow::OwnedArray batch) override {
    if (!have_schema_) return Fail(Status::Internal("the channel sent a batch before its schema"));
    auto view = arrow::BatchView::Make(fields_, *batch.get());
    if (!view.ok()) return Fail(view.status());
    std::string& out = session_.out_;
    for (size_t row = 0; row < view->num_rows(); ++row) {
      if (rows_ >= session_.context_.config.max_rows) {
        limit_hit_ = true;
        return Status::ResourceExhausted("result has more than max_rows rows");
      }
      if (copy_ != nullptr) {
        if (Status st = AppendCopyRow(*view, row); !st.ok()) return st;
        ++rows_;
        if (out.size() >= kFlushThreshold && !session_.Flush()) {
          return Status::Cancelled("the client connection is gone");
        }
        continue;
      }
      if (const auto bad = AppendDataRow(out, *view, row, presentations_, formats_)) {
        return Fail(UnreadableValue(*bad));
      }
      ++rows_;
      if (out.size() >= kFlushThreshold && !session_.Flush()) {
        return Status::Cancelled("the client connection is gone");
      }
    }
    return Status::Ok();
  }

  bool IsCancelled() override { return session_.statement_cancelled(); }

  bool have_schema() const { return have_schema_; }
  uint64_t rows() const { return rows_; }
  bool limit_hit() const { return limit_hit_; }
  const std::optional<Status>& own_error() const { return own_error_; }
  const std::string& protocol_error() const { return protocol_error_; }

 private:
  Status Fail(Status status) {
    own_error_ = status;
    return status;
  }

  Status UnreadableValue(size_t col) const {
    return Status::Internal("column \"" + fields_[col].name + "\" holds a value that is not a " +
                            (presentations_[col].type_oid == oid::kDate ? "date" : "date/time"));
  }

  // One row as a CopyData message, in COPY's text or CSV format.
  Status AppendCopyRow(const arrow::BatchView& view, size_t row) {
    line_.clear();
    for (size_t col = 0; col < view.num_columns(); ++col) {
      if (col > 0) line_.push_back(copy_->delimiter);
      if (view.IsNull(col, row) || view.field(col).type == arrow::Type::kNull) {
        line_ += copy_->null_text;
        continue;
      }
      value_.clear();
      if (!AppendPresented(value_, presentations_[col], 0, view, col, row)) {
        return Fail(UnreadableValue(col));
      }
      AppendCopyValue(line_, value_);
    }
    line_.push_back('\n');
    MessageWriter(session_.out_).CopyData(line_);
    return Status::Ok();
  }

  void AppendCopyValue(std::string& out, std::string_view value) const {
    const char delimiter = copy_->delimiter;
    if (copy_->csv) {
      const char quote = copy_->quote;
      const bool quoted =
          value == copy_->null_text ||
          value.find_first_of(std::string{delimiter, quote, '\r', '\n'}) != std::string_view::npos;
      if (!quoted) {
        out.append(value);
        return;
      }
      out.push_back(quote);
      for (char c : value) {
        if (c == quote) out.push_back(quote);
        out.push_back(c);
      }
      out.push_back(quote);
      return;
    }
    for (char c : value) {
      switch (c) {
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        case '\b':
          out += "\\b";
          break;
        case '\f':
          out += "\\f";
          break;
        case '\v':
          out += "\\v";
          break;
        default:
          if (c == delimiter) out.push_back('\\');
          out.push_back(c);
      }
    }
  }

  Session& session_;
  const std::vector<int16_t>& formats_;
  const bool describe_;
  const std::vector<arrow::Field>* expected_;
  const CopyFormat* copy_;
  const std::vector<uint32_t>* column_types_;
  std::vector<ColumnPresentation> presentations_;
  std::string line_;
  std::string value_;
  bool have_schema_ = false;
  std::vector<arrow::Field> fields_;
  uint64_t rows_ = 0;
  bool limit_hit_ = false;
  std::optional<Status> own_error_;
  std::string protocol_error_;
};

// Captures the result schema and stops the statement there.
class Session::SchemaProbe final : public sdk::BatchConsumer {
 public:
  explicit SchemaProbe(Session& session) : session_(session) {}

  Status OnSchema(arrow::OwnedSchema schema) override {
    auto fields = ResultFields(schema);
    if (!fields.ok()) {
      own_error_ = fields.status();
      return fields.status();
    }
    fields_ = std::move(fields).value();
    return Status::Cancelled("schema captured");  // no rows are needed
  }
  Status OnBatch(arrow::OwnedArray) override { return Status::Cancelled("schema captured"); }
  bool IsCancelled() override { return fields_.has_value() || session_.statement_cancelled(); }

  std::optional<std::vector<arrow::Field>> fields_;
  std::optional<Status> own_error_;

 private:
  Session& session_;
};

// ---------------------------------------------------------------------------
// Lifecycle

Session::Session(SessionContext& context, boost::asio::ip::tcp::socket socket, int32_t process_id,
                 int32_t secret_key, sdk::ConnectionBudget::Ticket ticket,
                 Connection::Clock::time_point accepted_at)
    : context_(context),
      connection_(std::move(socket)),
      ticket_(std::move(ticket)),
      accepted_at_(accepted_at),
      process_id_(process_id),
      secret_key_(secret_key) {}

Session::~Session() = default;

void Session::Run() {
  try {
    connection_.SetDeadline(context_.config.startup_timeout - (Clock::now() - accepted_at_));
    if (Startup()) {
      for (;;) {
        if (!out_.empty() && !Flush()) break;
        connection_.SetDeadline(context_.config.idle_timeout);
        char type = 0;
        std::string body;
        const bool got = ReadMessage(&type, &body);
        connection_.ClearDeadline();
        if (terminate_) break;
        if (revoked_ || endpoint_->closed()) {
          EndedFatal();
          break;
        }
        if (!got) {
          if (timed_out_) {
            Fatal("57P05", "terminating connection due to idle-session timeout");
          }
          break;
        }
        if (!Dispatch(type, body) || terminate_) break;
      }
    }
  } catch (const std::exception& e) {
    // Out of memory and the like: this connection ends, the process lives on.
    context_.host.Error(std::string("pgwire connection failed: ") + e.what());
  }
  if (!out_.empty()) Flush();
  // Cursors hold statements (and leases) of the endpoint: they end with the
  // connection, not whenever the last reference to it goes.
  portals_.clear();
  cursors_.clear();
  if (attached_) endpoint_->Unbind(this);
  connection_.Close();
}

void Session::Revoke() {
  revoked_ = true;
  connection_.ShutdownRead();  // wakes the reader; the session says 57P01 and closes
}

void Session::Kill() {
  revoked_ = true;
  broken_ = true;
  connection_.ShutdownBoth();
}

void Session::RequestCancel(int32_t secret_key) {
  const bool match = CRYPTO_memcmp(&secret_key, &secret_key_, sizeof secret_key) == 0;
  if (match) cancel_requested_ = true;
}

void Session::EnforceDeadline(Clock::time_point now) {
  if (!connection_.DeadlinePassed(now) || timed_out_.exchange(true)) return;
  // A reader is woken to say why; a writer blocked on a client that stopped
  // reading can only be cut off.
  if (writing_) {
    broken_ = true;
    connection_.ShutdownBoth();
  } else {
    connection_.ShutdownRead();
  }
}

bool Session::statement_cancelled() const {
  return cancel_requested_ || revoked_ || broken_ || endpoint_->closed() ||
         Clock::now() > statement_deadline_;
}

// ---------------------------------------------------------------------------
// Output helpers

bool Session::Flush() {
  if (out_.empty()) return !broken_;
  if (broken_) {
    out_.clear();
    return false;
  }
  writing_ = true;
  connection_.SetDeadline(context_.config.write_timeout);
  const bool written = connection_.Write(out_);
  connection_.ClearDeadline();
  writing_ = false;
  out_.clear();
  if (!written) broken_ = true;
  return written;
}

void Session::Fatal(std::string_view state, std::string message) {
  SendFatal(MakeError(state, std::move(message), "FATAL"));
}

void Session::SendFatal(const PgError& error) {
  MessageWriter(out_).Error(error);
  Flush();
  terminate_ = true;
}

void Session::EndedFatal() {
  SendFatal(ClosedError(endpoint_->close_reason(), endpoint_->request_id(), /*connected=*/true));
}

void Session::ProtocolViolation(std::string message) {
  Fatal(sqlstate::kProtocolViolation, std::move(message));
}

void Session::ExtendedError(const PgError& error) {
  MessageWriter(out_).Error(error);
  ignore_till_sync_ = true;
}

void Session::WriteRowDescription(const std::vector<arrow::Field>& fields,
                                  const std::vector<int16_t>& formats,
                                  const std::vector<uint32_t>* column_types) {
  MessageWriter w(out_);
  w.Begin('T');
  w.PutInt16(static_cast<int16_t>(fields.size()));
  for (size_t i = 0; i < fields.size(); ++i) {
    const uint32_t type = PresentationOf(fields, i, column_types).type_oid;
    w.PutCString(fields[i].name);
    w.PutInt32(0);  // table OID
    w.PutInt16(0);  // column number
    w.PutInt32(static_cast<int32_t>(type));
    w.PutInt16(TypeLength(type));
    w.PutInt32(-1);  // type modifier
    w.PutInt16(FormatOf(formats, i));
  }
  w.End();
}

// ---------------------------------------------------------------------------
// Startup and authentication

bool Session::Startup() {
  // At most: GSSENCRequest, SSLRequest, then the startup message.
  for (int round = 0; round < 3; ++round) {
    std::string header;
    if (!connection_.Read(4, &header)) return false;
    const int32_t length = LoadInt32(header.data());
    if (length < 8 || static_cast<size_t>(length) > kMaxStartupPacket) {
      ProtocolViolation("invalid length of startup packet");
      return false;
    }
    std::string body;
    if (!connection_.Read(static_cast<size_t>(length) - 4, &body)) return false;
    const int32_t code = LoadInt32(body.data());

    if (code == kSslRequestCode || code == kGssEncRequestCode) {
      if (length != 8) {
        ProtocolViolation("invalid length of encryption request");
        return false;
      }
      if (connection_.tls()) {
        ProtocolViolation("encryption requested twice");
        return false;
      }
      // Bytes sent before the handshake would be read as if they had been
      // encrypted: refuse them (a man in the middle could have injected them).
      if (connection_.buffered() != 0) {
        ProtocolViolation("received unencrypted data after the encryption request");
        return false;
      }
      const bool accept = code == kSslRequestCode && context_.tls != nullptr;
      if (!connection_.Write(accept ? "S" : "N")) return false;
      if (accept) {
        if (auto st = connection_.StartTls(*context_.tls); !st.ok()) return false;
      }
      continue;
    }
    if (code == kCancelRequestCode) {
      if (length == 16) {
        context_.cancels.Cancel(LoadInt32(body.data() + 4), LoadInt32(body.data() + 8));
      }
      return false;  // no answer: PostgreSQL just closes
    }
    if ((code >> 16) != 3) {
      ProtocolViolation("unsupported frontend protocol " + std::to_string(code >> 16) + "." +
                        std::to_string(code & 0xffff) + ": server supports 3.0");
      return false;
    }

    // The startup message proper: name/value pairs, an empty name ends them.
    if (!connection_.tls()) {
      const bool plaintext_ok = context_.config.allow_plaintext && connection_.peer_is_loopback();
      if (!plaintext_ok) {
        Fatal(sqlstate::kInvalidAuthorization,
              "TLS is required: connect with sslmode=require (or verify-full)");
        return false;
      }
    }
    // Other parameters (options, client_encoding, DateStyle...) are accepted
    // and ignored: the session always speaks UTF8, ISO dates and UTC.
    auto parameters = DecodeStartupParameters(std::string_view(body).substr(4));
    if (!parameters) {
      ProtocolViolation("invalid startup packet layout");
      return false;
    }
    if (parameters->replication) {
      Fatal(sqlstate::kFeatureNotSupported, "replication connections are not supported");
      return false;
    }
    application_name_ = std::move(parameters->application_name);
    const std::string& user = parameters->user;
    std::string& database = parameters->database;
    const std::vector<std::string>& unrecognized = parameters->unrecognized;
    if (user.empty()) {
      Fatal(sqlstate::kInvalidAuthorization, "no user name specified in startup packet");
      return false;
    }
    if (database.empty()) database = user;  // libpq's default, too
    if ((code & 0xffff) != 0 || !unrecognized.empty()) {
      MessageWriter w(out_);
      w.Begin('v');
      w.PutInt32(0);  // newest minor version supported
      w.PutInt32(static_cast<int32_t>(unrecognized.size()));
      for (const auto& option : unrecognized) w.PutCString(option);
      w.End();
    }
    user_ = user;
    database_ = database;
    if (!Authenticate(user, database)) return false;
    connection_.ClearDeadline();
    return true;
  }
  ProtocolViolation("too many encryption requests");
  return false;
}

bool Session::Authenticate(const std::string& user, const std::string& database) {
  std::optional<sdk::CloseReason> closed;
  endpoint_ = context_.registry.Find(user, &closed);
  if (endpoint_ == nullptr) {
    context_.host.Info("pgwire: refused connection from " + connection_.peer() +
                       (closed ? std::string(": endpoint closed (") + CloseReasonName(*closed) + ")"
                               : std::string(": unknown request")));
    if (closed) {
      SendFatal(ClosedError(*closed, user, /*connected=*/false));
    } else {
      Fatal(sqlstate::kInvalidAuthorization, "no open endpoint for user \"" + user + "\"");
    }
    return false;
  }
  if (context_.host.NowMicros() / 1000000 >= endpoint_->not_after()) {
    // The window binds the credential by itself, even before the host closes.
    SendFatal(ClosedError(sdk::CloseReason::kWindowEnded, user, /*connected=*/false));
    return false;
  }

  MessageWriter w(out_);
  w.Begin('R');
  w.PutInt32(10);  // AuthenticationSASL
  w.PutCString("SCRAM-SHA-256");
  w.PutInt8(0);
  w.End();
  if (!Flush()) return false;

  ScramExchange scram(endpoint_->verifier());
  char type = 0;
  std::string body;
  if (!ReadMessage(&type, &body)) return false;
  if (type != 'p') {
    ProtocolViolation("expected SASL response, got message type " + std::to_string(type));
    return false;
  }
  const auto initial = DecodeSaslInitialResponse(body);
  if (!initial) {
    ProtocolViolation("malformed SASLInitialResponse");
    return false;
  }
  if (initial->mechanism != "SCRAM-SHA-256") {
    Fatal(sqlstate::kInvalidAuthorization, "client selected an invalid SASL mechanism");
    return false;
  }
  auto server_first = scram.OnClientFirst(initial->data);
  if (!server_first.ok()) {
    ProtocolViolation(server_first.status().message());
    return false;
  }
  w.Begin('R');
  w.PutInt32(11);  // AuthenticationSASLContinue
  w.PutBytes(*server_first);
  w.End();
  if (!Flush()) return false;

  body.clear();
  if (!ReadMessage(&type, &body)) return false;
  if (type != 'p') {
    ProtocolViolation("expected SASL response, got message type " + std::to_string(type));
    return false;
  }
  auto server_final = scram.OnClientFinal(body);
  if (!server_final.ok()) {
    if (server_final.status().code() == StatusCode::kUnauthenticated) {
      context_.host.Warn("pgwire: wrong password for request '" + user + "' from " +
                         connection_.peer());
      Fatal(sqlstate::kInvalidPassword, "password authentication failed for user \"" + user + "\"");
    } else {
      ProtocolViolation(server_final.status().message());
    }
    return false;
  }
  w.Begin('R');
  w.PutInt32(12);  // AuthenticationSASLFinal
  w.PutBytes(*server_final);
  w.End();
  w.Begin('R');
  w.PutInt32(0);  // AuthenticationOk
  w.End();

  if (database != endpoint_->request_id()) {
    Fatal(sqlstate::kInvalidCatalogName, "database \"" + database + "\" does not exist");
    return false;
  }
  switch (endpoint_->Bind(shared_from_this())) {
    case EndpointState::BindResult::kClosed:
      EndedFatal();
      return false;
    case EndpointState::BindResult::kFull:
      Fatal(sqlstate::kTooManyConnections,
            "too many connections for request \"" + user + "\" (the tunnel's " +
                "max_connections_per_endpoint is " +
                std::to_string(context_.config.max_connections_per_endpoint) + ")");
      return false;
    case EndpointState::BindResult::kBound:
      attached_ = true;
      break;
  }
  // Authenticated: out of the startup pool, which unauthenticated clients
  // share. False only when the budget shed this connection meanwhile (its
  // socket is already shut down).
  if (!ticket_.Authenticate(endpoint_->request_id())) return false;
  SendStartupParameters();
  context_.host.Info("pgwire: connection from " + connection_.peer() + " for request '" + user +
                     "'" + (connection_.tls() ? "" : " (plaintext)"));
  return Flush();
}

void Session::SendStartupParameters() {
  MessageWriter w(out_);
  for (const auto& p : kServerParameters) w.ParameterStatus(p.name, p.value);
  w.ParameterStatus("application_name", application_name_);
  w.ParameterStatus("session_authorization", user_);
  w.Begin('K');
  w.PutInt32(process_id_);
  w.PutInt32(secret_key_);
  w.End();
  w.ReadyForQuery('I');
}

// ---------------------------------------------------------------------------
// Messages

bool Session::ReadMessage(char* type, std::string* body) {
  std::string header;
  if (!connection_.Read(5, &header)) return false;
  *type = header[0];
  const int32_t length = LoadInt32(header.data() + 1);
  if (length < 4) {
    ProtocolViolation("invalid message length");
    return false;
  }
  const size_t body_length = static_cast<size_t>(length) - 4;
  if (body_length > context_.config.max_message_bytes) {
    Fatal(sqlstate::kProtocolViolation, "message of " + std::to_string(body_length) +
                                            " bytes exceeds the limit of " +
                                            std::to_string(context_.config.max_message_bytes));
    // Closing with unread input would reset the connection and could destroy
    // the error in flight: drain a bounded part of the message first.
    connection_.SetDeadline(std::chrono::seconds(2));
    std::string discard;
    for (size_t left = std::min(body_length, kMaxDrainBytes); left > 0;) {
      const size_t n = std::min(left, kFlushThreshold);
      discard.clear();
      if (!connection_.Read(n, &discard)) break;
      left -= n;
    }
    connection_.ClearDeadline();
    return false;
  }
  return connection_.Read(body_length, body);
}

bool Session::Dispatch(char type, const std::string& body) {
  if (pending_describe_.has_value()) {
    // A portal Describe is answered together with its Execute when one
    // follows at once (one execution); otherwise by a schema probe now.
    bool executes_it = false;
    if (type == 'E') {
      BodyReader reader(body);
      std::string_view name;
      executes_it = reader.CString(&name) && name == *pending_describe_;
    }
    if (!executes_it) ResolvePendingDescribe();
  }
  if (ignore_till_sync_ && type != 'S' && type != 'X') return true;
  switch (type) {
    case 'Q':
      SimpleQuery(body);
      break;
    case 'P':
      Parse(body);
      break;
    case 'B':
      Bind(body);
      break;
    case 'D':
      Describe(body);
      break;
    case 'E':
      Execute(body);
      break;
    case 'C':
      CloseObject(body);
      break;
    case 'S':
      Sync();
      break;
    case 'H':
      return Flush();
    case 'X':
      return false;
    case 'F':
      ExtendedError(MakeError(sqlstate::kFeatureNotSupported, "function calls are not supported"));
      break;
    case 'd':
    case 'c':
    case 'f':
      break;  // COPY messages outside COPY are ignored, as PostgreSQL does
    default:
      ProtocolViolation("invalid frontend message type " +
                        std::to_string(static_cast<unsigned char>(type)));
      return false;
  }
  return !terminate_;
}

void Session::SimpleQuery(const std::string& body) {
  const auto decoded = DecodeQuery(body);
  if (!decoded) {
    ProtocolViolation("malformed Query message");
    return;
  }
  const std::string_view query = *decoded;
  // A simple Query drops the unnamed statement and portal.
  statements_.erase("");
  portals_.erase("");
  const auto statements = SplitStatements(query);
  if (statements.empty()) MessageWriter(out_).Simple('I');  // EmptyQueryResponse
  for (std::string_view statement : statements) {
    PreparedStatement prepared;
    if (auto error = Prepare(std::string(statement), {}, &prepared)) {
      MessageWriter(out_).Error(*error);
      break;  // the rest of the string is skipped, as PostgreSQL does
    }
    bool ok = false;
    if (prepared.translation.has_value()) {
      const Translation& t = *prepared.translation;
      if (!t.parameter_types.empty()) {
        MessageWriter(out_).Error(
            MakeError(sqlstate::kUndefinedParameter, "there is no parameter $1"));
        break;
      }
      if (t.kind == StatementKind::kDeclareCursor || t.kind == StatementKind::kFetch ||
          t.kind == StatementKind::kCloseCursor) {
        ok = RunCursorCommand(t.kind, t.cursor, t.sql, t.column_types, /*describe=*/true, {});
      } else {
        ok = ExecuteSql(t.sql, prepared.keyword, {}, /*describe=*/true, nullptr,
                        ResultOutput{t.kind == StatementKind::kCopyOut ? &t.copy : nullptr,
                                     &t.column_types, t.catalog});
      }
    } else {
      const LocalOutcome local = RunLocal(prepared.keyword, prepared.sql, /*describe=*/true);
      ok = local == LocalOutcome::kDone;
      if (local == LocalOutcome::kNotLocal) {
        ok = ExecuteSql(prepared.sql, prepared.keyword, {}, /*describe=*/true, nullptr);
      }
    }
    if (terminate_) return;
    if (!ok) break;  // the rest of the string is skipped, as PostgreSQL does
  }
  MessageWriter(out_).ReadyForQuery(in_transaction_ ? 'T' : 'I');
}

namespace {

// Statements the session answers itself (see RunLocal).
bool IsLocalKeyword(const std::string& keyword) {
  static constexpr std::string_view kLocal[] = {"BEGIN",    "START",      "COMMIT", "END",
                                                "ROLLBACK", "ABORT",      "SET",    "RESET",
                                                "DISCARD",  "DEALLOCATE", "SHOW"};
  for (std::string_view local : kLocal) {
    if (keyword == local) return true;
  }
  return false;
}

}  // namespace

const GrantSchema& Session::Schema() {
  if (schema_.has_value()) return *schema_;
  schema_.emplace();
  auto lease = endpoint_->Acquire();
  if (!lease.has_value()) return *schema_;
  auto tables = lease->channel().Tables();
  if (!tables.ok()) {
    // Without the schema, parameters compared with columns are typed by
    // what else they meet; the statement itself still runs.
    context_.host.Warn("pgwire: the grant's tables are unavailable: " + tables.status().message());
    return *schema_;
  }
  auto schema = SchemaFromTables(*tables);
  if (schema.ok()) {
    schema_ = std::move(schema).value();
  } else {
    context_.host.Warn("pgwire: unreadable tables document: " + schema.status().message());
  }
  return *schema_;
}

std::optional<PgError> Session::Prepare(std::string sql, std::vector<uint32_t> declared,
                                        PreparedStatement* out) {
  out->keyword = FirstKeyword(sql);
  out->sql = std::move(sql);
  out->parameter_types = std::move(declared);
  out->translation.reset();
  if (out->sql.empty() || IsBlank(out->sql) || IsLocalKeyword(out->keyword) ||
      (IsWriteKeyword(out->keyword) && out->keyword != "COPY")) {
    const int used = MaxParameterIndex(out->sql);
    if (used > kMaxParameters) {
      return MakeError(sqlstate::kUndefinedParameter,
                       "parameter number " + std::to_string(used) + " is too large");
    }
    if (static_cast<size_t>(used) > out->parameter_types.size()) {
      out->parameter_types.resize(static_cast<size_t>(used), 0);
    }
    return std::nullopt;
  }
  const SessionFacts facts{user_, database_, application_name_};
  auto translated = Translate(out->sql, Schema(), out->parameter_types, facts);
  if (auto* error = std::get_if<PgError>(&translated)) return std::move(*error);
  out->translation = std::move(std::get<Translation>(translated));
  out->parameter_types = out->translation->parameter_types;
  if (out->parameter_types.size() > static_cast<size_t>(kMaxParameters)) {
    return MakeError(sqlstate::kUndefinedParameter, "too many parameters");
  }
  return std::nullopt;
}

void Session::Parse(const std::string& body) {
  auto message = DecodeParse(body);
  if (!message) return ProtocolViolation("malformed Parse message");
  const std::string_view query = message->query;
  std::vector<uint32_t>& types = message->parameter_types;

  const std::string key(message->name);
  if (!key.empty() && statements_.count(key) != 0) {
    return ExtendedError(MakeError(sqlstate::kDuplicatePreparedStatement,
                                   "prepared statement \"" + key + "\" already exists"));
  }
  if (statements_.count(key) == 0 &&
      statements_.size() >= context_.config.max_prepared_statements) {
    return ExtendedError(MakeError(sqlstate::kProgramLimitExceeded,
                                   "too many prepared statements on this connection (limit " +
                                       std::to_string(context_.config.max_prepared_statements) +
                                       ")"));
  }
  const auto statements = SplitStatements(query);
  if (statements.size() > 1) {
    return ExtendedError(MakeError(sqlstate::kSyntaxError,
                                   "cannot insert multiple commands into a prepared statement"));
  }
  PreparedStatement prepared;
  if (auto error = Prepare(statements.empty() ? std::string() : std::string(statements[0]),
                           std::move(types), &prepared)) {
    return ExtendedError(*error);
  }
  statements_[key] = std::move(prepared);
  MessageWriter(out_).Simple('1');  // ParseComplete
}

void Session::Bind(const std::string& body) {
  auto message = DecodeBind(body);
  if (!message) return ProtocolViolation("malformed Bind message");
  const std::string_view portal_name = message->portal;
  const std::string_view statement_name = message->statement;
  const std::vector<int16_t>& parameter_formats = message->parameter_formats;
  const std::vector<std::optional<std::string_view>>& values = message->values;
  std::vector<int16_t>& result_formats = message->result_formats;

  auto statement = statements_.find(std::string(statement_name));
  if (statement == statements_.end()) {
    return ExtendedError(
        MakeError(sqlstate::kInvalidSqlStatementName,
                  "prepared statement \"" + std::string(statement_name) + "\" does not exist"));
  }
  const auto& types = statement->second.parameter_types;
  if (values.size() != types.size()) {
    return ExtendedError(MakeError(sqlstate::kProtocolViolation,
                                   "bind message supplies " + std::to_string(values.size()) +
                                       " parameters, but prepared statement \"" +
                                       std::string(statement_name) + "\" requires " +
                                       std::to_string(types.size())));
  }
  if (parameter_formats.size() > 1 && parameter_formats.size() != values.size()) {
    return ExtendedError(MakeError(sqlstate::kProtocolViolation,
                                   "bind message has " + std::to_string(parameter_formats.size()) +
                                       " parameter formats but " + std::to_string(values.size()) +
                                       " parameters"));
  }
  for (int16_t f : result_formats) {
    if (f != 0 && f != 1) {
      return ExtendedError(MakeError("22023", "unsupported format code: " + std::to_string(f)));
    }
  }
  std::vector<std::string> literals(values.size());
  const auto format_of = [&](size_t i) -> int16_t {
    return parameter_formats.empty()       ? 0
           : parameter_formats.size() == 1 ? parameter_formats[0]
                                           : parameter_formats[i];
  };
  for (size_t i = 0; i < values.size(); ++i) {
    if (auto error = ParameterLiteral(types[i], format_of(i), values[i], &literals[i])) {
      return ExtendedError(MakeError(
          error->sqlstate, "parameter $" + std::to_string(i + 1) + ": " + error->message));
    }
  }
  // LIKE patterns bound to parameters become the engine's GLOB patterns.
  std::vector<std::string> derived;
  const std::optional<Translation>& translation = statement->second.translation;
  if (translation.has_value()) {
    for (const DerivedParameter& d : translation->derived) {
      const auto& value = values[static_cast<size_t>(d.source) - 1];
      if (!value.has_value()) {
        derived.push_back("NULL");
        continue;
      }
      auto glob = LikeToGlob(*value, '\\');
      if (auto* error = std::get_if<PgError>(&glob)) return ExtendedError(*error);
      std::string literal;
      if (auto error = ParameterLiteral(oid::kText, 0, std::get<std::string>(glob), &literal)) {
        return ExtendedError(MakeError(
            error->sqlstate, "parameter $" + std::to_string(d.source) + ": " + error->message));
      }
      derived.push_back(std::move(literal));
    }
  }
  const std::string& text = translation.has_value() ? translation->sql : statement->second.sql;
  auto sql = SubstituteParameters(text, [&](int n) -> const std::string* {
    if (n >= kFirstDerivedParameter) {
      const size_t i = static_cast<size_t>(n - kFirstDerivedParameter);
      return i < derived.size() ? &derived[i] : nullptr;
    }
    return static_cast<size_t>(n) <= literals.size() ? &literals[static_cast<size_t>(n) - 1]
                                                     : nullptr;
  });
  if (!sql.ok()) {
    return ExtendedError(MakeError(sqlstate::kUndefinedParameter, sql.status().message()));
  }
  const std::string key(portal_name);
  if (!key.empty() && portals_.count(key) != 0) {
    return ExtendedError(MakeError("42P03", "cursor \"" + key + "\" already exists"));
  }
  Portal portal;
  portal.keyword = statement->second.keyword;
  portal.sql = std::move(sql).value();
  if (translation.has_value()) {
    if (translation->kind == StatementKind::kCopyOut) portal.copy = translation->copy;
    portal.translated = true;
    portal.catalog = translation->catalog;
    portal.kind = translation->kind;
    portal.cursor_command = translation->cursor;
    portal.column_types = translation->column_types;
  }
  portal.result_formats = std::move(result_formats);
  portals_[key] = std::move(portal);
  MessageWriter(out_).Simple('2');  // BindComplete
}

void Session::Describe(const std::string& body) {
  const auto message = DecodeTarget(body);
  if (!message) return ProtocolViolation("malformed Describe message");
  const std::string key(message->name);
  if (message->kind == 'S') {
    auto it = statements_.find(key);
    if (it == statements_.end()) {
      return ExtendedError(MakeError(sqlstate::kInvalidSqlStatementName,
                                     "prepared statement \"" + key + "\" does not exist"));
    }
    const PreparedStatement& statement = it->second;
    MessageWriter w(out_);
    w.Begin('t');  // ParameterDescription: undeclared types read as text
    w.PutInt16(static_cast<int16_t>(statement.parameter_types.size()));
    for (uint32_t type : statement.parameter_types) {
      w.PutInt32(static_cast<int32_t>(type == oid::kUnspecified ? oid::kText : type));
    }
    w.End();
    const std::string& keyword = statement.keyword;
    if (statement.sql.empty()) return w.Simple('n');  // NoData
    if (DescribeLocal(keyword, statement.sql)) return;
    if (statement.translation.has_value() && statement.translation->kind != StatementKind::kQuery) {
      return w.Simple('n');  // COPY and cursor commands: no row description before they run
    }
    // Without bound values, the probe runs with every parameter NULL.
    static const std::string kNull = "NULL";
    auto sql = SubstituteParameters(
        statement.translation.has_value() ? statement.translation->sql : statement.sql,
        [](int) { return &kNull; });
    if (!sql.ok()) {
      return ExtendedError(MakeError(sqlstate::kUndefinedParameter, sql.status().message()));
    }
    auto fields = ProbeSchema(*sql, keyword,
                              statement.translation.has_value() && statement.translation->catalog);
    if (!fields.has_value()) return;
    if (fields->empty()) return w.Simple('n');
    return WriteRowDescription(
        *fields, {},
        statement.translation.has_value() ? &statement.translation->column_types : nullptr);
  }
  if (message->kind != 'P') return ProtocolViolation("invalid Describe message subtype");
  auto it = portals_.find(key);
  if (it == portals_.end()) {
    return ExtendedError(
        MakeError(sqlstate::kInvalidCursorName, "portal \"" + key + "\" does not exist"));
  }
  Portal& portal = it->second;
  if (portal.kind == StatementKind::kFetch && !portal.cursor_command.move) {
    auto cursor = cursors_.find(portal.cursor_command.name);
    if (cursor == cursors_.end()) {
      return ExtendedError(
          MakeError(sqlstate::kInvalidCursorName,
                    "cursor \"" + portal.cursor_command.name + "\" does not exist"));
    }
    auto fields = cursor->second.rows->Fields();
    if (!fields.ok()) return MessageWriter(out_).Simple('n');
    return WriteRowDescription(**fields, portal.result_formats, &cursor->second.column_types);
  }
  if (portal.sql.empty() || portal.kind != StatementKind::kQuery) {
    return MessageWriter(out_).Simple('n');
  }
  if (portal.rows != nullptr) {  // suspended: its columns are known
    auto fields = portal.rows->Fields();
    if (fields.ok()) {
      return WriteRowDescription(**fields, portal.result_formats, &portal.column_types);
    }
  }
  if (DescribeLocal(portal.keyword, portal.sql)) return;
  pending_describe_ = key;  // answered with the Execute that normally follows
}

void Session::ResolvePendingDescribe() {
  const std::string key = std::move(*pending_describe_);
  pending_describe_.reset();
  auto it = portals_.find(key);
  if (it == portals_.end()) return;
  auto fields = ProbeSchema(it->second.sql, it->second.keyword, it->second.catalog);
  if (!fields.has_value()) return;
  if (fields->empty()) {
    MessageWriter(out_).Simple('n');
  } else {
    WriteRowDescription(*fields, it->second.result_formats, &it->second.column_types);
  }
  it->second.described = std::move(fields);
}

void Session::Execute(const std::string& body) {
  const auto message = DecodeExecute(body);
  if (!message) return ProtocolViolation("malformed Execute message");
  const std::string key(message->portal);
  const bool describe = pending_describe_.has_value() && *pending_describe_ == key;
  pending_describe_.reset();
  auto it = portals_.find(key);
  if (it == portals_.end()) {
    return ExtendedError(
        MakeError(sqlstate::kInvalidCursorName, "portal \"" + key + "\" does not exist"));
  }
  Portal& portal = it->second;
  if (portal.sql.empty()) return MessageWriter(out_).Simple('I');  // EmptyQueryResponse
  if (portal.kind == StatementKind::kDeclareCursor || portal.kind == StatementKind::kFetch ||
      portal.kind == StatementKind::kCloseCursor) {
    if (!RunCursorCommand(portal.kind, portal.cursor_command, portal.sql, portal.column_types,
                          describe, portal.result_formats)) {
      ignore_till_sync_ = true;
    }
    return;
  }
  const uint64_t max_rows = message->max_rows > 0 ? static_cast<uint64_t>(message->max_rows) : 0;
  if (portal.translated && portal.kind == StatementKind::kQuery && !portal.copy.has_value() &&
      (max_rows > 0 || portal.rows != nullptr)) {
    if (!ExecuteIncrementally(portal, max_rows, describe)) ignore_till_sync_ = true;
    return;
  }
  if (portal.executed) return MessageWriter(out_).CommandComplete(CommandTag(portal.keyword, 0));
  portal.executed = true;
  const LocalOutcome local = RunLocal(portal.keyword, portal.sql, /*describe=*/false);
  if (local == LocalOutcome::kFailed) ignore_till_sync_ = true;
  if (local != LocalOutcome::kNotLocal) return;
  const std::vector<arrow::Field>* expected =
      portal.described.has_value() ? &*portal.described : nullptr;
  if (!ExecuteSql(portal.sql, portal.keyword, portal.result_formats, describe, expected,
                  ResultOutput{portal.copy.has_value() ? &*portal.copy : nullptr,
                               &portal.column_types, portal.catalog})) {
    ignore_till_sync_ = true;
  }
}

void Session::CloseObject(const std::string& body) {
  const auto message = DecodeTarget(body);
  if (!message) return ProtocolViolation("malformed Close message");
  if (message->kind == 'S') {
    statements_.erase(std::string(message->name));
  } else if (message->kind == 'P') {
    portals_.erase(std::string(message->name));
  } else {
    return ProtocolViolation("invalid Close message subtype");
  }
  MessageWriter(out_).Simple('3');  // CloseComplete
}

void Session::Sync() {
  ignore_till_sync_ = false;
  // Portals end with their transaction: at Sync outside BEGIN ... COMMIT.
  if (!in_transaction_) portals_.clear();
  MessageWriter(out_).ReadyForQuery(in_transaction_ ? 'T' : 'I');
}

// ---------------------------------------------------------------------------
// Local statements

Session::LocalOutcome Session::RunLocal(const std::string& keyword, const std::string& sql,
                                        bool describe) {
  const auto done = [&](const std::string& tag) {
    MessageWriter(out_).CommandComplete(tag);
    return LocalOutcome::kDone;
  };
  if (keyword == "BEGIN" || keyword == "START") {
    in_transaction_ = true;
    return done("BEGIN");
  }
  if (keyword == "COMMIT" || keyword == "END" || keyword == "ROLLBACK" || keyword == "ABORT") {
    // The transaction's portals and cursors (but those WITH HOLD) end; a
    // portal of this very Execute is erased by the caller's Sync.
    in_transaction_ = false;
    EndTransactionCursors();
    return done(keyword == "COMMIT" || keyword == "END" ? "COMMIT" : "ROLLBACK");
  }
  if (keyword == "SET") return done("SET");
  if (keyword == "RESET") return done("RESET");
  if (keyword == "DISCARD") return done("DISCARD ALL");
  if (keyword == "DEALLOCATE") {
    std::string target = SecondWord(sql);
    if (target == "PREPARE") {
      target = SecondWord(std::string_view(sql).substr(Lower(sql).find("prepare")));
    }
    if (target == "ALL") {
      statements_.clear();
    } else {
      // Statement names are case-sensitive on the wire; DEALLOCATE folds them.
      std::erase_if(statements_, [&](const auto& entry) {
        return !entry.first.empty() && Lower(entry.first) == Lower(target);
      });
    }
    return done("DEALLOCATE");
  }
  if (keyword == "SHOW") {
    const std::string name = Lower(SecondWord(sql));
    std::optional<std::string> value;
    for (const auto& p : kServerParameters) {
      if (Lower(p.name) == name) value = p.value;
    }
    for (const auto& p : kShowOnlyParameters) {
      if (p.name == name) value = p.value;
    }
    if (name == "application_name") value = application_name_;
    if (name == "session_authorization") value = user_;
    if (name == "statement_timeout") {
      value = std::to_string(context_.config.query_timeout.count()) + "ms";
    }
    if (!value.has_value()) {
      MessageWriter(out_).Error(MakeError(sqlstate::kUndefinedObject,
                                          "unrecognized configuration parameter \"" + name + "\""));
      return LocalOutcome::kFailed;
    }
    if (describe) DescribeLocal(keyword, sql);
    MessageWriter w(out_);
    w.Begin('D');
    w.PutInt16(1);
    w.PutInt32(static_cast<int32_t>(value->size()));
    w.PutBytes(*value);
    w.End();
    return done("SHOW");
  }
  return LocalOutcome::kNotLocal;
}

bool Session::DescribeLocal(const std::string& keyword, const std::string& sql) {
  if (keyword == "SHOW") {
    std::vector<arrow::Field> fields(1);
    fields[0].name = Lower(SecondWord(sql));
    fields[0].type = arrow::Type::kUtf8;
    WriteRowDescription(fields, {});
    return true;
  }
  if (IsLocalKeyword(keyword)) {
    MessageWriter(out_).Simple('n');  // NoData
    return true;
  }
  return false;
}

// ---------------------------------------------------------------------------
// Statements through the channel

bool Session::ExecuteSql(const std::string& sql, const std::string& keyword,
                         const std::vector<int16_t>& formats, bool describe,
                         const std::vector<arrow::Field>* expected, ResultOutput output) {
  cancel_requested_ = false;  // a cancel applies to the statement running when it arrives
  statement_deadline_ = Clock::now() + context_.config.query_timeout;
  const CopyFormat* copy = output.copy;
  ResultStream stream(*this, formats, describe && copy == nullptr, expected, output);
  const std::optional<Status> ran = RunStatement(output.catalog, sql, stream);
  if (!ran.has_value()) {
    EndedFatal();
    return false;
  }
  Status status = *ran;

  if (broken_) {
    terminate_ = true;
    return false;
  }
  if (!stream.protocol_error().empty()) {
    MessageWriter(out_).Error(MakeError(sqlstate::kProtocolViolation, stream.protocol_error()));
    return false;
  }
  if (stream.own_error().has_value()) {
    MessageWriter(out_).Error(MakeError(
        sqlstate::kInternalError,
        "the enclave returned a result the tunnel cannot read: " + stream.own_error()->message()));
    return false;
  }
  if (stream.limit_hit()) {
    MessageWriter(out_).Error(
        MakeError(sqlstate::kProgramLimitExceeded, "the result has more than " +
                                                       std::to_string(context_.config.max_rows) +
                                                       " rows (max_rows); narrow the query"));
    return false;
  }
  if (revoked_ || endpoint_->closed()) {
    EndedFatal();
    return false;
  }
  if (status.ok()) {
    if (copy != nullptr) {
      MessageWriter(out_).Simple('c');  // CopyDone
      MessageWriter(out_).CommandComplete("COPY " + std::to_string(stream.rows()));
      return true;
    }
    if (describe && !stream.have_schema()) MessageWriter(out_).Simple('n');
    MessageWriter(out_).CommandComplete(CommandTag(keyword, stream.rows()));
    return true;
  }
  if (cancel_requested_) {
    MessageWriter(out_).Error(
        MakeError(sqlstate::kQueryCanceled, "canceling statement due to user request"));
  } else if (Clock::now() > statement_deadline_ &&
             (status.code() == StatusCode::kCancelled ||
              status.code() == StatusCode::kDeadlineExceeded)) {
    MessageWriter(out_).Error(
        MakeError(sqlstate::kQueryCanceled, "canceling statement due to statement timeout"));
  } else {
    MessageWriter(out_).Error(StatementError(status, keyword));
  }
  return false;
}

std::optional<Status> Session::RunStatement(bool catalog, const std::string& sql,
                                            sdk::BatchConsumer& consumer) {
  if (catalog) {
    CatalogDatabase* db = Catalog();
    if (db == nullptr) return Status::Unavailable("the catalog is unavailable");
    return db->Query(sql, consumer);
  }
  auto lease = endpoint_->Acquire();
  if (!lease.has_value()) return std::nullopt;
  return lease->channel().Query(sql, consumer);
}  // the channel is not touched after this point: close() may proceed

CatalogDatabase* Session::Catalog() {
  if (catalog_db_ == nullptr) {
    auto db = CatalogDatabase::Build(Schema(), SessionFacts{user_, database_, application_name_});
    if (!db.ok()) {
      context_.host.Error("pgwire: " + db.status().message());
      return nullptr;
    }
    catalog_db_ = std::move(db).value();
  }
  return catalog_db_.get();
}

std::optional<std::vector<arrow::Field>> Session::ProbeSchema(const std::string& sql,
                                                              const std::string& keyword,
                                                              bool catalog) {
  cancel_requested_ = false;
  statement_deadline_ = Clock::now() + context_.config.query_timeout;
  SchemaProbe probe(*this);
  const std::optional<Status> ran = RunStatement(catalog, sql, probe);
  if (!ran.has_value()) {
    EndedFatal();
    return std::nullopt;
  }
  Status status = *ran;
  if (probe.fields_.has_value()) return std::move(probe.fields_);
  if (revoked_ || endpoint_->closed()) {
    EndedFatal();
    return std::nullopt;
  }
  if (status.ok()) return std::vector<arrow::Field>{};  // no result set
  if (probe.own_error_.has_value()) status = Status::Internal(probe.own_error_->message());
  PgError error = cancel_requested_ ? MakeError(sqlstate::kQueryCanceled,
                                                "canceling statement due to user request")
                                    : StatementError(status, keyword);
  ExtendedError(error);
  return std::nullopt;
}

// ---------------------------------------------------------------------------
// Cursors and suspended portals

namespace {
// Cursors hold a thread and a statement of the enclave each.
constexpr size_t kMaxCursors = 16;
}  // namespace

std::unique_ptr<RowCursor> Session::StartCursor(const std::string& sql, bool catalog) {
  auto run = [this, catalog](const std::string& text, sdk::BatchConsumer& consumer) -> Status {
    const std::optional<Status> ran = RunStatement(catalog, text, consumer);
    return ran.value_or(Status::Unavailable("the endpoint is closed"));
  };
  return std::make_unique<RowCursor>(std::move(run), endpoint_, sql,
                                     Clock::now() + context_.config.query_timeout,
                                     &cancel_requested_);
}

void Session::EndTransactionCursors() {
  std::erase_if(cursors_, [](const auto& entry) { return !entry.second.hold; });
}

void Session::CursorError(const Status& status, const std::string& keyword) {
  if (revoked_ || endpoint_->closed()) return EndedFatal();
  if (cancel_requested_) {
    MessageWriter(out_).Error(
        MakeError(sqlstate::kQueryCanceled, "canceling statement due to user request"));
  } else if (status.code() == StatusCode::kCancelled ||
             status.code() == StatusCode::kDeadlineExceeded) {
    MessageWriter(out_).Error(
        MakeError(sqlstate::kQueryCanceled, "canceling statement due to statement timeout"));
  } else {
    MessageWriter(out_).Error(StatementError(status, keyword));
  }
}

bool Session::SendCursorRows(RowCursor& cursor, uint64_t max_rows, bool skip,
                             const std::vector<uint32_t>& column_types,
                             const std::vector<int16_t>& formats, RowCursor::Fetched* fetched) {
  auto fields = cursor.Fields();
  if (!fields.ok()) {
    CursorError(fields.status(), "FETCH");
    return false;
  }
  const std::vector<ColumnPresentation> presentations = Presentations(**fields, &column_types);
  uint64_t sent = 0;
  bool limit_hit = false;
  std::optional<size_t> unreadable;
  auto result = cursor.Fetch(max_rows, [&](const arrow::BatchView& view, size_t row) -> Status {
    if (skip) return Status::Ok();
    if (++sent > context_.config.max_rows) {
      limit_hit = true;
      return Status::ResourceExhausted("more than max_rows rows");
    }
    unreadable = AppendDataRow(out_, view, row, presentations, formats);
    if (unreadable.has_value()) return Status::Internal("unreadable value");
    if (out_.size() >= kFlushThreshold && !Flush()) {
      return Status::Cancelled("the client connection is gone");
    }
    return Status::Ok();
  });
  if (broken_) {
    terminate_ = true;
    return false;
  }
  if (limit_hit) {
    MessageWriter(out_).Error(
        MakeError(sqlstate::kProgramLimitExceeded, "a FETCH of more than " +
                                                       std::to_string(context_.config.max_rows) +
                                                       " rows (max_rows); fetch fewer at a time"));
    return false;
  }
  if (unreadable.has_value()) {
    MessageWriter(out_).Error(MakeError(
        sqlstate::kInternalError,
        "column \"" + (**fields)[*unreadable].name + "\" holds a value that is not of its type"));
    return false;
  }
  if (!result.ok()) {
    CursorError(result.status(), "FETCH");
    return false;
  }
  *fetched = *result;
  return true;
}

bool Session::RunCursorCommand(StatementKind kind, const CursorCommand& command,
                               const std::string& sql, const std::vector<uint32_t>& column_types,
                               bool describe, const std::vector<int16_t>& formats) {
  cancel_requested_ = false;
  const auto no_such_cursor = [&] {
    MessageWriter(out_).Error(
        MakeError(sqlstate::kInvalidCursorName, "cursor \"" + command.name + "\" does not exist"));
    return false;
  };
  if (kind == StatementKind::kCloseCursor) {
    if (command.name.empty()) {
      cursors_.clear();
    } else if (cursors_.erase(command.name) == 0) {
      return no_such_cursor();
    }
    MessageWriter(out_).CommandComplete("CLOSE CURSOR");
    return true;
  }
  if (kind == StatementKind::kDeclareCursor) {
    if (cursors_.count(command.name) != 0) {
      MessageWriter(out_).Error(
          MakeError("42P03", "cursor \"" + command.name + "\" already exists"));
      return false;
    }
    if (cursors_.size() >= kMaxCursors) {
      MessageWriter(out_).Error(MakeError(sqlstate::kProgramLimitExceeded,
                                          "too many open cursors on this connection (limit " +
                                              std::to_string(kMaxCursors) + "); CLOSE one"));
      return false;
    }
    SqlCursor cursor{StartCursor(sql, /*catalog=*/false), column_types, command.hold};
    // As PostgreSQL plans at DECLARE, the statement's errors come now.
    if (auto fields = cursor.rows->Fields(); !fields.ok()) {
      CursorError(fields.status(), "DECLARE");
      return false;
    }
    cursors_.emplace(command.name, std::move(cursor));
    MessageWriter(out_).CommandComplete("DECLARE CURSOR");
    return true;
  }
  auto it = cursors_.find(command.name);
  if (it == cursors_.end()) return no_such_cursor();
  SqlCursor& cursor = it->second;
  if (describe && !command.move) {
    auto fields = cursor.rows->Fields();
    if (!fields.ok()) {
      CursorError(fields.status(), "FETCH");
      return false;
    }
    WriteRowDescription(**fields, formats, &cursor.column_types);
  }
  RowCursor::Fetched fetched;
  if (!SendCursorRows(*cursor.rows, command.count, command.move, cursor.column_types, formats,
                      &fetched)) {
    return false;
  }
  MessageWriter(out_).CommandComplete((command.move ? "MOVE " : "FETCH ") +
                                      std::to_string(fetched.rows));
  return true;
}

bool Session::ExecuteIncrementally(Portal& portal, uint64_t max_rows, bool describe) {
  cancel_requested_ = false;
  const std::vector<int16_t>& formats = portal.result_formats;
  if (portal.rows == nullptr) {
    if (portal.executed) {
      MessageWriter(out_).CommandComplete(CommandTag(portal.keyword, 0));
      return true;
    }
    portal.executed = true;
    portal.rows = StartCursor(portal.sql, portal.catalog);
    auto fields = portal.rows->Fields();
    std::optional<PgError> error;
    if (!fields.ok()) {
      CursorError(fields.status(), portal.keyword);
    } else if (formats.size() > 1 && formats.size() != (*fields)->size()) {
      error = MakeError(sqlstate::kProtocolViolation,
                        "bind message has " + std::to_string(formats.size()) +
                            " result formats but query has " + std::to_string((*fields)->size()) +
                            " columns");
    } else if (portal.described.has_value() && !FieldsMatch(*portal.described, **fields)) {
      error = MakeError(sqlstate::kInternalError,
                        "the result columns changed between Describe and Execute");
    }
    if (error.has_value()) MessageWriter(out_).Error(*error);
    if (!fields.ok() || error.has_value()) {
      portal.rows.reset();
      return false;
    }
    if (describe) WriteRowDescription(**fields, formats, &portal.column_types);
  } else if (describe) {
    auto fields = portal.rows->Fields();
    if (fields.ok()) WriteRowDescription(**fields, formats, &portal.column_types);
  }
  RowCursor::Fetched fetched;
  if (!SendCursorRows(*portal.rows, max_rows, /*skip=*/false, portal.column_types, formats,
                      &fetched)) {
    portal.rows.reset();
    return false;
  }
  if (fetched.finished) {
    MessageWriter(out_).CommandComplete(CommandTag(portal.keyword, fetched.rows));
    portal.rows.reset();
  } else {
    MessageWriter(out_).Simple('s');  // PortalSuspended
  }
  return true;
}

}  // namespace airlock::tunnels::pgwire
