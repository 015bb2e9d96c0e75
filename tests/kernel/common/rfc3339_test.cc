// RFC 3339 timestamps: what is one instant, and what is refused.
#include "kernel/common/rfc3339.h"

#include <gtest/gtest.h>

namespace airlock {
namespace {

TEST(Rfc3339, ReadsUtcOffsetsAndFractions) {
  EXPECT_EQ(ParseRfc3339Micros("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(ParseRfc3339Micros("2026-12-06T09:30:00Z"), int64_t{1796549400} * 1000000);
  // The same instant written from another zone.
  EXPECT_EQ(ParseRfc3339Micros("2026-12-06T10:30:00+01:00"), int64_t{1796549400} * 1000000);
  EXPECT_EQ(ParseRfc3339Micros("2026-12-06T04:00:00-05:30"), int64_t{1796549400} * 1000000);
  EXPECT_EQ(ParseRfc3339Micros("2026-12-06T09:30:00.25Z"), int64_t{1796549400} * 1000000 + 250000);
  EXPECT_EQ(ParseRfc3339Micros("2026-12-06T09:30:00.123456789Z"),
            int64_t{1796549400} * 1000000 + 123456);
  EXPECT_EQ(ParseRfc3339Micros("2024-02-29t12:00:00z"), int64_t{1709208000} * 1000000);
}

TEST(Rfc3339, RefusesAnythingLooser) {
  for (const char* bad :
       {"", "2026-12-06", "2026-12-06T09:30:00", "2026-12-06 09:30:00Z", "2026-12-06T09:30Z",
        "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z", "2026-04-31T00:00:00Z",
        "2026-12-06T24:00:00Z", "2026-12-06T09:60:00Z", "2026-12-06T09:30:60Z",
        "2026-12-06T09:30:00.Z", "2026-12-06T09:30:00+0100", "2026-12-06T09:30:00+01",
        "2026-12-06T09:30:00Zjunk", "1969-12-31T23:59:59Z", "+2026-12-06T09:30:00Z",
        "2026-12-06T09:30:00.1234567890Z"}) {
    EXPECT_FALSE(ParseRfc3339Micros(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace airlock
