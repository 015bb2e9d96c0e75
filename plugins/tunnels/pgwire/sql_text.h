// Lexical work on SQL text the tunnel must do itself: splitting a simple
// Query into statements, finding $n parameters outside quotes and comments,
// substituting quoted literals for them, and recognising a statement's kind.
// The lexer knows '...' (with '' and E'\'' escapes), "...", `...`, -- and
// nested /* */ comments, and $tag$...$tag$ strings; it never executes SQL.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "airlock/cpp/status.hpp"

namespace airlock::tunnels::pgwire {

// The statements of `sql` split at top-level semicolons, without the
// semicolons; statements holding only whitespace and comments are dropped.
std::vector<std::string_view> SplitStatements(std::string_view sql);

// True when `sql` holds only whitespace and comments.
bool IsBlank(std::string_view sql);

// The first keyword, upper-cased ("" if none); leading '(' are skipped.
std::string FirstKeyword(std::string_view sql);

// The second keyword, upper-cased ("" if none): SHOW <name>, SET <name>.
std::string SecondWord(std::string_view sql);

// True for keywords that start a statement that writes or changes schema.
bool IsWriteKeyword(std::string_view keyword);

// The highest $n in `sql` (0 when there is none).
int MaxParameterIndex(std::string_view sql);

// Replaces every $n (1-based) by *literal_for(n); InvalidArgument naming $n
// when that is null.
Result<std::string> SubstituteParameters(std::string_view sql,
                                         const std::function<const std::string*(int)>& literal_for);
// Replaces every $n (1-based) by literals[n-1]. InvalidArgument naming $n
// when n exceeds literals.size().
Result<std::string> SubstituteParameters(std::string_view sql,
                                         const std::vector<std::string>& literals);

// 'text' with embedded quotes doubled. The caller ensures `text` holds no NUL.
std::string QuoteLiteral(std::string_view text);

}  // namespace airlock::tunnels::pgwire
