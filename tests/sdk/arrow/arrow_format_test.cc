// Calendar helpers: epoch, pre-1970 instants, leap days, microseconds, extremes.
#include <cstdint>
#include <limits>

#include <gtest/gtest.h>

#include "airlock/cpp/arrow.hpp"

namespace airlock::arrow {
namespace {

TEST(FormatDate32, EpochAndNeighbours) {
  EXPECT_EQ(FormatDate32(0), "1970-01-01");
  EXPECT_EQ(FormatDate32(-1), "1969-12-31");
  EXPECT_EQ(FormatDate32(1), "1970-01-02");
  EXPECT_EQ(FormatDate32(-25567), "1900-01-01");
}

TEST(FormatDate32, LeapDays) {
  EXPECT_EQ(FormatDate32(11016), "2000-02-29");  // divisible by 400: leap
  EXPECT_EQ(FormatDate32(11017), "2000-03-01");
  // 1900 is divisible by 100 but not 400: no Feb 29.
  EXPECT_EQ(DaysFromCivil(1900, 3, 1) - DaysFromCivil(1900, 2, 28), 1);
  EXPECT_EQ(FormatDate32(static_cast<int32_t>(DaysFromCivil(2024, 2, 29))), "2024-02-29");
  EXPECT_EQ(FormatDate32(static_cast<int32_t>(DaysFromCivil(2024, 2, 29) + 1)), "2024-03-01");
}

TEST(FormatDate32, FarPastAndFuture) {
  EXPECT_EQ(FormatDate32(-719162), "0001-01-01");
  EXPECT_EQ(FormatDate32(-719163), "0000-12-31");
  EXPECT_EQ(FormatDate32(-719529), "-0001-12-31");
  EXPECT_EQ(FormatDate32(2932896), "9999-12-31");
  EXPECT_EQ(FormatDate32(std::numeric_limits<int32_t>::max()), "5881580-07-11");
  EXPECT_EQ(FormatDate32(std::numeric_limits<int32_t>::min()), "-5877641-06-23");
}

TEST(CivilDays, RoundTripsOverManyCenturies) {
  for (int64_t days = -800000; days <= 800000; days += 7) {
    const CivilDate date = CivilFromDays(days);
    ASSERT_EQ(DaysFromCivil(date.year, date.month, date.day), days) << days;
  }
}

TEST(FormatTimestamp, EpochAndSubSecond) {
  EXPECT_EQ(FormatTimestamp(0, false), "1970-01-01 00:00:00");
  EXPECT_EQ(FormatTimestamp(0, true), "1970-01-01 00:00:00+00");
  EXPECT_EQ(FormatTimestamp(1, false), "1970-01-01 00:00:00.000001");
  EXPECT_EQ(FormatTimestamp(1500000, true), "1970-01-01 00:00:01.500000+00");
}

TEST(FormatTimestamp, NegativeInstantsFloorToThePreviousDay) {
  EXPECT_EQ(FormatTimestamp(-1, false), "1969-12-31 23:59:59.999999");
  EXPECT_EQ(FormatTimestamp(-1000000, false), "1969-12-31 23:59:59");
  EXPECT_EQ(FormatTimestamp(-86400LL * 1000000, false), "1969-12-31 00:00:00");
  EXPECT_EQ(FormatTimestamp(-2208988800000000LL, true), "1900-01-01 00:00:00+00");
}

TEST(FormatTimestamp, LeapDayWithMicros) {
  EXPECT_EQ(FormatTimestamp(1709210096789000LL, true), "2024-02-29 12:34:56.789000+00");
}

TEST(FormatTimestamp, Int64Extremes) {
  EXPECT_EQ(FormatTimestamp(std::numeric_limits<int64_t>::max(), false),
            "294247-01-10 04:00:54.775807");
  EXPECT_EQ(FormatTimestamp(std::numeric_limits<int64_t>::min(), false),
            "-290308-12-21 19:59:05.224192");
}

TEST(FormatTime, ClockValues) {
  EXPECT_EQ(FormatTime(0), "00:00:00");
  EXPECT_EQ(FormatTime(45296000001LL), "12:34:56.000001");
  EXPECT_EQ(FormatTime(86399999999LL), "23:59:59.999999");
  EXPECT_EQ(FormatTime(86400000000LL), "24:00:00");
  EXPECT_EQ(FormatTime(-1), "-00:00:00.000001");
  EXPECT_FALSE(FormatTime(std::numeric_limits<int64_t>::min()).empty());
}

}  // namespace
}  // namespace airlock::arrow
