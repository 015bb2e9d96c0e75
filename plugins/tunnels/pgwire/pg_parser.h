// PostgreSQL's own grammar (libpg_query, PostgreSQL 15) for what clients
// send: the parse tree as JSON, or the error PostgreSQL itself would give.
#pragma once

#include <string>
#include <string_view>
#include <variant>

#include "airlock/cpp/values.hpp"
#include "wire.h"

namespace airlock::tunnels::pgwire {

// The parse tree of `sql` ({"version": ..., "stmts": [...]}), or a 42601
// error worded as PostgreSQL words it ("syntax error at or near ...") with
// the character position in its detail. `sql` holding a NUL is refused.
std::variant<Json, PgError> ParsePostgres(std::string_view sql);

}  // namespace airlock::tunnels::pgwire
