#include "kernel/enclave/sqlite_util.h"

#include <array>
#include <cstdint>
#include <cstring>

namespace airlock::enclave {
namespace {

constexpr int64_t kMicrosPerSecond = 1000000;
constexpr int64_t kMicrosPerDay = 86400LL * kMicrosPerSecond;

// "00" "01" … "99": ingestion formats every temporal cell, so the common
// fixed widths are written two digits at a time without a division per digit.
constexpr std::array<char, 200> kTwoDigits = [] {
  std::array<char, 200> table{};
  for (int i = 0; i < 100; ++i) {
    table[2 * i] = static_cast<char>('0' + i / 10);
    table[2 * i + 1] = static_cast<char>('0' + i % 10);
  }
  return table;
}();

void WritePair(char* out, uint64_t value) {
  std::memcpy(out, kTwoDigits.data() + 2 * value, 2);
}

// Writes `value` with at least `width` digits; returns the length.
size_t WriteDigits(char* out, uint64_t value, int width) {
  if (width == 2 && value < 100) {
    WritePair(out, value);
    return 2;
  }
  if (width == 4 && value < 10000) {
    WritePair(out, value / 100);
    WritePair(out + 2, value % 100);
    return 4;
  }
  if (width == 6 && value < 1000000) {
    WritePair(out, value / 10000);
    WritePair(out + 2, value / 100 % 100);
    WritePair(out + 4, value % 100);
    return 6;
  }
  char tmp[24];
  int n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  while (n < width) tmp[n++] = '0';
  for (int i = 0; i < n; ++i) out[i] = tmp[n - 1 - i];
  return static_cast<size_t>(n);
}

size_t WriteCivilDate(char* out, int64_t days) {
  const arrow::CivilDate date = arrow::CivilFromDays(days);
  size_t n = 0;
  uint64_t year = static_cast<uint64_t>(date.year);
  if (date.year < 0) {
    out[n++] = '-';
    year = 0 - year;
  }
  n += WriteDigits(out + n, year, 4);
  out[n++] = '-';
  n += WriteDigits(out + n, date.month, 2);
  out[n++] = '-';
  n += WriteDigits(out + n, date.day, 2);
  return n;
}

size_t WriteClock(char* out, uint64_t micros) {
  const uint64_t frac = micros % kMicrosPerSecond;
  const uint64_t secs = micros / kMicrosPerSecond;
  size_t n = WriteDigits(out, secs / 3600, 2);
  // Minutes and seconds are always two digits.
  out[n] = ':';
  WritePair(out + n + 1, secs / 60 % 60);
  out[n + 3] = ':';
  WritePair(out + n + 4, secs % 60);
  n += 6;
  if (frac != 0) {
    out[n++] = '.';
    n += WriteDigits(out + n, frac, 6);
  }
  return n;
}

// A cursor over text being parsed.
struct Scanner {
  std::string_view text;
  size_t pos = 0;

  bool Eat(char c) {
    if (pos < text.size() && text[pos] == c) {
      ++pos;
      return true;
    }
    return false;
  }
  // Reads between min and max digits.
  bool Digits(size_t min, size_t max, uint64_t* value) {
    size_t n = 0;
    uint64_t v = 0;
    while (pos < text.size() && n < max && text[pos] >= '0' && text[pos] <= '9') {
      v = v * 10 + static_cast<uint64_t>(text[pos] - '0');
      ++pos;
      ++n;
    }
    *value = v;
    return n >= min && !(pos < text.size() && text[pos] >= '0' && text[pos] <= '9');
  }
  bool done() const { return pos == text.size(); }
};

bool ScanDate(Scanner& s, int64_t* days) {
  const bool negative = s.Eat('-');
  uint64_t year = 0, month = 0, day = 0;
  if (!s.Digits(4, 9, &year) || !s.Eat('-') || !s.Digits(2, 2, &month) || !s.Eat('-') ||
      !s.Digits(2, 2, &day)) {
    return false;
  }
  if (month < 1 || month > 12 || day < 1 || day > 31) return false;
  const int64_t y = negative ? -static_cast<int64_t>(year) : static_cast<int64_t>(year);
  *days = arrow::DaysFromCivil(y, static_cast<unsigned>(month), static_cast<unsigned>(day));
  // Rejects impossible days (Feb 30): the round trip must give the same date.
  const arrow::CivilDate back = arrow::CivilFromDays(*days);
  return back.year == y && back.month == month && back.day == day;
}

bool ScanClock(Scanner& s, uint64_t max_hour_digits, uint64_t* micros) {
  uint64_t h = 0, m = 0, sec = 0, frac = 0;
  if (!s.Digits(2, max_hour_digits, &h) || !s.Eat(':') || !s.Digits(2, 2, &m) || !s.Eat(':') ||
      !s.Digits(2, 2, &sec)) {
    return false;
  }
  if (m > 59 || sec > 59) return false;
  if (s.Eat('.')) {
    if (!s.Digits(6, 6, &frac) || frac == 0) return false;  // the format omits a zero fraction
  }
  *micros = ((h * 60 + m) * 60 + sec) * static_cast<uint64_t>(kMicrosPerSecond) + frac;
  return true;
}

}  // namespace

Result<SqliteDb> OpenDatabase(const std::string& uri, int flags, std::string_view what) {
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(uri.c_str(), &raw, flags | SQLITE_OPEN_URI, nullptr);
  SqliteDb db(raw);
  if (rc != SQLITE_OK) {
    return Status::Internal("cannot open " + std::string(what) + ": " +
                            (raw != nullptr ? sqlite3_errmsg(raw) : sqlite3_errstr(rc)));
  }
  sqlite3_extended_result_codes(db.get(), 1);
  return db;
}

Status Exec(sqlite3* db, const std::string& sql) {
  char* error = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  if (rc == SQLITE_OK) return Status::Ok();
  std::string message = error != nullptr ? error : sqlite3_errstr(rc);
  sqlite3_free(error);
  if ((rc & 0xff) == SQLITE_FULL || (rc & 0xff) == SQLITE_NOMEM) {
    return Status::ResourceExhausted(message);
  }
  return Status::Internal(message);
}

Result<SqliteStmt> Prepare(sqlite3* db, std::string_view sql) {
  sqlite3_stmt* raw = nullptr;
  const int rc = sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &raw, nullptr);
  SqliteStmt stmt(raw);
  if (rc != SQLITE_OK) return Status::Internal(sqlite3_errmsg(db));
  return stmt;
}

std::string QuoteIdentifier(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

const char* DeclaredType(const arrow::Field& field) {
  switch (field.type) {
    case arrow::Type::kNull:
      return "VOID";
    case arrow::Type::kBool:
      return "BOOLEAN";
    case arrow::Type::kInt32:
      return "INT";
    case arrow::Type::kInt64:
      return "BIGINT";
    case arrow::Type::kFloat64:
      return "DOUBLE";
    case arrow::Type::kUtf8:
      return "TEXT";
    case arrow::Type::kBinary:
      return "BLOB";
    case arrow::Type::kDate32:
      return "DATE";
    case arrow::Type::kTimestampMicros:
      return field.timezone.empty() ? "TIMESTAMP" : "TIMESTAMPTZ";
    case arrow::Type::kTime64Micros:
      return "TIME";
  }
  return "BLOB";
}

const char* StagingDeclaredType(const arrow::Field& field) {
  switch (field.type) {
    case arrow::Type::kDate32:
    case arrow::Type::kTimestampMicros:
    case arrow::Type::kTime64Micros:
      return "TEXT";
    default:
      return DeclaredType(field);
  }
}

Status RestoreDeclaredTypes(sqlite3* db, std::string_view table, const std::string& create_table) {
  AIRLOCK_ASSIGN_OR_RETURN(SqliteStmt version, Prepare(db, "PRAGMA schema_version"));
  if (sqlite3_step(version.get()) != SQLITE_ROW) return Status::Internal(sqlite3_errmsg(db));
  const int64_t schema_version = sqlite3_column_int64(version.get(), 0);
  version.reset();
  AIRLOCK_RETURN_IF_ERROR(Exec(db, "BEGIN; PRAGMA writable_schema=ON"));
  Status status = [&]() -> Status {
    AIRLOCK_ASSIGN_OR_RETURN(
        SqliteStmt update,
        Prepare(db, "UPDATE sqlite_schema SET sql = ?1 WHERE type = 'table' AND name = ?2"));
    sqlite3_bind_text(update.get(), 1, create_table.data(), static_cast<int>(create_table.size()),
                      SQLITE_STATIC);
    sqlite3_bind_text(update.get(), 2, table.data(), static_cast<int>(table.size()), SQLITE_STATIC);
    if (sqlite3_step(update.get()) != SQLITE_DONE) return Status::Internal(sqlite3_errmsg(db));
    if (sqlite3_changes(db) != 1) return Status::Internal("no table to redefine");
    update.reset();
    // A new schema cookie makes other connections reparse the schema; RESET
    // makes this one reparse it.
    return Exec(db, "PRAGMA schema_version = " + std::to_string(schema_version + 1) +
                        "; COMMIT; PRAGMA writable_schema=RESET");
  }();
  if (!status.ok()) {
    sqlite3_exec(db, "PRAGMA writable_schema=OFF", nullptr, nullptr, nullptr);
    if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  return status;
}

std::optional<arrow::Field> FieldFromDeclaredType(std::string_view name,
                                                  const char* decltype_text) {
  if (decltype_text == nullptr) return std::nullopt;
  struct Entry {
    const char* declared;
    arrow::Type type;
    const char* timezone;
  };
  static constexpr Entry kEntries[] = {
      {"VOID", arrow::Type::kNull, ""},
      {"BOOLEAN", arrow::Type::kBool, ""},
      {"INT", arrow::Type::kInt32, ""},
      {"BIGINT", arrow::Type::kInt64, ""},
      {"DOUBLE", arrow::Type::kFloat64, ""},
      {"TEXT", arrow::Type::kUtf8, ""},
      {"BLOB", arrow::Type::kBinary, ""},
      {"DATE", arrow::Type::kDate32, ""},
      {"TIMESTAMP", arrow::Type::kTimestampMicros, ""},
      {"TIMESTAMPTZ", arrow::Type::kTimestampMicros, "UTC"},
      {"TIME", arrow::Type::kTime64Micros, ""},
  };
  for (const Entry& e : kEntries) {
    if (sqlite3_stricmp(decltype_text, e.declared) == 0) {
      arrow::Field field;
      field.name = std::string(name);
      field.type = e.type;
      field.timezone = e.timezone;
      field.nullable = true;
      return field;
    }
  }
  return std::nullopt;
}

size_t FormatDate32To(char* out, int32_t days) {
  return WriteCivilDate(out, days);
}

size_t FormatTimestampTo(char* out, int64_t micros, bool with_tz) {
  int64_t days = micros / kMicrosPerDay;
  int64_t rem = micros % kMicrosPerDay;
  if (rem < 0) {
    rem += kMicrosPerDay;
    --days;
  }
  // Timestamps in a column tend to share their day: keep the last day's text.
  thread_local int64_t cached_days = INT64_MIN;
  thread_local std::array<char, 24> cached_date;
  thread_local size_t cached_length = 0;
  if (days != cached_days) {
    cached_length = WriteCivilDate(cached_date.data(), days);
    cached_days = days;
  }
  std::memcpy(out, cached_date.data(), cached_length);
  size_t n = cached_length;
  out[n++] = ' ';
  n += WriteClock(out + n, static_cast<uint64_t>(rem));
  if (with_tz) {
    std::memcpy(out + n, "+00", 3);
    n += 3;
  }
  return n;
}

size_t FormatTimeTo(char* out, int64_t micros) {
  size_t n = 0;
  uint64_t magnitude = static_cast<uint64_t>(micros);
  if (micros < 0) {
    out[n++] = '-';
    magnitude = 0 - magnitude;
  }
  return n + WriteClock(out + n, magnitude);
}

std::optional<int32_t> ParseDate32(std::string_view text) {
  Scanner s{text};
  int64_t days = 0;
  if (!ScanDate(s, &days) || !s.done()) return std::nullopt;
  if (days < INT32_MIN || days > INT32_MAX) return std::nullopt;
  return static_cast<int32_t>(days);
}

std::optional<int64_t> ParseTimestamp(std::string_view text, bool with_tz) {
  Scanner s{text};
  int64_t days = 0;
  uint64_t clock = 0;
  if (!ScanDate(s, &days) || !s.Eat(' ') || !ScanClock(s, 2, &clock)) return std::nullopt;
  if (clock >= static_cast<uint64_t>(kMicrosPerDay)) return std::nullopt;
  if (with_tz && !(s.Eat('+') && s.Eat('0') && s.Eat('0'))) return std::nullopt;
  if (!s.done()) return std::nullopt;
  int64_t micros = 0;
  if (__builtin_mul_overflow(days, kMicrosPerDay, &micros) ||
      __builtin_add_overflow(micros, static_cast<int64_t>(clock), &micros)) {
    return std::nullopt;
  }
  return micros;
}

std::optional<int64_t> ParseTime(std::string_view text) {
  Scanner s{text};
  const bool negative = s.Eat('-');
  uint64_t clock = 0;
  // 12 hour digits keep the arithmetic inside uint64 (and int64 after the sign).
  if (!ScanClock(s, 12, &clock) || !s.done()) return std::nullopt;
  if (clock > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
  if (negative && clock == 0) return std::nullopt;  // the format never writes "-00:00:00"
  return negative ? -static_cast<int64_t>(clock) : static_cast<int64_t>(clock);
}

}  // namespace airlock::enclave
