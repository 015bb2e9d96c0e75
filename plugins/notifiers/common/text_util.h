// Small text helpers for notification wording: bounded single-line text,
// durations and times people read.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace airlock::notifiers {

// `text` on one line: control characters (CR and LF included) become spaces,
// runs of spaces collapse, ends are trimmed, and it is cut at a UTF-8
// character boundary to at most `max_bytes` (an ellipsis marks the cut).
std::string CleanText(std::string_view text, size_t max_bytes);

// `text` cut to at most `max_bytes` without splitting a UTF-8 character.
std::string_view TruncateUtf8(std::string_view text, size_t max_bytes);

// 3600 -> "1 hour", 5400 -> "1 hour 30 minutes", 600 -> "10 minutes", 45 -> "45 seconds".
std::string FormatDuration(int64_t seconds);

// "2026-12-06T07:30:00Z", "...T07:30:00.123Z", "...T08:30:00+01:00" -> unix seconds.
std::optional<int64_t> ParseTimestamp(std::string_view text);

// 1796542200 -> "2026-12-06 07:30 UTC".
std::string FormatUtcMinute(int64_t unix_seconds);

// 1796542200 -> "Sun, 06 Dec 2026 07:30:00 +0000" (RFC 5322 date-time).
std::string FormatRfc5322Date(int64_t unix_seconds);

// Lowercase hexadecimal.
std::string Hex(std::string_view bytes);

}  // namespace airlock::notifiers
