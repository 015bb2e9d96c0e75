#include "kernel/enclave/batch_feed.h"

#include <array>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "kernel/enclave/sqlite_util.h"

namespace airlock::enclave {
namespace {

// SQLite's default SQLITE_MAX_COLUMN.
constexpr long kMaxFeedColumns = 2000;

struct FeedTable : sqlite3_vtab {
  BatchFeed* feed = nullptr;
  size_t columns = 0;
  // Text of temporal cells, one slot per column: SQLite reads a row's cells
  // into registers and encodes the row before it asks for the next row's.
  std::vector<std::array<char, kMaxTemporalText>> scratch;
};

struct FeedCursor : sqlite3_vtab_cursor {
  size_t row = 0;
};

FeedTable* Table(sqlite3_vtab* vtab) {
  return static_cast<FeedTable*>(vtab);
}

int SetError(sqlite3_vtab* vtab, const std::string& message) {
  sqlite3_free(vtab->zErrMsg);
  vtab->zErrMsg = sqlite3_mprintf("%s", message.c_str());
  return SQLITE_ERROR;
}

// CREATE VIRTUAL TABLE x USING airlock_batch_feed(<columns>)
int Connect(sqlite3* db, void* aux, int argc, const char* const* argv, sqlite3_vtab** out,
            char** error) {
  char* end = nullptr;
  const long columns = argc == 4 ? std::strtol(argv[3], &end, 10) : 0;
  if (argc != 4 || end == argv[3] || *end != '\0' || columns < 1 || columns > kMaxFeedColumns) {
    *error = sqlite3_mprintf("%s takes one argument: the column count (1 to %ld)", kBatchFeedModule,
                             kMaxFeedColumns);
    return SQLITE_ERROR;
  }
  std::string ddl = "CREATE TABLE x(";
  for (long c = 0; c < columns; ++c) {
    if (c > 0) ddl += ",";
    ddl += "c" + std::to_string(c);
  }
  ddl += ")";
  const int rc = sqlite3_declare_vtab(db, ddl.c_str());
  if (rc != SQLITE_OK) return rc;
  sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
  auto table = std::make_unique<FeedTable>();
  table->feed = static_cast<BatchFeed*>(aux);
  table->columns = static_cast<size_t>(columns);
  table->scratch.resize(table->columns);
  *out = table.release();  // owned by SQLite until Disconnect
  return SQLITE_OK;
}

int Disconnect(sqlite3_vtab* vtab) {
  std::unique_ptr<FeedTable> table(Table(vtab));
  sqlite3_free(table->zErrMsg);
  return SQLITE_OK;
}

int BestIndex(sqlite3_vtab* vtab, sqlite3_index_info* info) {
  const BatchFeed* feed = Table(vtab)->feed;
  const size_t rows = feed->view != nullptr ? feed->view->num_rows() : 0;
  info->estimatedRows = static_cast<sqlite3_int64>(rows);
  info->estimatedCost = static_cast<double>(rows) + 1;
  return SQLITE_OK;
}

int Open(sqlite3_vtab*, sqlite3_vtab_cursor** out) {
  *out = std::make_unique<FeedCursor>().release();  // owned by SQLite until Close
  return SQLITE_OK;
}

int Close(sqlite3_vtab_cursor* cursor) {
  std::unique_ptr<FeedCursor> owned(static_cast<FeedCursor*>(cursor));
  return SQLITE_OK;
}

int Filter(sqlite3_vtab_cursor* cursor, int, const char*, int, sqlite3_value**) {
  FeedTable* table = Table(cursor->pVtab);
  const arrow::BatchView* view = table->feed->view;
  if (view != nullptr && view->num_columns() != table->columns) {
    return SetError(cursor->pVtab, "the batch has " + std::to_string(view->num_columns()) +
                                       " columns, the feed " + std::to_string(table->columns));
  }
  static_cast<FeedCursor*>(cursor)->row = 0;
  return SQLITE_OK;
}

int Next(sqlite3_vtab_cursor* cursor) {
  ++static_cast<FeedCursor*>(cursor)->row;
  return SQLITE_OK;
}

int Eof(sqlite3_vtab_cursor* cursor) {
  const arrow::BatchView* view = Table(cursor->pVtab)->feed->view;
  return view == nullptr || static_cast<FeedCursor*>(cursor)->row >= view->num_rows();
}

int RowId(sqlite3_vtab_cursor* cursor, sqlite3_int64* rowid) {
  *rowid = static_cast<sqlite3_int64>(static_cast<FeedCursor*>(cursor)->row);
  return SQLITE_OK;
}

// The hot path: one call per cell.
int Column(sqlite3_vtab_cursor* cursor, sqlite3_context* ctx, int index) {
  FeedTable* table = Table(cursor->pVtab);
  const arrow::BatchView& view = *table->feed->view;
  const size_t c = static_cast<size_t>(index);
  const size_t r = static_cast<FeedCursor*>(cursor)->row;
  if (view.IsNull(c, r)) {
    sqlite3_result_null(ctx);
    return SQLITE_OK;
  }
  char* scratch = table->scratch[c].data();
  switch (view.field(c).type) {
    case arrow::Type::kNull:
      sqlite3_result_null(ctx);
      break;
    case arrow::Type::kBool:
      sqlite3_result_int(ctx, view.GetBool(c, r) ? 1 : 0);
      break;
    case arrow::Type::kInt32:
      sqlite3_result_int(ctx, view.GetInt32(c, r));
      break;
    case arrow::Type::kInt64:
      sqlite3_result_int64(ctx, view.GetInt64(c, r));
      break;
    case arrow::Type::kFloat64:
      sqlite3_result_double(ctx, view.GetDouble(c, r));
      break;
    case arrow::Type::kUtf8: {
      const std::string_view s = view.GetString(c, r);
      sqlite3_result_text(ctx, s.empty() ? "" : s.data(), static_cast<int>(s.size()),
                          SQLITE_STATIC);
      break;
    }
    case arrow::Type::kBinary: {
      const std::string_view s = view.GetString(c, r);
      if (s.empty()) {
        sqlite3_result_zeroblob(ctx, 0);
      } else {
        sqlite3_result_blob(ctx, s.data(), static_cast<int>(s.size()), SQLITE_STATIC);
      }
      break;
    }
    case arrow::Type::kDate32: {
      const size_t n = FormatDate32To(scratch, view.GetDate32(c, r));
      sqlite3_result_text(ctx, scratch, static_cast<int>(n), SQLITE_STATIC);
      break;
    }
    case arrow::Type::kTimestampMicros: {
      const size_t n =
          FormatTimestampTo(scratch, view.GetTimestamp(c, r), !view.field(c).timezone.empty());
      sqlite3_result_text(ctx, scratch, static_cast<int>(n), SQLITE_STATIC);
      break;
    }
    case arrow::Type::kTime64Micros: {
      const size_t n = FormatTimeTo(scratch, view.GetTime(c, r));
      sqlite3_result_text(ctx, scratch, static_cast<int>(n), SQLITE_STATIC);
      break;
    }
  }
  return SQLITE_OK;
}

constexpr sqlite3_module kModule = {
    /*iVersion=*/0,
    /*xCreate=*/Connect,
    /*xConnect=*/Connect,
    /*xBestIndex=*/BestIndex,
    /*xDisconnect=*/Disconnect,
    /*xDestroy=*/Disconnect,
    /*xOpen=*/Open,
    /*xClose=*/Close,
    /*xFilter=*/Filter,
    /*xNext=*/Next,
    /*xEof=*/Eof,
    /*xColumn=*/Column,
    /*xRowid=*/RowId,
    /*xUpdate=*/nullptr,
    /*xBegin=*/nullptr,
    /*xSync=*/nullptr,
    /*xCommit=*/nullptr,
    /*xRollback=*/nullptr,
    /*xFindFunction=*/nullptr,
    /*xRename=*/nullptr,
    /*xSavepoint=*/nullptr,
    /*xRelease=*/nullptr,
    /*xRollbackTo=*/nullptr,
    /*xShadowName=*/nullptr,
};

}  // namespace

Status RegisterBatchFeed(sqlite3* db, BatchFeed* feed) {
  const int rc = sqlite3_create_module_v2(db, kBatchFeedModule, &kModule, feed, nullptr);
  if (rc != SQLITE_OK) {
    return Status::Internal(std::string("cannot register the batch feed: ") + sqlite3_errmsg(db));
  }
  return Status::Ok();
}

}  // namespace airlock::enclave
