// RFC 3339 timestamps as the API accepts them ("2026-12-06T09:30:00Z",
// "2026-12-06T10:30:00.250+01:00"): a date, 'T', a time with optional
// fraction, and 'Z' or a numeric offset. Nothing looser (no missing zone,
// no space for 'T', no leap second), so an ask means one instant.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace airlock {

// Microseconds since the Unix epoch, or nullopt when `text` is not such a
// timestamp or names a day that does not exist.
std::optional<int64_t> ParseRfc3339Micros(std::string_view text);

}  // namespace airlock
