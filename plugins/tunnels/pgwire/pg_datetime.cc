#include "pg_datetime.h"

#include <cctype>
#include <cstdint>

#include "airlock/cpp/arrow.hpp"

namespace airlock::tunnels::pgwire {
namespace {

constexpr int64_t kMicrosPerSecond = 1'000'000;
constexpr int64_t kMicrosPerDay = 86'400 * kMicrosPerSecond;

// Days since 1970-01-01 of a proleptic Gregorian date.
int64_t DaysFromCivil(int64_t year, int month, int day) {
  year -= month <= 2 ? 1 : 0;
  const int64_t era = (year >= 0 ? year : year - 399) / 400;
  const int64_t year_of_era = year - era * 400;
  const int64_t day_of_year = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
  const int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
  return era * 146097 + day_of_era - 719468;
}

int DaysInMonth(int64_t year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : kDays[month - 1];
}

struct Cursor {
  std::string_view text;
  size_t pos = 0;

  bool done() const { return pos == text.size(); }
  bool Peek(char c) const { return pos < text.size() && text[pos] == c; }
  bool Eat(char c) {
    if (!Peek(c)) return false;
    ++pos;
    return true;
  }
  // Between `min` and `max` digits; their count in `*count` when asked.
  bool Number(size_t min, size_t max, int64_t* value, size_t* count = nullptr) {
    size_t n = 0;
    int64_t v = 0;
    while (pos < text.size() && n < max && std::isdigit(static_cast<unsigned char>(text[pos]))) {
      v = v * 10 + (text[pos] - '0');
      ++pos;
      ++n;
    }
    if (n < min) return false;
    *value = v;
    if (count != nullptr) *count = n;
    return true;
  }
};

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool ParseDate(Cursor& c, int64_t* days) {
  int64_t year = 0, month = 0, day = 0;
  if (!c.Number(4, 6, &year) || !c.Eat('-') || !c.Number(1, 2, &month) || !c.Eat('-') ||
      !c.Number(1, 2, &day)) {
    return false;
  }
  if (month < 1 || month > 12 || day < 1 || day > DaysInMonth(year, static_cast<int>(month))) {
    return false;
  }
  *days = DaysFromCivil(year, static_cast<int>(month), static_cast<int>(day));
  return true;
}

// HH:MM[:SS[.f...]] as microseconds since midnight (24:00:00 allowed).
bool ParseClock(Cursor& c, int64_t* micros) {
  int64_t hour = 0, minute = 0, second = 0, fraction = 0;
  if (!c.Number(1, 2, &hour) || !c.Eat(':') || !c.Number(2, 2, &minute)) return false;
  if (c.Eat(':')) {
    if (!c.Number(2, 2, &second)) return false;
    if (c.Eat('.')) {
      size_t digits = 0;
      if (!c.Number(1, 6, &fraction, &digits)) return false;
      for (; digits < 6; ++digits) fraction *= 10;
      int64_t ignored = 0;
      while (c.Number(1, 1, &ignored)) {  // PostgreSQL rounds beyond microseconds; we cut
      }
    }
  }
  if (minute > 59 || second > 60) return false;
  const int64_t total = ((hour * 60 + minute) * 60 + second) * kMicrosPerSecond + fraction;
  if (total > kMicrosPerDay) return false;
  *micros = total;
  return true;
}

// Z, UTC, +HH, +HH:MM, +HHMM: the offset east of UTC in seconds.
bool ParseZone(Cursor& c, int64_t* offset_seconds) {
  while (c.Eat(' ')) {
  }
  if (c.Eat('Z') || c.Eat('z')) {
    *offset_seconds = 0;
    return true;
  }
  if (c.text.substr(c.pos) == "UTC" || c.text.substr(c.pos) == "GMT") {
    c.pos = c.text.size();
    *offset_seconds = 0;
    return true;
  }
  int sign = 0;
  if (c.Eat('+')) sign = 1;
  if (sign == 0 && c.Eat('-')) sign = -1;
  if (sign == 0) return false;
  int64_t hours = 0, minutes = 0;
  size_t digits = 0;
  if (!c.Number(1, 4, &hours, &digits)) return false;
  if (digits > 2) {  // +HHMM
    if (digits != 4) return false;
    minutes = hours % 100;
    hours /= 100;
  } else if (c.Eat(':') && !c.Number(2, 2, &minutes)) {
    return false;
  }
  if (hours > 15 || minutes > 59) return false;
  *offset_seconds = sign * (hours * 3600 + minutes * 60);
  return true;
}

}  // namespace

std::optional<int32_t> DateDays(std::string_view text) {
  Cursor c{Trim(text)};
  int64_t days = 0;
  if (!ParseDate(c, &days)) return std::nullopt;
  // A time part and a zone are allowed and dropped, as PostgreSQL does
  // (JDBC sends dates as "2026-02-01 +00").
  int64_t clock = 0, offset = 0;
  if (!c.done() && !(c.Eat(' ') || c.Eat('T'))) return std::nullopt;
  while (c.Eat(' ')) {
  }
  if (!c.done() && !c.Peek('+') && !c.Peek('-') && !ParseClock(c, &clock)) return std::nullopt;
  if (!c.done() && !ParseZone(c, &offset)) return std::nullopt;
  if (!c.done()) return std::nullopt;
  if (days < INT32_MIN || days > INT32_MAX) return std::nullopt;
  return static_cast<int32_t>(days);
}

std::optional<int64_t> TimestampMicros(std::string_view text, bool with_tz) {
  Cursor c{Trim(text)};
  int64_t days = 0, clock = 0, offset = 0;
  if (!ParseDate(c, &days)) return std::nullopt;
  if (!c.done()) {
    if (!c.Eat(' ') && !c.Eat('T')) return std::nullopt;
    if (!ParseClock(c, &clock)) return std::nullopt;
    if (!c.done() && !ParseZone(c, &offset)) return std::nullopt;
    if (!c.done()) return std::nullopt;
  }
  if (days > INT64_MAX / kMicrosPerDay - 1 || days < INT64_MIN / kMicrosPerDay + 1) {
    return std::nullopt;
  }
  int64_t micros = days * kMicrosPerDay + clock;
  if (with_tz) micros -= offset * kMicrosPerSecond;
  return micros;
}

std::optional<int64_t> TimeMicros(std::string_view text) {
  Cursor c{Trim(text)};
  int64_t clock = 0;
  if (!ParseClock(c, &clock) || !c.done()) return std::nullopt;
  return clock;
}

std::optional<std::string> CanonicalDate(std::string_view text) {
  const auto days = DateDays(text);
  if (!days.has_value()) return std::nullopt;
  return arrow::FormatDate32(*days);
}

std::optional<std::string> CanonicalTimestamp(std::string_view text, bool with_tz) {
  const auto micros = TimestampMicros(text, with_tz);
  if (!micros.has_value()) return std::nullopt;
  return arrow::FormatTimestamp(*micros, with_tz);
}

std::optional<std::string> CanonicalTime(std::string_view text) {
  const auto micros = TimeMicros(text);
  if (!micros.has_value()) return std::nullopt;
  return arrow::FormatTime(*micros);
}

void AppendPgDateTime(std::string& out, std::string_view text) {
  // "12:30:00.500000+00" -> "12:30:00.5+00": PostgreSQL prints no trailing
  // zeros in a fraction, and no fraction that is all zeros.
  const size_t dot = text.find('.');
  if (dot == std::string_view::npos) {
    out.append(text);
    return;
  }
  size_t end = dot + 1;
  while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end]))) ++end;
  size_t last = end;
  while (last > dot + 1 && text[last - 1] == '0') --last;
  if (last == dot + 1) last = dot;
  out.append(text.substr(0, last));
  out.append(text.substr(end));
}

}  // namespace airlock::tunnels::pgwire
