// The PostgreSQL wire tunnel's decoding of what a client sends, in the order
// a session reads it (plugins/tunnels/pgwire/session.cc): startup packets
// (SSLRequest, GSSENCRequest, CancelRequest, the StartupMessage and its
// parameters), the SCRAM-SHA-256 exchange (SASLInitialResponse and the
// client-first and client-final messages), then frontend messages: Query,
// Parse, Bind, Describe, Execute, Close, Sync. Statement text goes through
// the lexer (splitting, keywords, $n parameters) and bound values through
// the literal conversion and substitution, with prepared statements and
// portals kept as a session keeps them.
//
// The input is the client's byte stream. In a client-final message the text
// "@NONCE@" is replaced by the exchange's nonce, so the checks behind the
// nonce comparison are reached. A proof cannot be right, so a real session
// would end there; here the messages that follow are decoded anyway, so the
// decoders behind authentication are fuzzed too.
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "plugins/tunnels/pgwire/config.h"
#include "plugins/tunnels/pgwire/messages.h"
#include "plugins/tunnels/pgwire/scram.h"
#include "plugins/tunnels/pgwire/sql_text.h"
#include "plugins/tunnels/pgwire/types.h"
#include "plugins/tunnels/pgwire/wire.h"

namespace {

namespace pg = airlock::tunnels::pgwire;

constexpr int kMaxParameters = 65535;  // session.cc
constexpr int kMaxMessages = 64;

class Stream {
 public:
  explicit Stream(std::string_view bytes) : rest_(bytes) {}
  std::optional<std::string_view> Take(size_t n) {
    if (rest_.size() < n) return std::nullopt;
    std::string_view out = rest_.substr(0, n);
    rest_.remove_prefix(n);
    return out;
  }

 private:
  std::string_view rest_;
};

// Session::Startup: false when the connection would close.
bool Startup(Stream& in) {
  for (int round = 0; round < 3; ++round) {
    auto header = in.Take(4);
    if (!header) return false;
    const int32_t length = pg::LoadInt32(header->data());
    if (length < 8 || static_cast<size_t>(length) > pg::kMaxStartupPacket) return false;
    auto body = in.Take(static_cast<size_t>(length) - 4);
    if (!body) return false;
    const int32_t code = pg::LoadInt32(body->data());
    if (code == pg::kSslRequestCode || code == pg::kGssEncRequestCode) {
      if (length != 8) return false;
      continue;  // answered 'N': no TLS configured here
    }
    if (code == pg::kCancelRequestCode) return false;
    if ((code >> 16) != 3) return false;
    auto parameters = pg::DecodeStartupParameters(body->substr(4));
    return parameters && !parameters->replication && !parameters->user.empty();
  }
  return false;
}

// Session::ReadMessage.
bool ReadMessage(Stream& in, char* type, std::string_view* body) {
  static const pg::PgwireConfig config;
  auto header = in.Take(5);
  if (!header) return false;
  *type = (*header)[0];
  const int32_t length = pg::LoadInt32(header->data() + 1);
  if (length < 4) return false;
  const size_t body_length = static_cast<size_t>(length) - 4;
  if (body_length > config.max_message_bytes) return false;
  auto taken = in.Take(body_length);
  if (!taken) return false;
  *body = *taken;
  return true;
}

void Scram(Stream& in) {
  static const pg::ScramVerifier verifier = pg::MakeVerifier("correct horse", {}, 4096);
  char type = 0;
  std::string_view body;
  if (!ReadMessage(in, &type, &body) || type != 'p') return;
  auto initial = pg::DecodeSaslInitialResponse(body);
  if (!initial || initial->mechanism != "SCRAM-SHA-256") return;
  pg::ScramExchange exchange(verifier);
  auto server_first = exchange.OnClientFirst(initial->data);
  if (!server_first.ok()) return;
  if (!ReadMessage(in, &type, &body) || type != 'p') return;
  // server-first-message: "r=<nonce>,s=<salt>,i=<iterations>"
  const std::string nonce = server_first->substr(2, server_first->find(',') - 2);
  std::string final_message(body);
  for (size_t at = final_message.find("@NONCE@"); at != std::string::npos;
       at = final_message.find("@NONCE@", at + nonce.size())) {
    final_message.replace(at, 7, nonce);
  }
  (void)exchange.OnClientFinal(final_message);
}

struct Statement {
  std::string sql;
  std::vector<uint32_t> types;
};

struct Session {
  std::map<std::string, Statement> statements;
  std::map<std::string, std::string> portals;
};

void Lex(std::string_view sql) {
  (void)pg::IsBlank(sql);
  const std::string keyword = pg::FirstKeyword(sql);
  (void)pg::IsWriteKeyword(keyword);
  (void)pg::SecondWord(sql);
}

void Query(std::string_view body) {
  auto query = pg::DecodeQuery(body);
  if (!query) return;
  for (std::string_view statement : pg::SplitStatements(*query)) Lex(statement);
}

void Parse(Session& session, std::string_view body) {
  auto message = pg::DecodeParse(body);
  if (!message) return;
  const auto split = pg::SplitStatements(message->query);
  if (split.size() > 1) return;
  Statement statement;
  statement.sql = split.empty() ? std::string() : std::string(split[0]);
  Lex(statement.sql);
  const int used = pg::MaxParameterIndex(statement.sql);
  if (used > kMaxParameters) return;
  statement.types = std::move(message->parameter_types);
  if (static_cast<size_t>(used) > statement.types.size()) {
    statement.types.resize(static_cast<size_t>(used), 0);
  }
  if (session.statements.size() < 256 || session.statements.count(std::string(message->name))) {
    session.statements[std::string(message->name)] = std::move(statement);
  }
}

void Bind(Session& session, std::string_view body) {
  auto message = pg::DecodeBind(body);
  if (!message) return;
  auto it = session.statements.find(std::string(message->statement));
  if (it == session.statements.end()) return;
  const auto& types = it->second.types;
  const auto& formats = message->parameter_formats;
  if (message->values.size() != types.size()) return;
  if (formats.size() > 1 && formats.size() != message->values.size()) return;
  std::vector<std::string> literals(types.size());
  for (size_t i = 0; i < types.size(); ++i) {
    const int16_t format = formats.empty() ? 0 : formats.size() == 1 ? formats[0] : formats[i];
    if (pg::ParameterLiteral(types[i], format, message->values[i], &literals[i])) return;
  }
  auto sql = pg::SubstituteParameters(it->second.sql, literals);
  if (!sql.ok()) return;
  Lex(*sql);
  if (session.portals.size() < 256) session.portals[std::string(message->portal)] = *sql;
}

void Messages(Stream& in) {
  Session session;
  std::string out;
  pg::MessageWriter writer(out);
  for (int i = 0; i < kMaxMessages; ++i) {
    char type = 0;
    std::string_view body;
    if (!ReadMessage(in, &type, &body)) return;
    switch (type) {
      case 'Q':
        Query(body);
        break;
      case 'P':
        Parse(session, body);
        break;
      case 'B':
        Bind(session, body);
        break;
      case 'D':
        if (auto target = pg::DecodeTarget(body)) {
          // Errors name the object back to the client.
          writer.Error({"ERROR", "26000", "\"" + std::string(target->name) + "\"", "", ""});
        }
        break;
      case 'C':
        if (auto target = pg::DecodeTarget(body)) {
          if (target->kind == 'S') session.statements.erase(std::string(target->name));
          if (target->kind == 'P') session.portals.erase(std::string(target->name));
        }
        break;
      case 'E':
        if (auto execute = pg::DecodeExecute(body)) {
          auto it = session.portals.find(std::string(execute->portal));
          if (it != session.portals.end()) writer.CommandComplete(pg::FirstKeyword(it->second));
        }
        break;
      case 'S':
        session.portals.clear();
        break;
      case 'X':
        return;
      default:
        break;
    }
    out.clear();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Stream in(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!Startup(in)) return 0;
  Scram(in);
  Messages(in);
  return 0;
}
