// An IANA time zone read from a compiled TZif file (RFC 8536), so rule time
// windows can be evaluated in a named zone at any instant without touching
// the process-wide TZ (localtime_r would need setenv/tzset, which is neither
// thread-safe nor per-call). libstdc++ 12 has no std::chrono::zoned_time.
//
// Instants after the file's last transition follow its POSIX TZ footer
// ("CET-1CEST,M3.5.0,M10.5.0/3"): `Mm.w.d`, `Jn` and `n` rules are supported.
// Thread-safety: immutable after Load; OffsetAt may be called concurrently.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "airlock/cpp/status.hpp"

namespace airlock::policy::rules {

class TimeZone {
 public:
  // Reads <zoneinfo_dir>/<name>. `name` must be an IANA name ("Europe/Berlin",
  // "UTC"): letters, digits, '_', '-', '+' and '/', no "..", not absolute.
  // InvalidArgument names the zone when it is unknown or its file is corrupt.
  static Result<std::shared_ptr<const TimeZone>> Load(std::string_view name,
                                                      const std::string& zoneinfo_dir);

  // Parses TZif bytes (exposed for tests of the reader).
  static Result<std::shared_ptr<const TimeZone>> FromTzif(std::string name, std::string_view data);

  // The zone's offset from UTC, in seconds, at `unix_seconds`.
  int32_t OffsetAt(int64_t unix_seconds) const;

  const std::string& name() const { return name_; }

  // $TZDIR when set, else /usr/share/zoneinfo.
  static std::string DefaultDirectory();

  // A POSIX TZ rule string (the TZif footer). Public for the parser's helpers.
  struct PosixRule {
    int32_t std_offset = 0;  // seconds east of UTC
    bool has_dst = false;
    int32_t dst_offset = 0;
    struct Date {
      char kind = 'M';  // 'M' (month.week.day), 'J' (1..365, no Feb 29), 'n' (0..365)
      int month = 0, week = 0, weekday = 0, day = 0;
      int32_t time = 7200;  // seconds after local midnight the change happens
    } start, end;
  };

 private:
  TimeZone() = default;
  int32_t FooterOffset(int64_t unix_seconds) const;

  std::string name_;
  std::vector<int64_t> transitions_;      // ascending UTC instants
  std::vector<uint8_t> transition_type_;  // index into offsets_ per transition
  std::vector<int32_t> offsets_;          // utoff of each local time type
  std::optional<PosixRule> footer_;
};

}  // namespace airlock::policy::rules
