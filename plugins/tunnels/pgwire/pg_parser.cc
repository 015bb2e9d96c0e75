#include "pg_parser.h"

#include <pg_query.h>

#include <string>

#include "errors.h"

namespace airlock::tunnels::pgwire {
namespace {

// Owns what pg_query_parse returns.
class ParseResult {
 public:
  explicit ParseResult(const char* sql) : result_(pg_query_parse(sql)) {}
  ~ParseResult() { pg_query_free_parse_result(result_); }
  ParseResult(const ParseResult&) = delete;
  ParseResult& operator=(const ParseResult&) = delete;
  const PgQueryParseResult* operator->() const { return &result_; }

 private:
  PgQueryParseResult result_;
};

}  // namespace

std::variant<Json, PgError> ParsePostgres(std::string_view sql) {
  if (sql.find('\0') != std::string_view::npos) {
    return MakeError(sqlstate::kSyntaxError, "the statement contains a NUL byte");
  }
  const std::string text(sql);  // the parser wants a terminated string
  const ParseResult result(text.c_str());
  if (result->error != nullptr) {
    PgError error =
        MakeError(sqlstate::kSyntaxError,
                  result->error->message != nullptr ? result->error->message : "syntax error");
    if (result->error->cursorpos > 0) {
      error.detail = "at character " + std::to_string(result->error->cursorpos);
    }
    return error;
  }
  if (result->parse_tree == nullptr) return MakeError(sqlstate::kInternalError, "no parse tree");
  Json tree = Json::parse(result->parse_tree, nullptr, /*allow_exceptions=*/false);
  if (tree.is_discarded()) {
    return MakeError(sqlstate::kInternalError, "the parser returned an unreadable tree");
  }
  return tree;
}

}  // namespace airlock::tunnels::pgwire
