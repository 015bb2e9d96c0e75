// Date and time input as PostgreSQL accepts it (ISO 8601 with a space or a
// 'T', an optional fraction and zone), rewritten in the one form the enclave
// stores: "YYYY-MM-DD", "YYYY-MM-DD HH:MM:SS[.ffffff]" (with "+00", in UTC,
// for timestamptz) and "HH:MM:SS[.ffffff]". Stored values compare as text,
// so a value in any other spelling would silently match nothing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace airlock::tunnels::pgwire {

// nullopt when `text` is not a valid value of the type.
std::optional<std::string> CanonicalDate(std::string_view text);
// A zone in `text` is ignored without `with_tz` (as PostgreSQL does for
// timestamp) and converts the value to UTC with it; no zone reads as UTC.
std::optional<std::string> CanonicalTimestamp(std::string_view text, bool with_tz);
std::optional<std::string> CanonicalTime(std::string_view text);

// The same input as numbers: days and microseconds since 1970-01-01 (UTC
// for timestamptz), microseconds since midnight.
std::optional<int32_t> DateDays(std::string_view text);
std::optional<int64_t> TimestampMicros(std::string_view text, bool with_tz);
std::optional<int64_t> TimeMicros(std::string_view text);

// Appends a stored date, time or timestamp as PostgreSQL prints it: the
// fraction of a second without trailing zeros.
void AppendPgDateTime(std::string& out, std::string_view text);

}  // namespace airlock::tunnels::pgwire
