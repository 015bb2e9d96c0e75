// A rule's time-of-day window: weekdays and a local time range in an IANA
// zone, evaluated at the policy input's `now`.
//
//   "when": {"timezone": "Europe/Berlin", "days": ["mon", "tue", "wed", "thu", "fri"],
//            "from": "08:00", "to": "18:00"}
//
// `from` is inclusive, `to` exclusive ("24:00" is the end of the day). When
// `to` is earlier than `from` the window runs overnight, and `days` names the
// day on which it opens ("fri" 22:00-06:00 covers Friday night into Saturday).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"
#include "time_zone.h"

namespace airlock::policy::rules {

// Resolves zone names while a document is parsed, so each zone file is read
// once per load; "Europe/Berlin" named by 1,000 rules is one TimeZone.
class ZoneCache {
 public:
  explicit ZoneCache(std::string directory) : directory_(std::move(directory)) {}
  Result<std::shared_ptr<const TimeZone>> Get(const std::string& name);

 private:
  std::string directory_;
  std::vector<std::shared_ptr<const TimeZone>> zones_;
};

struct TimeWindow {
  std::shared_ptr<const TimeZone> zone;
  uint8_t days = 0;         // bit (1 << weekday), 0 = Sunday ... 6 = Saturday
  int32_t from_minute = 0;  // minutes after local midnight, 0..1439
  int32_t to_minute = 0;    // 1..1440, != from_minute

  // Whether `unix_seconds` lies inside the window.
  bool Contains(int64_t unix_seconds) const;
  // "mon-fri 08:00-18:00 Europe/Berlin".
  std::string Describe() const;
  // The local weekday and time at `unix_seconds`: "sat 10:15".
  std::string LocalTimeAt(int64_t unix_seconds) const;
};

// Parses a "when" object at `where` ("rules[3].when"). Unknown keys, unknown
// days, malformed times, from == to and unknown zones are InvalidArgument
// naming the path.
Status ParseTimeWindow(const Json& j, const std::string& where, ZoneCache* zones, TimeWindow* out);

}  // namespace airlock::policy::rules
