#include "time_zone.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <iterator>

namespace airlock::policy::rules {
namespace {

constexpr size_t kMaxTzifBytes = 1 << 20;  // real files are < 4 KiB
constexpr size_t kHeaderBytes = 44;

// Big-endian reader over the file bytes; every read is bounds-checked.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  bool Has(size_t n) const { return data_.size() - pos_ >= n; }
  size_t pos() const { return pos_; }
  void Skip(size_t n) { pos_ += n; }
  uint8_t U8() { return static_cast<uint8_t>(data_[pos_++]); }
  int64_t Signed(int width) {
    uint64_t v = 0;
    for (int i = 0; i < width; ++i) v = (v << 8) | U8();
    if (width == 4) return static_cast<int32_t>(static_cast<uint32_t>(v));
    return static_cast<int64_t>(v);
  }
  std::string_view Rest() const { return data_.substr(pos_); }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

struct Counts {
  uint32_t isut = 0, isstd = 0, leap = 0, time = 0, type = 0, chars = 0;
};

bool ReadHeader(Reader* r, char* version, Counts* c) {
  if (!r->Has(kHeaderBytes)) return false;
  const std::string_view rest = r->Rest();
  if (rest.substr(0, 4) != "TZif") return false;
  *version = rest[4];
  r->Skip(20);
  c->isut = static_cast<uint32_t>(r->Signed(4));
  c->isstd = static_cast<uint32_t>(r->Signed(4));
  c->leap = static_cast<uint32_t>(r->Signed(4));
  c->time = static_cast<uint32_t>(r->Signed(4));
  c->type = static_cast<uint32_t>(r->Signed(4));
  c->chars = static_cast<uint32_t>(r->Signed(4));
  return c->type >= 1 && c->type <= 256 && c->time <= 100000 && c->leap <= 100000 &&
         c->chars <= 100000 && (c->isut == 0 || c->isut == c->type) &&
         (c->isstd == 0 || c->isstd == c->type);
}

size_t BlockBytes(const Counts& c, int time_width) {
  return size_t{c.time} * time_width + c.time + size_t{c.type} * 6 + c.chars +
         size_t{c.leap} * (time_width + 4) + c.isstd + c.isut;
}

// --- POSIX TZ strings (TZif footer) ------------------------------------------

class PosixParser {
 public:
  explicit PosixParser(std::string_view s) : s_(s) {}

  bool Parse(TimeZone::PosixRule* rule) {
    if (!Name()) return false;
    int32_t offset = 0;
    if (!Offset(&offset)) return false;
    rule->std_offset = -offset;  // POSIX counts west of UTC as positive
    if (Done()) return true;
    if (!Name()) return false;
    rule->has_dst = true;
    rule->dst_offset = rule->std_offset + 3600;
    if (!Done() && Peek() != ',') {
      if (!Offset(&offset)) return false;
      rule->dst_offset = -offset;
    }
    if (Done() || Peek() != ',') return false;  // no rule: unsupported, refuse
    ++pos_;
    if (!Date(&rule->start)) return false;
    if (Done() || Peek() != ',') return false;
    ++pos_;
    if (!Date(&rule->end)) return false;
    return Done();
  }

 private:
  bool Done() const { return pos_ >= s_.size(); }
  char Peek() const { return s_[pos_]; }
  bool Digit() const { return !Done() && Peek() >= '0' && Peek() <= '9'; }

  bool Name() {
    if (Done()) return false;
    if (Peek() == '<') {
      const size_t close = s_.find('>', pos_);
      if (close == std::string_view::npos) return false;
      pos_ = close + 1;
      return true;
    }
    const size_t start = pos_;
    while (!Done() && ((Peek() >= 'A' && Peek() <= 'Z') || (Peek() >= 'a' && Peek() <= 'z'))) {
      ++pos_;
    }
    return pos_ - start >= 3;
  }

  bool Number(int max, int* out) {
    if (!Digit()) return false;
    int v = 0;
    while (Digit()) {
      v = v * 10 + (Peek() - '0');
      if (v > max) return false;
      ++pos_;
    }
    *out = v;
    return true;
  }

  // [+-]hh[:mm[:ss]] in seconds; hours up to 167 (RFC 8536 extension).
  bool Offset(int32_t* out) {
    int sign = 1;
    if (!Done() && (Peek() == '+' || Peek() == '-')) sign = Peek() == '-' ? -1 : 1, ++pos_;
    int h = 0, m = 0, sec = 0;
    if (!Number(167, &h)) return false;
    if (!Done() && Peek() == ':') {
      ++pos_;
      if (!Number(59, &m)) return false;
      if (!Done() && Peek() == ':') {
        ++pos_;
        if (!Number(59, &sec)) return false;
      }
    }
    *out = sign * (h * 3600 + m * 60 + sec);
    return true;
  }

  bool Date(TimeZone::PosixRule::Date* d) {
    if (Done()) return false;
    if (Peek() == 'M') {
      ++pos_;
      d->kind = 'M';
      if (!Number(12, &d->month) || d->month < 1) return false;
      if (Done() || Peek() != '.') return false;
      ++pos_;
      if (!Number(5, &d->week) || d->week < 1) return false;
      if (Done() || Peek() != '.') return false;
      ++pos_;
      if (!Number(6, &d->weekday)) return false;
    } else if (Peek() == 'J') {
      ++pos_;
      d->kind = 'J';
      if (!Number(365, &d->day) || d->day < 1) return false;
    } else {
      d->kind = 'n';
      if (!Number(365, &d->day)) return false;
    }
    d->time = 7200;
    if (!Done() && Peek() == '/') {
      ++pos_;
      if (!Offset(&d->time)) return false;
    }
    return true;
  }

  std::string_view s_;
  size_t pos_ = 0;
};

// Days since the epoch of the rule's date in `year`.
int64_t RuleDay(const TimeZone::PosixRule::Date& d, int year) {
  using namespace std::chrono;
  const std::chrono::year y{year};
  const sys_days jan1 = y / January / 1;
  switch (d.kind) {
    case 'J': {
      const int leap_shift = (y.is_leap() && d.day >= 60) ? 1 : 0;
      return (jan1 + days{d.day - 1 + leap_shift}).time_since_epoch().count();
    }
    case 'n':
      return (jan1 + days{d.day}).time_since_epoch().count();
    default: {
      const month m{static_cast<unsigned>(d.month)};
      const weekday wd{static_cast<unsigned>(d.weekday)};
      const sys_days day = d.week == 5 ? sys_days(y / m / wd[last])
                                       : sys_days(y / m / wd[static_cast<unsigned>(d.week)]);
      return day.time_since_epoch().count();
    }
  }
}

bool ValidZoneName(std::string_view name) {
  if (name.empty() || name.size() > 128 || name.front() == '/' || name.back() == '/') return false;
  if (name.find("..") != std::string_view::npos || name.find("//") != std::string_view::npos) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '+' || c == '/';
  });
}

}  // namespace

std::string TimeZone::DefaultDirectory() {
  const char* dir = std::getenv("TZDIR");
  return dir != nullptr && dir[0] != '\0' ? std::string(dir) : std::string("/usr/share/zoneinfo");
}

Result<std::shared_ptr<const TimeZone>> TimeZone::Load(std::string_view name,
                                                       const std::string& zoneinfo_dir) {
  if (!ValidZoneName(name)) {
    return Status::InvalidArgument("'" + std::string(name) + "' is not an IANA time zone name");
  }
  const std::string path = zoneinfo_dir + "/" + std::string(name);
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::InvalidArgument("time zone '" + std::string(name) + "' is unknown");
  std::string data;
  data.resize(kMaxTzifBytes + 1);
  in.read(data.data(), static_cast<std::streamsize>(data.size()));
  data.resize(static_cast<size_t>(in.gcount()));
  if (data.size() > kMaxTzifBytes) {
    return Status::InvalidArgument("time zone '" + std::string(name) + "' file is too large");
  }
  return FromTzif(std::string(name), data);
}

Result<std::shared_ptr<const TimeZone>> TimeZone::FromTzif(std::string name,
                                                           std::string_view data) {
  const Status corrupt =
      Status::InvalidArgument("time zone '" + name + "' is not a valid TZif file");
  Reader r(data);
  char version = 0;
  Counts c;
  if (!ReadHeader(&r, &version, &c)) return corrupt;
  int width = 4;
  if (version >= '2') {
    // Skip the 32-bit block; the 64-bit one follows with its own header.
    if (!r.Has(BlockBytes(c, 4))) return corrupt;
    r.Skip(BlockBytes(c, 4));
    char version2 = 0;
    if (!ReadHeader(&r, &version2, &c)) return corrupt;
    width = 8;
  }
  if (!r.Has(BlockBytes(c, width))) return corrupt;

  std::shared_ptr<TimeZone> zone(new TimeZone());
  zone->name_ = std::move(name);
  zone->transitions_.reserve(c.time);
  for (uint32_t i = 0; i < c.time; ++i) zone->transitions_.push_back(r.Signed(width));
  if (!std::is_sorted(zone->transitions_.begin(), zone->transitions_.end())) return corrupt;
  for (uint32_t i = 0; i < c.time; ++i) {
    const uint8_t type = r.U8();
    if (type >= c.type) return corrupt;
    zone->transition_type_.push_back(type);
  }
  for (uint32_t i = 0; i < c.type; ++i) {
    const int64_t utoff = r.Signed(4);
    r.Skip(2);  // isdst, abbreviation index: not needed for offsets
    if (utoff <= -25 * 3600 || utoff >= 26 * 3600) return corrupt;
    zone->offsets_.push_back(static_cast<int32_t>(utoff));
  }
  r.Skip(c.chars + size_t{c.leap} * (width + 4) + c.isstd + c.isut);

  if (width == 8) {
    // Footer: "\n<POSIX TZ string>\n"; an empty string means "no rule".
    const std::string_view rest = r.Rest();
    if (rest.size() >= 2 && rest[0] == '\n') {
      const size_t end = rest.find('\n', 1);
      if (end == std::string_view::npos) return corrupt;
      const std::string_view tz = rest.substr(1, end - 1);
      if (!tz.empty()) {
        PosixRule rule;
        if (!PosixParser(tz).Parse(&rule)) {
          return Status::InvalidArgument("time zone '" + zone->name_ +
                                         "' has an unsupported rule '" + std::string(tz) + "'");
        }
        zone->footer_ = rule;
      }
    }
  }
  return std::shared_ptr<const TimeZone>(std::move(zone));
}

int32_t TimeZone::FooterOffset(int64_t t) const {
  const PosixRule& rule = *footer_;
  if (!rule.has_dst) return rule.std_offset;
  using namespace std::chrono;
  const int64_t local = t + rule.std_offset;
  const int64_t local_days = local / 86400 - ((local % 86400) < 0 ? 1 : 0);
  const year_month_day ymd{sys_days{days{local_days}}};
  const int y = static_cast<int>(ymd.year());
  const int64_t start = RuleDay(rule.start, y) * 86400 + rule.start.time - rule.std_offset;
  const int64_t end = RuleDay(rule.end, y) * 86400 + rule.end.time - rule.dst_offset;
  const bool dst = start < end ? (t >= start && t < end) : !(t >= end && t < start);
  return dst ? rule.dst_offset : rule.std_offset;
}

int32_t TimeZone::OffsetAt(int64_t unix_seconds) const {
  if (transitions_.empty() || unix_seconds < transitions_.front()) {
    if (transitions_.empty() && footer_) return FooterOffset(unix_seconds);
    return offsets_.front();
  }
  if (unix_seconds >= transitions_.back() && footer_) return FooterOffset(unix_seconds);
  const auto it = std::upper_bound(transitions_.begin(), transitions_.end(), unix_seconds);
  const size_t index = static_cast<size_t>(std::distance(transitions_.begin(), it)) - 1;
  return offsets_[transition_type_[index]];
}

}  // namespace airlock::policy::rules
