// The TZif reader against glibc's own zone code (localtime_r under TZ, set
// once per zone in this single-threaded test) over decades of instants,
// including years past the files' last explicit transition (POSIX footer).
#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <string>

#include "plugins/policy/rules/time_window.h"
#include "plugins/policy/rules/time_zone.h"

namespace airlock::policy::rules {
namespace {

int64_t GlibcOffset(int64_t t) {
  const time_t tt = static_cast<time_t>(t);
  std::tm local{};
  localtime_r(&tt, &local);
  return local.tm_gmtoff;
}

TEST(TimeZone, MatchesGlibcAcrossDecades) {
  const std::string dir = TimeZone::DefaultDirectory();
  for (const char* name : {"Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Kolkata",
                           "America/Sao_Paulo", "UTC", "Pacific/Chatham"}) {
    SCOPED_TRACE(name);
    auto zone = TimeZone::Load(name, dir);
    ASSERT_TRUE(zone.ok()) << zone.status().ToString();
    ::setenv("TZ", (std::string(":") + name).c_str(), 1);
    ::tzset();
    int mismatches = 0;
    // 1990..2060 every 7h13m: hits every transition day-part at random phases.
    for (int64_t t = 631152000; t < 2871763200 && mismatches < 5; t += 7 * 3600 + 13 * 60) {
      if ((*zone)->OffsetAt(t) != GlibcOffset(t)) {
        ++mismatches;
        ADD_FAILURE() << "at " << t << ": " << (*zone)->OffsetAt(t) << " vs glibc "
                      << GlibcOffset(t);
      }
    }
  }
  ::unsetenv("TZ");
  ::tzset();
}

TEST(TimeZone, ExactDaylightSavingInstantsInBerlin) {
  auto zone = TimeZone::Load("Europe/Berlin", TimeZone::DefaultDirectory());
  ASSERT_TRUE(zone.ok());
  EXPECT_EQ((*zone)->OffsetAt(1743296399), 3600);  // 2025-03-30 00:59:59Z
  EXPECT_EQ((*zone)->OffsetAt(1743296400), 7200);  // 01:00:00Z: CEST
  EXPECT_EQ((*zone)->OffsetAt(1761440399), 7200);  // 2025-10-26 00:59:59Z
  EXPECT_EQ((*zone)->OffsetAt(1761440400), 3600);  // 01:00:00Z: CET
  // 2050 lies past the explicit transitions: the footer rule decides.
  EXPECT_EQ((*zone)->OffsetAt(2532384000), 7200);  // 2050-04-01
  EXPECT_EQ((*zone)->OffsetAt(2554070400), 3600);  // 2050-12-08
}

TEST(TimeZone, RefusesBadNamesAndCorruptFiles) {
  const std::string dir = TimeZone::DefaultDirectory();
  for (const char* bad :
       {"", "/etc/passwd", "../etc/passwd", "Europe//Berlin", "Europe/Berlin/", "Europe/Ber lin"}) {
    EXPECT_FALSE(TimeZone::Load(bad, dir).ok()) << bad;
  }
  EXPECT_EQ(TimeZone::Load("No/Such_Zone", dir).status().message(),
            "time zone 'No/Such_Zone' is unknown");
  EXPECT_FALSE(TimeZone::FromTzif("x", "TZif2 but far too short").ok());
  EXPECT_FALSE(TimeZone::FromTzif("x", std::string(60, '\0')).ok());
}

TEST(TimeWindow, DescribesAndChecksWeekdays) {
  ZoneCache zones(TimeZone::DefaultDirectory());
  TimeWindow w;
  ASSERT_TRUE(ParseTimeWindow(Json::parse(R"({"timezone": "UTC", "days": ["mon", "tue", "wed",
      "thu", "fri"], "from": "09:00", "to": "17:30"})"),
                              "when", &zones, &w)
                  .ok());
  EXPECT_EQ(w.Describe(), "mon-fri 09:00-17:30 UTC");
  EXPECT_TRUE(w.Contains(1748856600));   // mon 2025-06-02 09:30Z
  EXPECT_FALSE(w.Contains(1748885400));  // mon 17:30Z (exclusive)
  EXPECT_FALSE(w.Contains(1749288600));  // sat 09:30Z
  TimeWindow pair;
  ASSERT_TRUE(
      ParseTimeWindow(
          Json::parse(
              R"({"timezone": "UTC", "days": ["sat", "sun", "wed"], "from": "22:00", "to": "02:00"})"),
          "when", &zones, &pair)
          .ok());
  EXPECT_EQ(pair.Describe(), "wed,sat,sun 22:00-02:00 UTC");
}

}  // namespace
}  // namespace airlock::policy::rules
