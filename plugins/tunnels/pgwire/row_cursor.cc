#include "row_cursor.h"

#include <utility>

#include "types.h"

namespace airlock::tunnels::pgwire {

// Runs on the cursor's thread: hands each batch over and waits until the
// session has taken it (or the cursor stops).
class RowCursor::Consumer final : public sdk::BatchConsumer {
 public:
  explicit Consumer(RowCursor& cursor) : cursor_(cursor) {}

  Status OnSchema(arrow::OwnedSchema schema) override {
    auto fields = ResultFields(schema);
    if (!fields.ok()) return fields.status();
    std::lock_guard<std::mutex> lock(cursor_.mutex_);
    cursor_.fields_ = std::move(fields).value();
    cursor_.have_fields_ = true;
    cursor_.changed_.notify_all();
    return Status::Ok();
  }

  Status OnBatch(arrow::OwnedArray batch) override {
    std::unique_lock<std::mutex> lock(cursor_.mutex_);
    if (!cursor_.have_fields_)
      return Status::Internal("the channel sent a batch before its schema");
    // At most one batch waits: the statement pauses here until it is taken.
    // It also looks up now and then, so that a closing endpoint (which waits
    // for this statement's lease) or a cancel is not kept waiting.
    while (cursor_.batch_.has_value() && !cursor_.stop_) {
      cursor_.changed_.wait_for(lock, std::chrono::milliseconds(50));
      lock.unlock();
      const bool cancelled = Stopped();
      lock.lock();
      if (cancelled) return Status::Cancelled("the cursor's statement was stopped");
    }
    if (cursor_.stop_) return Status::Cancelled("the cursor was closed");
    cursor_.batch_ = std::move(batch);
    cursor_.changed_.notify_all();
    return Status::Ok();
  }

  bool IsCancelled() override {
    if (Stopped()) return true;
    std::lock_guard<std::mutex> lock(cursor_.mutex_);
    return cursor_.stop_;
  }

 private:
  // Reasons to stop that do not need the lock.
  bool Stopped() const {
    return cursor_.endpoint_->closed() || std::chrono::steady_clock::now() > cursor_.deadline_ ||
           cursor_.cancel_->load();
  }

  RowCursor& cursor_;
};

RowCursor::RowCursor(Runner run, std::shared_ptr<EndpointState> endpoint, std::string sql,
                     std::chrono::steady_clock::time_point deadline,
                     const std::atomic<bool>* cancel)
    : run_(std::move(run)), endpoint_(std::move(endpoint)), deadline_(deadline), cancel_(cancel) {
  thread_ = std::thread([this, sql = std::move(sql)] { Run(sql); });
}

RowCursor::~RowCursor() {
  Cancel();
  if (thread_.joinable()) thread_.join();
}

void RowCursor::Run(const std::string& sql) {
  Status status;
  try {
    Consumer consumer(*this);
    status = run_(sql, consumer);
  } catch (const std::exception& e) {
    status = Status::Internal(std::string("cursor failed: ") + e.what());
  }
  std::lock_guard<std::mutex> lock(mutex_);
  done_ = true;
  status_ = std::move(status);
  changed_.notify_all();
}

void RowCursor::Cancel() {
  std::lock_guard<std::mutex> lock(mutex_);
  stop_ = true;
  changed_.notify_all();
}

bool RowCursor::cancelled() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stop_;
}

Result<const std::vector<arrow::Field>*> RowCursor::Fields() {
  std::unique_lock<std::mutex> lock(mutex_);
  changed_.wait(lock, [&] { return have_fields_ || done_; });
  if (have_fields_) return &fields_;
  if (!status_.ok()) return status_;
  return Status::Internal("the statement returned no rows");
}

Result<RowCursor::Fetched> RowCursor::Fetch(uint64_t max_rows, const RowSink& emit) {
  Fetched fetched;
  for (;;) {
    if (view_.has_value() && next_row_ < view_->num_rows()) {
      if (max_rows != 0 && fetched.rows == max_rows) return fetched;
      AIRLOCK_RETURN_IF_ERROR(emit(*view_, next_row_));
      ++next_row_;
      ++position_;
      ++fetched.rows;
      continue;
    }
    // The batch is read: take the next one, or learn that none will come.
    view_.reset();
    current_.reset();
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return batch_.has_value() || done_ || stop_; });
    if (batch_.has_value()) {
      current_ = std::move(batch_);
      batch_.reset();
      changed_.notify_all();  // the statement may go on to its next batch
      auto view = arrow::BatchView::Make(fields_, *current_->get());
      if (!view.ok()) return view.status();
      view_ = std::move(view).value();
      next_row_ = 0;
      continue;
    }
    if (stop_) return Status::Cancelled("the cursor was closed");
    if (!status_.ok()) return status_;
    fetched.finished = true;
    return fetched;
  }
}

}  // namespace airlock::tunnels::pgwire
