// "office-hours": a policy backend that allows a request only when the
// principal is in one of the configured groups and the request arrives in
// office hours, and caps the access window at the configured maximum and at
// closing time. Everything else is denied with a reason that says why.
// Written only against the installed SDK headers; it shows the policy
// contract: a decision document for every valid input, a configuration read
// through airlock/cpp/config_read.hpp, and reload that keeps the old policy
// when the new one is wrong.
//
// Configuration:
//   {"groups": ["analysts", ...],   required, non-empty: who may read in office hours
//    "opens_hour": 9,                0..23, local time
//    "closes_hour": 17,              1..24, after opens_hour
//    "utc_offset_minutes": 0,        -840..840: local time is UTC plus this
//    "weekdays_only": true,          Saturday and Sunday are closed
//    "max_window_seconds": 3600}     60..86400: the longest window granted
#include <algorithm>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <airlock/cpp/config_read.hpp>
#include <airlock/cpp/plugin.hpp>

namespace office_hours {

using airlock::Json;
using airlock::Result;
using airlock::Status;
namespace config_read = airlock::sdk::config_read;
namespace json_read = airlock::json_read;

constexpr std::string_view kWhere = "office-hours configuration";
constexpr const char* kRule = "office-hours";
constexpr int64_t kDay = 86400;

struct Settings {
  std::vector<std::string> groups;
  int64_t opens_hour = 9;
  int64_t closes_hour = 17;
  int64_t utc_offset_minutes = 0;
  bool weekdays_only = true;
  int64_t max_window_seconds = 3600;
};

Result<Settings> ReadSettings(const Json& config) {
  if (!config.is_object()) {
    return Status::InvalidArgument(std::string(kWhere) + " must be a JSON object");
  }
  AIRLOCK_RETURN_IF_ERROR(
      config_read::KnownKeys(config,
                             {"groups", "opens_hour", "closes_hour", "utc_offset_minutes",
                              "weekdays_only", "max_window_seconds"},
                             kWhere));
  Settings s;
  AIRLOCK_RETURN_IF_ERROR(json_read::StringList(config, "groups", &s.groups, true, kWhere));
  if (s.groups.empty()) return json_read::Bad(kWhere, "groups", "must name at least one group");
  for (const auto& group : s.groups) {
    if (group.empty()) return json_read::Bad(kWhere, "groups", "must not hold an empty name");
  }
  AIRLOCK_RETURN_IF_ERROR(config_read::Bounded(config, "opens_hour", 0, 23, &s.opens_hour, kWhere));
  AIRLOCK_RETURN_IF_ERROR(
      config_read::Bounded(config, "closes_hour", 1, 24, &s.closes_hour, kWhere));
  if (s.closes_hour <= s.opens_hour) {
    return json_read::Bad(kWhere, "closes_hour", "must be later than opens_hour");
  }
  AIRLOCK_RETURN_IF_ERROR(
      config_read::Bounded(config, "utc_offset_minutes", -840, 840, &s.utc_offset_minutes, kWhere));
  AIRLOCK_RETURN_IF_ERROR(config_read::Bool(config, "weekdays_only", &s.weekdays_only, kWhere));
  AIRLOCK_RETURN_IF_ERROR(
      config_read::Bounded(config, "max_window_seconds", 60, kDay, &s.max_window_seconds, kWhere));
  return s;
}

std::string TwoDigits(int64_t n) {
  return (n < 10 ? "0" : "") + std::to_string(n);
}

// "UTC+01:00", "UTC-05:30".
std::string OffsetName(int64_t minutes) {
  const int64_t magnitude = minutes < 0 ? -minutes : minutes;
  return std::string("UTC") + (minutes < 0 ? "-" : "+") + TwoDigits(magnitude / 60) + ":" +
         TwoDigits(magnitude % 60);
}

// "mon-fri 09:00-17:00 UTC+01:00".
std::string HoursName(const Settings& s) {
  return std::string(s.weekdays_only ? "mon-fri " : "daily ") + TwoDigits(s.opens_hour) + ":00-" +
         TwoDigits(s.closes_hour) + ":00 " + OffsetName(s.utc_offset_minutes);
}

class OfficeHoursPolicy : public airlock::sdk::PolicyBackend {
 public:
  static Result<std::unique_ptr<OfficeHoursPolicy>> Create(const Json& config,
                                                           const airlock::sdk::Host& /*host*/) {
    AIRLOCK_ASSIGN_OR_RETURN(Settings settings, ReadSettings(config));
    return std::make_unique<OfficeHoursPolicy>(std::move(settings));
  }

  // airlockd check-config: exactly what Create and Reload refuse.
  static Status CheckConfig(const Json& config, const airlock::sdk::Host& /*host*/) {
    return ReadSettings(config).status();
  }

  explicit OfficeHoursPolicy(Settings settings)
      : settings_(std::make_shared<const Settings>(std::move(settings))) {}

  // Thread-safe, also against Reload: each call decides by one version.
  Result<airlock::Decision> Evaluate(const airlock::PolicyInput& input) override {
    const std::shared_ptr<const Settings> s = Current();
    airlock::Decision decision;
    decision.effect = airlock::Effect::kDeny;
    decision.rule = kRule;
    const std::string& who = input.principal.subject;

    if (input.request.datasets.empty()) {
      decision.reason = "the request names no dataset";
      return decision;
    }
    const std::string* group = nullptr;
    for (const auto& candidate : s->groups) {
      if (group == nullptr && input.principal.InGroup(candidate)) group = &candidate;
    }
    if (group == nullptr) {
      std::string names;
      for (const auto& g : s->groups) names += (names.empty() ? "" : ", ") + g;
      decision.reason = who + " is in none of the groups allowed in office hours (" + names + ")";
      return decision;
    }
    if (input.now_unix_seconds <= 0) {
      // Without the time there is no telling: fail closed.
      decision.reason = "the input has no time; office hours cannot be checked";
      return decision;
    }

    const int64_t local = input.now_unix_seconds + s->utc_offset_minutes * 60;
    const int64_t days = local >= 0 ? local / kDay : (local - kDay + 1) / kDay;
    const int64_t second_of_day = local - days * kDay;
    const int64_t weekday = ((days + 3) % 7 + 7) % 7;  // 1970-01-01 was a Thursday; 0 = Monday
    const int64_t opens = s->opens_hour * 3600, closes = s->closes_hour * 3600;
    const bool open =
        (!s->weekdays_only || weekday < 5) && second_of_day >= opens && second_of_day < closes;
    if (!open) {
      static constexpr const char* kDays[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
      decision.reason = "outside office hours (" + HoursName(*s) + "; it is " + kDays[weekday] +
                        " " + TwoDigits(second_of_day / 3600) + ":" +
                        TwoDigits(second_of_day % 3600 / 60) + " there)";
      return decision;
    }

    // Access ends when the office closes, and never lasts longer than the cap.
    decision.effect = airlock::Effect::kAllow;
    decision.max_window_seconds = std::min(s->max_window_seconds, closes - second_of_day);
    decision.reason = "allowed to " + who + " (group " + *group + ") in office hours (" +
                      HoursName(*s) + "); window at most " +
                      std::to_string(decision.max_window_seconds) + " s";
    return decision;
  }

  // The new configuration replaces the old only when it is valid whole.
  Status Reload(const Json& config) override {
    AIRLOCK_ASSIGN_OR_RETURN(Settings settings, ReadSettings(config));
    std::lock_guard<std::mutex> lock(mutex_);
    settings_ = std::make_shared<const Settings>(std::move(settings));
    return Status::Ok();
  }

 private:
  std::shared_ptr<const Settings> Current() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return settings_;
  }

  mutable std::mutex mutex_;
  std::shared_ptr<const Settings> settings_;  // guarded by mutex_
};

}  // namespace office_hours

AIRLOCK_POLICY_PLUGIN(office_hours::OfficeHoursPolicy, "office-hours", "1.0.0",
                      "Allows named groups in office hours, the window ending at closing time",
                      R"({"type":"object","required":["groups"],"properties":{)"
                      R"("groups":{"type":"array","items":{"type":"string"},"minItems":1},)"
                      R"("opens_hour":{"type":"integer","minimum":0,"maximum":23},)"
                      R"("closes_hour":{"type":"integer","minimum":1,"maximum":24},)"
                      R"("utc_offset_minutes":{"type":"integer","minimum":-840,"maximum":840},)"
                      R"("weekdays_only":{"type":"boolean"},)"
                      R"("max_window_seconds":{"type":"integer","minimum":60,"maximum":86400}},)"
                      R"("additionalProperties":false})")
