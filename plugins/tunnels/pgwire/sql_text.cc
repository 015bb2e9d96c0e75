#include "sql_text.h"

#include <cctype>
#include <charconv>

namespace airlock::tunnels::pgwire {
namespace {

bool IsIdentChar(char c) {
  const auto u = static_cast<unsigned char>(c);
  return std::isalnum(u) != 0 || c == '_' || c == '$' || u >= 0x80;
}

bool IsTagStart(char c) {
  const auto u = static_cast<unsigned char>(c);
  return std::isalpha(u) != 0 || c == '_' || u >= 0x80;
}

// A place in the text the callers care about.
struct Mark {
  enum class Kind { kSemicolon, kParameter } kind;
  size_t begin;
  size_t end;     // one past the mark
  int index = 0;  // kParameter: n of $n
};

// Where the quoted section or comment starting at `i` ends (one past it).
size_t SkipQuoted(std::string_view s, size_t i, char quote, bool backslash_escapes) {
  ++i;
  while (i < s.size()) {
    if (backslash_escapes && s[i] == '\\') {
      i += 2;
      continue;
    }
    if (s[i] == quote) {
      if (i + 1 < s.size() && s[i + 1] == quote) {
        i += 2;
        continue;
      }
      return i + 1;
    }
    ++i;
  }
  return s.size();
}

size_t SkipBlockComment(std::string_view s, size_t i) {
  int depth = 0;
  while (i < s.size()) {
    if (s.compare(i, 2, "/*") == 0) {
      ++depth;
      i += 2;
    } else if (s.compare(i, 2, "*/") == 0) {
      i += 2;
      if (--depth == 0) return i;
    } else {
      ++i;
    }
  }
  return s.size();
}

// Calls on_mark for each top-level ';' and $n; on_code for every other
// character outside quotes and comments (used to find keywords).
template <typename OnMark>
void Scan(std::string_view s, OnMark on_mark) {
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    const bool after_ident = i > 0 && IsIdentChar(s[i - 1]);
    if (c == '\'') {
      const bool e_string =
          i > 0 && (s[i - 1] == 'E' || s[i - 1] == 'e') && !(i > 1 && IsIdentChar(s[i - 2]));
      i = SkipQuoted(s, i, '\'', e_string);
    } else if (c == '"' || c == '`') {
      i = SkipQuoted(s, i, c, false);
    } else if (c == '-' && i + 1 < s.size() && s[i + 1] == '-') {
      const size_t eol = s.find('\n', i);
      i = eol == std::string_view::npos ? s.size() : eol + 1;
    } else if (c == '/' && i + 1 < s.size() && s[i + 1] == '*') {
      i = SkipBlockComment(s, i);
    } else if (c == ';') {
      on_mark(Mark{Mark::Kind::kSemicolon, i, i + 1});
      ++i;
    } else if (c == '$' && !after_ident && i + 1 < s.size() &&
               std::isdigit(static_cast<unsigned char>(s[i + 1])) != 0) {
      size_t j = i + 1;
      while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j])) != 0) ++j;
      int index = 0;
      const auto [ptr, ec] = std::from_chars(s.data() + i + 1, s.data() + j, index);
      (void)ptr;
      if (ec != std::errc()) index = 1 << 30;  // absurdly large: reported as missing
      on_mark(Mark{Mark::Kind::kParameter, i, j, index});
      i = j;
    } else if (c == '$' && !after_ident && i + 1 < s.size() &&
               (s[i + 1] == '$' || IsTagStart(s[i + 1]))) {
      // A dollar-quoted string $tag$...$tag$, if the tag closes.
      size_t j = i + 1;
      while (j < s.size() && s[j] != '$' && IsIdentChar(s[j])) ++j;
      if (j < s.size() && s[j] == '$') {
        const std::string_view tag = s.substr(i, j - i + 1);
        const size_t close = s.find(tag, j + 1);
        i = close == std::string_view::npos ? s.size() : close + tag.size();
      } else {
        i = j;
      }
    } else {
      ++i;
    }
  }
}

// The first `n` words outside comments, upper-cased.
std::vector<std::string> LeadingWords(std::string_view s, size_t n) {
  std::vector<std::string> words;
  size_t i = 0;
  while (i < s.size() && words.size() < n) {
    const char c = s[i];
    if (std::isspace(static_cast<unsigned char>(c)) != 0 || c == '(') {
      ++i;
    } else if (c == '-' && i + 1 < s.size() && s[i + 1] == '-') {
      const size_t eol = s.find('\n', i);
      i = eol == std::string_view::npos ? s.size() : eol + 1;
    } else if (c == '/' && i + 1 < s.size() && s[i + 1] == '*') {
      i = SkipBlockComment(s, i);
    } else if (IsIdentChar(c) || c == '"') {
      std::string word;
      if (c == '"') {
        const size_t end = SkipQuoted(s, i, '"', false);
        word = std::string(s.substr(i + 1, end > i + 1 ? end - i - 2 : 0));
        i = end;
      } else {
        while (i < s.size() && (IsIdentChar(s[i]) || s[i] == '.')) {
          word.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(s[i]))));
          ++i;
        }
      }
      words.push_back(std::move(word));
    } else {
      break;  // punctuation: no more words we understand
    }
  }
  return words;
}

}  // namespace

std::vector<std::string_view> SplitStatements(std::string_view sql) {
  std::vector<std::string_view> statements;
  size_t start = 0;
  const auto take = [&](size_t end) {
    const std::string_view piece = sql.substr(start, end - start);
    if (!IsBlank(piece)) statements.push_back(piece);
  };
  Scan(sql, [&](const Mark& mark) {
    if (mark.kind != Mark::Kind::kSemicolon) return;
    take(mark.begin);
    start = mark.end;
  });
  take(sql.size());
  return statements;
}

bool IsBlank(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    if (std::isspace(static_cast<unsigned char>(c)) != 0) {
      ++i;
    } else if (c == '-' && i + 1 < s.size() && s[i + 1] == '-') {
      const size_t eol = s.find('\n', i);
      i = eol == std::string_view::npos ? s.size() : eol + 1;
    } else if (c == '/' && i + 1 < s.size() && s[i + 1] == '*') {
      i = SkipBlockComment(s, i);
    } else {
      return false;
    }
  }
  return true;
}

std::string FirstKeyword(std::string_view sql) {
  auto words = LeadingWords(sql, 1);
  return words.empty() ? std::string() : words[0];
}

std::string SecondWord(std::string_view sql) {
  auto words = LeadingWords(sql, 2);
  return words.size() < 2 ? std::string() : words[1];
}

bool IsWriteKeyword(std::string_view k) {
  static constexpr std::string_view kWrites[] = {
      "INSERT", "UPDATE",   "DELETE",  "MERGE",  "UPSERT",  "REPLACE", "CREATE",  "DROP",
      "ALTER",  "TRUNCATE", "GRANT",   "REVOKE", "COPY",    "VACUUM",  "REINDEX", "ANALYZE",
      "ATTACH", "DETACH",   "COMMENT", "LOCK",   "CLUSTER", "REFRESH", "CALL",    "DO"};
  for (std::string_view w : kWrites) {
    if (k == w) return true;
  }
  return false;
}

int MaxParameterIndex(std::string_view sql) {
  int max = 0;
  Scan(sql, [&](const Mark& mark) {
    if (mark.kind == Mark::Kind::kParameter && mark.index > max) max = mark.index;
  });
  return max;
}

Result<std::string> SubstituteParameters(
    std::string_view sql, const std::function<const std::string*(int)>& literal_for) {
  std::string out;
  out.reserve(sql.size());
  size_t copied = 0;
  int missing = 0;
  Scan(sql, [&](const Mark& mark) {
    if (mark.kind != Mark::Kind::kParameter) return;
    const std::string* literal = mark.index < 1 ? nullptr : literal_for(mark.index);
    if (literal == nullptr) {
      if (missing == 0) missing = mark.index < 1 ? -1 : mark.index;
      return;
    }
    out.append(sql.substr(copied, mark.begin - copied));
    out.append(*literal);
    copied = mark.end;
  });
  if (missing != 0) {
    return Status::InvalidArgument(missing < 0
                                       ? std::string("there is no parameter $0")
                                       : "there is no parameter $" + std::to_string(missing));
  }
  out.append(sql.substr(copied));
  return out;
}

Result<std::string> SubstituteParameters(std::string_view sql,
                                         const std::vector<std::string>& literals) {
  return SubstituteParameters(sql, [&](int n) -> const std::string* {
    return static_cast<size_t>(n) <= literals.size() ? &literals[static_cast<size_t>(n) - 1]
                                                     : nullptr;
  });
}

std::string QuoteLiteral(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  out.push_back('\'');
  for (char c : text) {
    if (c == '\'') out.push_back('\'');
    out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

}  // namespace airlock::tunnels::pgwire
