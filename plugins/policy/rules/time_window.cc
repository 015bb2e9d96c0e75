#include "time_window.h"

#include <array>
#include <string_view>
#include "airlock/cpp/config_read.hpp"

namespace airlock::policy::rules {
namespace {

constexpr std::array<const char*, 7> kDayNames = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

int64_t FloorDiv(int64_t a, int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

struct LocalMoment {
  int weekday;  // 0 = Sunday
  int32_t minute;
};

LocalMoment LocalAt(const TimeZone& zone, int64_t unix_seconds) {
  const int64_t local = unix_seconds + zone.OffsetAt(unix_seconds);
  const int64_t day = FloorDiv(local, 86400);
  // 1970-01-01 was a Thursday (4).
  const int weekday = static_cast<int>(((day % 7) + 7 + 4) % 7);
  const int32_t minute = static_cast<int32_t>((local - day * 86400) / 60);
  return {weekday, minute};
}

// "HH:MM", 00:00..24:00.
bool ParseClock(const std::string& text, int32_t* minutes) {
  if (text.size() != 5 || text[2] != ':') return false;
  for (size_t i : {0u, 1u, 3u, 4u}) {
    if (text[i] < '0' || text[i] > '9') return false;
  }
  const int h = (text[0] - '0') * 10 + (text[1] - '0');
  const int m = (text[3] - '0') * 10 + (text[4] - '0');
  if (m > 59 || h > 24 || (h == 24 && m != 0)) return false;
  *minutes = h * 60 + m;
  return true;
}

// "HH:MM" for 0..1440 minutes.
std::string Clock(int32_t minutes) {
  const int h = minutes / 60, m = minutes % 60;
  return {static_cast<char>('0' + h / 10), static_cast<char>('0' + h % 10), ':',
          static_cast<char>('0' + m / 10), static_cast<char>('0' + m % 10)};
}

}  // namespace

Result<std::shared_ptr<const TimeZone>> ZoneCache::Get(const std::string& name) {
  for (const auto& zone : zones_) {
    if (zone->name() == name) return zone;
  }
  AIRLOCK_ASSIGN_OR_RETURN(auto zone, TimeZone::Load(name, directory_));
  zones_.push_back(zone);
  return zone;
}

bool TimeWindow::Contains(int64_t unix_seconds) const {
  const LocalMoment at = LocalAt(*zone, unix_seconds);
  auto day_listed = [this](int weekday) { return (days & (1u << weekday)) != 0; };
  if (from_minute < to_minute) {
    return day_listed(at.weekday) && at.minute >= from_minute && at.minute < to_minute;
  }
  // Overnight: the evening part belongs to today, the early part to the day before.
  if (at.minute >= from_minute) return day_listed(at.weekday);
  if (at.minute < to_minute) return day_listed((at.weekday + 6) % 7);
  return false;
}

std::string TimeWindow::Describe() const {
  // Monday-first runs of consecutive days: "mon-fri", "sat,sun", "mon,wed".
  std::string list;
  int i = 0;
  while (i < 7) {
    const int d = (i + 1) % 7;
    if ((days & (1u << d)) == 0) {
      ++i;
      continue;
    }
    int j = i;
    while (j + 1 < 7 && (days & (1u << ((j + 2) % 7))) != 0) ++j;
    if (!list.empty()) list += ",";
    list += kDayNames[d];
    if (j > i) list += std::string(j - i > 1 ? "-" : ",") + kDayNames[(j + 1) % 7];
    i = j + 1;
  }
  return list + " " + Clock(from_minute) + "-" + Clock(to_minute) + " " + zone->name();
}

std::string TimeWindow::LocalTimeAt(int64_t unix_seconds) const {
  const LocalMoment at = LocalAt(*zone, unix_seconds);
  return std::string(kDayNames[at.weekday]) + " " + Clock(at.minute);
}

Status ParseTimeWindow(const Json& j, const std::string& where, ZoneCache* zones, TimeWindow* out) {
  if (!j.is_object()) return Status::InvalidArgument(where + " must be an object");
  AIRLOCK_RETURN_IF_ERROR(
      sdk::config_read::KnownKeys(j, {"timezone", "days", "from", "to"}, where));
  auto zone = j.find("timezone");
  if (zone == j.end() || !zone->is_string()) {
    return Status::InvalidArgument(where +
                                   ".timezone must be an IANA zone name (\"Europe/Berlin\")");
  }
  auto loaded = zones->Get(zone->get<std::string>());
  if (!loaded.ok()) return loaded.status().WithContext(where + ".timezone");
  out->zone = std::move(loaded).value();

  out->days = 0x7f;
  if (auto days = j.find("days"); days != j.end()) {
    if (!days->is_array() || days->empty()) {
      return Status::InvalidArgument(where + ".days must be a non-empty array of day names");
    }
    out->days = 0;
    for (size_t i = 0; i < days->size(); ++i) {
      const Json& d = (*days)[i];
      int found = -1;
      for (int k = 0; k < 7 && d.is_string(); ++k) {
        if (d.get_ref<const std::string&>() == kDayNames[k]) found = k;
      }
      if (found < 0) {
        return Status::InvalidArgument(where + ".days[" + std::to_string(i) +
                                       "] must be one of mon tue wed thu fri sat sun");
      }
      out->days |= static_cast<uint8_t>(1u << found);
    }
  }
  for (const char* key : {"from", "to"}) {
    auto it = j.find(key);
    int32_t minutes = 0;
    if (it == j.end() || !it->is_string() || !ParseClock(it->get<std::string>(), &minutes)) {
      return Status::InvalidArgument(where + "." + key + " must be a time \"HH:MM\" (00:00-24:00)");
    }
    (std::string_view(key) == "from" ? out->from_minute : out->to_minute) = minutes;
  }
  if (out->from_minute == 1440) {
    return Status::InvalidArgument(where + ".from must be before 24:00");
  }
  if (out->from_minute == out->to_minute) {
    return Status::InvalidArgument(where + ".from and .to must differ (the window would be empty)");
  }
  if (out->to_minute == 0) out->to_minute = 1440;  // "to": "00:00" means midnight at the end
  return Status::Ok();
}

}  // namespace airlock::policy::rules
