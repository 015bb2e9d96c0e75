// A statement whose rows are taken a few at a time: Execute with a row
// limit (PortalSuspended), DECLARE ... CURSOR / FETCH. The statement runs on
// a thread of its own through the endpoint's channel; each batch the
// channel delivers waits there until the session has taken its rows, so a
// cursor holds at most one batch however large its result is.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "airlock/cpp/arrow.hpp"
#include "airlock/cpp/batch.hpp"
#include "airlock/cpp/status.hpp"
#include "endpoint.h"

namespace airlock::tunnels::pgwire {

class RowCursor {
 public:
  // What runs a statement: the endpoint's channel, or the catalog.
  using Runner = std::function<Status(const std::string& sql, sdk::BatchConsumer& consumer)>;

  // Starts `sql` through `run`. The statement stops when the cursor is
  // destroyed, when `endpoint` closes, when `deadline` passes and once
  // `*cancel` is set (the session's CancelRequest flag; it must outlive the
  // cursor).
  RowCursor(Runner run, std::shared_ptr<EndpointState> endpoint, std::string sql,
            std::chrono::steady_clock::time_point deadline, const std::atomic<bool>* cancel);
  // Cancels the statement and waits for its thread.
  ~RowCursor();
  RowCursor(const RowCursor&) = delete;
  RowCursor& operator=(const RowCursor&) = delete;

  // The result columns, once the channel delivered them; the statement's
  // error otherwise. Waits.
  Result<const std::vector<arrow::Field>*> Fields();

  // One row for `emit`: the batch and the row in it.
  using RowSink = std::function<Status(const arrow::BatchView& view, size_t row)>;
  struct Fetched {
    uint64_t rows = 0;
    bool finished = false;  // no rows are left
  };
  // Passes up to `max_rows` rows (0: all that are left) to `emit`, waiting
  // for batches as needed. An error from `emit` or the statement ends it.
  Result<Fetched> Fetch(uint64_t max_rows, const RowSink& emit);

  // Asks the statement to stop (a CancelRequest); Fetch then fails.
  void Cancel();
  bool cancelled() const;
  // Rows taken so far.
  uint64_t position() const { return position_; }

 private:
  class Consumer;
  void Run(const std::string& sql);

  const Runner run_;
  const std::shared_ptr<EndpointState> endpoint_;
  const std::chrono::steady_clock::time_point deadline_;
  const std::atomic<bool>* const cancel_;

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  // GUARDED_BY(mutex_):
  bool have_fields_ = false;
  std::vector<arrow::Field> fields_;
  std::optional<arrow::OwnedArray> batch_;  // handed over, not yet taken whole
  bool done_ = false;                       // the statement ended
  Status status_;                           // how it ended
  bool stop_ = false;                       // the cursor asks it to stop

  // The session's side: the batch being read.
  std::optional<arrow::OwnedArray> current_;
  std::optional<arrow::BatchView> view_;
  size_t next_row_ = 0;
  uint64_t position_ = 0;

  std::thread thread_;
};

}  // namespace airlock::tunnels::pgwire
