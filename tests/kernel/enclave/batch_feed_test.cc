// The batch feed (kernel/enclave/batch_feed.h) and the staging declared types
// (sqlite_util.h): what lands in SQLite must be what binding every cell to a
// declared-type table stored, value by value, storage class by storage class.
#include "kernel/enclave/batch_feed.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kernel/enclave/sqlite_util.h"

namespace airlock::enclave {
namespace {

using arrow::Field;
using arrow::Type;

std::vector<Field> AllTypes() {
  return {{"b", Type::kBool, "", true},
          {"i32", Type::kInt32, "", true},
          {"i64", Type::kInt64, "", true},
          {"f", Type::kFloat64, "", true},
          {"s", Type::kUtf8, "", true},
          {"bin", Type::kBinary, "", true},
          {"d", Type::kDate32, "", true},
          {"ts", Type::kTimestampMicros, "", true},
          {"tz", Type::kTimestampMicros, "UTC", true},
          {"t", Type::kTime64Micros, "", true},
          {"n", Type::kNull, "", true}};
}

// Rows with edge values; every column is NULL in the last row.
arrow::OwnedArray AllTypesBatch(const std::vector<Field>& fields) {
  arrow::RecordBatchBuilder b(fields);
  const std::vector<int64_t> micros = {0, -1, 1700000000123456, 86399999999, -62135596800000000};
  for (size_t r = 0; r < micros.size(); ++r) {
    b.AppendBool(0, r % 2 == 0);
    b.AppendInt32(1, r == 1 ? INT32_MIN : static_cast<int32_t>(r));
    b.AppendInt64(2, r == 2 ? INT64_MAX : -static_cast<int64_t>(r));
    b.AppendDouble(3, r == 3 ? 1e308 : 0.25 * static_cast<double>(r));  // 0.0 and 1.0 included
    b.AppendString(4, r == 0 ? std::string_view() : std::string_view("12.5 x\0y", 8));
    b.AppendString(5, r == 0 ? std::string_view() : std::string_view("\x00\x01\xff", 3));
    b.AppendDate32(6, static_cast<int32_t>(micros[r] / 86400000000));
    b.AppendTimestamp(7, micros[r]);
    b.AppendTimestamp(8, micros[r]);
    b.AppendTime(9, micros[r] < 0 ? -micros[r] % 86400000000 : micros[r] % 86400000000);
    b.AppendNull(10);
  }
  for (size_t c = 0; c < fields.size(); ++c) b.AppendNull(c);
  return b.Finish();
}

SqliteDb OpenMemory(const std::string& name) {
  auto db = OpenDatabase("file:/" + name + "?vfs=memdb", SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                         "test database");
  EXPECT_TRUE(db.ok()) << db.status().ToString();
  return std::move(*db);
}

// `quote()` and `typeof()` of every cell of table `t`, in rowid order.
std::vector<std::string> Dump(sqlite3* db, const std::string& table, size_t columns) {
  std::string sql = "SELECT ";
  for (size_t c = 0; c < columns; ++c) {
    if (c > 0) sql += " || '|' || ";
    sql += "typeof(c" + std::to_string(c) + ") || ':' || quote(c" + std::to_string(c) + ")";
  }
  sql += " FROM " + table + " ORDER BY rowid";
  auto stmt = Prepare(db, sql);
  EXPECT_TRUE(stmt.ok()) << stmt.status().ToString();
  std::vector<std::string> rows;
  while (sqlite3_step(stmt->get()) == SQLITE_ROW) {
    rows.emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(stmt->get(), 0)));
  }
  return rows;
}

std::string CreateTable(const std::string& name, const std::vector<Field>& fields, bool staging) {
  std::string ddl = "CREATE TABLE " + name + " (";
  for (size_t c = 0; c < fields.size(); ++c) {
    if (c > 0) ddl += ", ";
    ddl += "c" + std::to_string(c) + " " +
           (staging ? StagingDeclaredType(fields[c]) : DeclaredType(fields[c]));
  }
  return ddl + ")";
}

// The reference: each cell bound to a one-row INSERT into a table declared
// with the final types, as ingestion did before the feed.
void InsertByBinding(sqlite3* db, const std::string& table, const arrow::BatchView& view) {
  std::string sql = "INSERT INTO " + table + " VALUES (";
  for (size_t c = 0; c < view.num_columns(); ++c) sql += c > 0 ? ",?" : "?";
  auto stmt = Prepare(db, sql + ")");
  ASSERT_TRUE(stmt.ok());
  char text[kMaxTemporalText];
  for (size_t r = 0; r < view.num_rows(); ++r) {
    for (size_t c = 0; c < view.num_columns(); ++c) {
      const int p = static_cast<int>(c) + 1;
      sqlite3_stmt* s = stmt->get();
      if (view.IsNull(c, r) || view.field(c).type == Type::kNull) {
        sqlite3_bind_null(s, p);
        continue;
      }
      switch (view.field(c).type) {
        case Type::kBool:
          sqlite3_bind_int(s, p, view.GetBool(c, r));
          break;
        case Type::kInt32:
          sqlite3_bind_int(s, p, view.GetInt32(c, r));
          break;
        case Type::kInt64:
          sqlite3_bind_int64(s, p, view.GetInt64(c, r));
          break;
        case Type::kFloat64:
          sqlite3_bind_double(s, p, view.GetDouble(c, r));
          break;
        case Type::kUtf8: {
          const std::string_view v = view.GetString(c, r);
          sqlite3_bind_text(s, p, v.data() ? v.data() : "", static_cast<int>(v.size()),
                            SQLITE_TRANSIENT);
          break;
        }
        case Type::kBinary: {
          const std::string_view v = view.GetString(c, r);
          if (v.empty()) {
            sqlite3_bind_zeroblob(s, p, 0);
          } else {
            sqlite3_bind_blob(s, p, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
          }
          break;
        }
        case Type::kDate32:
          sqlite3_bind_text(s, p, text,
                            static_cast<int>(FormatDate32To(text, view.GetDate32(c, r))),
                            SQLITE_TRANSIENT);
          break;
        case Type::kTimestampMicros:
          sqlite3_bind_text(s, p, text,
                            static_cast<int>(FormatTimestampTo(text, view.GetTimestamp(c, r),
                                                               !view.field(c).timezone.empty())),
                            SQLITE_TRANSIENT);
          break;
        case Type::kTime64Micros:
          sqlite3_bind_text(s, p, text, static_cast<int>(FormatTimeTo(text, view.GetTime(c, r))),
                            SQLITE_TRANSIENT);
          break;
        case Type::kNull:
          break;
      }
    }
    ASSERT_EQ(sqlite3_step(stmt->get()), SQLITE_DONE) << sqlite3_errmsg(db);
    sqlite3_reset(stmt->get());
  }
}

TEST(BatchFeed, StoresWhatBindingToTheDeclaredTypesStored) {
  const std::vector<Field> fields = AllTypes();
  arrow::OwnedArray batch = AllTypesBatch(fields);
  auto view = arrow::BatchView::Make(fields, *batch.get());
  ASSERT_TRUE(view.ok()) << view.status().ToString();

  SqliteDb db = OpenMemory("batch-feed-test");
  BatchFeed feed;
  ASSERT_TRUE(RegisterBatchFeed(db.get(), &feed).ok());
  ASSERT_TRUE(Exec(db.get(), CreateTable("staged", fields, /*staging=*/true)).ok());
  ASSERT_TRUE(Exec(db.get(), "CREATE VIRTUAL TABLE temp.f USING airlock_batch_feed(" +
                                 std::to_string(fields.size()) + ")")
                  .ok());
  auto insert = Prepare(db.get(), "INSERT INTO staged SELECT * FROM temp.f");
  ASSERT_TRUE(insert.ok()) << insert.status().ToString();
  // Without a batch the feed is empty.
  ASSERT_EQ(sqlite3_step(insert->get()), SQLITE_DONE);
  sqlite3_reset(insert->get());
  for (int round = 0; round < 2; ++round) {
    feed.view = &*view;
    ASSERT_EQ(sqlite3_step(insert->get()), SQLITE_DONE) << sqlite3_errmsg(db.get());
    sqlite3_reset(insert->get());
    feed.view = nullptr;
  }
  insert->reset();
  ASSERT_TRUE(RestoreDeclaredTypes(db.get(), "staged", CreateTable("staged", fields, false)).ok());

  ASSERT_TRUE(Exec(db.get(), CreateTable("bound", fields, /*staging=*/false)).ok());
  InsertByBinding(db.get(), "bound", *view);
  InsertByBinding(db.get(), "bound", *view);

  const std::vector<std::string> expected = Dump(db.get(), "bound", fields.size());
  ASSERT_EQ(expected.size(), 2 * view->num_rows());
  EXPECT_EQ(Dump(db.get(), "staged", fields.size()), expected);
  // Spot checks of the reference itself.
  EXPECT_NE(expected[0].find("text:'1970-01-01 00:00:00+00'"), std::string::npos) << expected[0];
  EXPECT_NE(expected[0].find("blob:X''"), std::string::npos) << expected[0];
  EXPECT_NE(expected[1].find("text:'12.5 x"), std::string::npos) << expected[1];
}

TEST(BatchFeed, RefusesABatchOfAnotherWidth) {
  const std::vector<Field> fields = AllTypes();
  arrow::OwnedArray batch = AllTypesBatch(fields);
  auto view = arrow::BatchView::Make(fields, *batch.get());
  ASSERT_TRUE(view.ok());
  SqliteDb db = OpenMemory("batch-feed-width");
  BatchFeed feed;
  ASSERT_TRUE(RegisterBatchFeed(db.get(), &feed).ok());
  ASSERT_TRUE(Exec(db.get(), "CREATE TABLE t (a, b)").ok());
  ASSERT_TRUE(Exec(db.get(), "CREATE VIRTUAL TABLE temp.f USING airlock_batch_feed(2)").ok());
  feed.view = &*view;
  EXPECT_FALSE(Exec(db.get(), "INSERT INTO t SELECT * FROM temp.f").ok());
  feed.view = nullptr;
  EXPECT_FALSE(Exec(db.get(), "CREATE VIRTUAL TABLE temp.g USING airlock_batch_feed(0)").ok());
  EXPECT_FALSE(Exec(db.get(), "CREATE VIRTUAL TABLE temp.g USING airlock_batch_feed(x)").ok());
  EXPECT_FALSE(Exec(db.get(), "CREATE VIRTUAL TABLE temp.g USING airlock_batch_feed").ok());
}

TEST(StagingTypes, TemporalColumnsAreFilledAsTextAndRestored) {
  const std::vector<Field> fields = AllTypes();
  for (const Field& f : fields) {
    const bool temporal = f.type == Type::kDate32 || f.type == Type::kTimestampMicros ||
                          f.type == Type::kTime64Micros;
    EXPECT_EQ(std::string(StagingDeclaredType(f)), temporal ? "TEXT" : DeclaredType(f)) << f.name;
  }
  SqliteDb db = OpenMemory("staging-types");
  ASSERT_TRUE(
      Exec(db.get(), "CREATE TABLE s (c0 TEXT, c1 TEXT); INSERT INTO s VALUES ('5', '6')").ok());
  ASSERT_TRUE(
      RestoreDeclaredTypes(db.get(), "s", "CREATE TABLE \"s\" (c0 DATE, c1 TIMESTAMPTZ)").ok());
  // The same connection and a new one see the declared types, and NUMERIC
  // affinity is back (a numeric text becomes a number on insert).
  SqliteDb other = OpenMemory("staging-types");
  for (sqlite3* conn : {db.get(), other.get()}) {
    auto stmt = Prepare(conn, "SELECT c0, c1 FROM s");
    ASSERT_TRUE(stmt.ok());
    EXPECT_STREQ(sqlite3_column_decltype(stmt->get(), 0), "DATE");
    EXPECT_STREQ(sqlite3_column_decltype(stmt->get(), 1), "TIMESTAMPTZ");
  }
  ASSERT_TRUE(Exec(db.get(), "INSERT INTO s VALUES ('7', '2024-01-01 00:00:00+00')").ok());
  EXPECT_EQ(
      Dump(db.get(), "s", 2),
      (std::vector<std::string>{"text:'5'|text:'6'", "integer:7|text:'2024-01-01 00:00:00+00'"}));
  EXPECT_FALSE(RestoreDeclaredTypes(db.get(), "missing", "CREATE TABLE missing (a)").ok());
  EXPECT_TRUE(sqlite3_get_autocommit(db.get()));
}

}  // namespace
}  // namespace airlock::enclave
