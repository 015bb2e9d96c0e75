// A virtual table that reads the Arrow batch being ingested, so a writer lane
// inserts a whole batch with one `INSERT INTO t SELECT * FROM <feed>` step.
//
// Why: binding every cell to a prepared multi-row INSERT (sqlite3_bind_*,
// then OP_Variable copies, one co-routine yield per row and a reset per 64
// rows) cost about a third of the writer lane's CPU. Through the feed, SQLite
// asks for each cell once (xColumn) and runs one insert loop per batch.
//
// The values handed to SQLite are exactly the ones the bind path produced
// (see the type mapping in sqlite_util.h): integers, doubles, text and blobs
// straight from the Arrow buffers (borrowed, not copied), temporal cells as
// their canonical text.
//
// Usage, on one connection, from one thread:
//   BatchFeed feed;
//   RegisterBatchFeed(db, &feed);                       // once per connection
//   CREATE VIRTUAL TABLE temp.f USING airlock_batch_feed(<columns>);
//   feed.view = &view;  step "INSERT INTO t SELECT * FROM temp.f";  feed.view = nullptr;
// The feed yields no rows while `view` is null; a view whose column count
// differs from the table's declared count makes the statement fail.
#pragma once

#include <sqlite3.h>

#include "airlock/cpp/arrow.hpp"
#include "airlock/cpp/status.hpp"

namespace airlock::enclave {

inline constexpr char kBatchFeedModule[] = "airlock_batch_feed";

// The batch the feed tables of one connection currently read. The view (and
// the array behind it) must stay valid while a statement reads the feed.
struct BatchFeed {
  const arrow::BatchView* view = nullptr;
};

// Registers the module on `db`; `feed` must outlive the connection's feed
// tables. Feed tables are direct-only (not usable from views or triggers).
Status RegisterBatchFeed(sqlite3* db, BatchFeed* feed);

}  // namespace airlock::enclave
