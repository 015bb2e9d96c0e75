#include "kernel/common/rfc3339.h"

#include <ctime>

namespace airlock {
namespace {

// Reads exactly `digits` decimal digits at `at`; false otherwise.
bool Digits(std::string_view text, size_t& at, int digits, int* out) {
  if (at + digits > text.size()) return false;
  int value = 0;
  for (int i = 0; i < digits; ++i) {
    const char c = text[at + i];
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  at += digits;
  *out = value;
  return true;
}

bool Expect(std::string_view text, size_t& at, char c) {
  if (at >= text.size() || text[at] != c) return false;
  ++at;
  return true;
}

bool LeapYear(int y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int DaysIn(int year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && LeapYear(year) ? 29 : kDays[month - 1];
}

}  // namespace

std::optional<int64_t> ParseRfc3339Micros(std::string_view text) {
  size_t at = 0;
  int year, month, day, hour, minute, second;
  if (!Digits(text, at, 4, &year) || !Expect(text, at, '-') || !Digits(text, at, 2, &month) ||
      !Expect(text, at, '-') || !Digits(text, at, 2, &day) ||
      !(Expect(text, at, 'T') || Expect(text, at, 't')) || !Digits(text, at, 2, &hour) ||
      !Expect(text, at, ':') || !Digits(text, at, 2, &minute) || !Expect(text, at, ':') ||
      !Digits(text, at, 2, &second)) {
    return std::nullopt;
  }
  if (year < 1970 || month < 1 || month > 12 || day < 1 || day > DaysIn(year, month) || hour > 23 ||
      minute > 59 || second > 59) {
    return std::nullopt;
  }
  int64_t micros = 0;
  if (at < text.size() && text[at] == '.') {
    ++at;
    int scale = 100000;
    const size_t first = at;
    while (at < text.size() && text[at] >= '0' && text[at] <= '9') {
      micros += (text[at] - '0') * scale;  // digits past the sixth are dropped
      scale /= 10;
      ++at;
    }
    if (at == first || at - first > 9) return std::nullopt;
  }
  int64_t offset_seconds = 0;
  if (Expect(text, at, 'Z') || Expect(text, at, 'z')) {
  } else if (at < text.size() && (text[at] == '+' || text[at] == '-')) {
    const int sign = text[at] == '+' ? 1 : -1;
    ++at;
    int oh, om;
    if (!Digits(text, at, 2, &oh) || !Expect(text, at, ':') || !Digits(text, at, 2, &om) ||
        oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset_seconds = sign * (oh * 3600 + om * 60);
  } else {
    return std::nullopt;
  }
  if (at != text.size()) return std::nullopt;
  struct tm utc {};
  utc.tm_year = year - 1900;
  utc.tm_mon = month - 1;
  utc.tm_mday = day;
  utc.tm_hour = hour;
  utc.tm_min = minute;
  utc.tm_sec = second;
  const int64_t seconds = static_cast<int64_t>(timegm(&utc)) - offset_seconds;
  return seconds * 1000000 + micros;
}

}  // namespace airlock
