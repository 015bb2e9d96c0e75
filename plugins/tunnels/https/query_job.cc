#include "query_job.h"

#include <optional>
#include <vector>

#include "airlock/cpp/arrow.hpp"
#include "airlock/cpp/batch.hpp"
#include "json_rows.h"

namespace airlock::tunnels::https {
namespace {

using Clock = std::chrono::steady_clock;

// Converts batches to JSON rows as they arrive; buffers the first
// `stream_threshold_bytes`, then streams.
class JsonResultStream final : public sdk::BatchConsumer {
 public:
  JsonResultStream(const EndpointState& endpoint, const QueryLimits& limits, ResponseChannel& out,
                   unsigned version, bool keep_alive)
      : endpoint_(endpoint),
        limits_(limits),
        out_(out),
        version_(version),
        keep_alive_(keep_alive),
        deadline_(Clock::now() + limits.timeout) {}

  Status OnSchema(arrow::OwnedSchema schema) override {
    if (have_schema_) return Fail(Status::Internal("the channel sent a second schema"));
    if (!schema.valid() || schema->format == nullptr || std::string_view(schema->format) != "+s") {
      return Fail(Status::Internal("the channel sent a result schema that is not a struct"));
    }
    if (schema->n_children > 0 && schema->children == nullptr) {
      return Fail(Status::Internal("the channel sent a struct schema without children"));
    }
    for (int64_t i = 0; i < schema->n_children; ++i) {
      if (schema->children[i] == nullptr) {
        return Fail(Status::Internal("the channel sent a NULL column schema"));
      }
      auto field = arrow::ParseField(*schema->children[i]);
      if (!field.ok()) return Fail(field.status());
      fields_.push_back(std::move(field).value());
    }
    have_schema_ = true;
    return Status::Ok();
  }

  Status OnBatch(arrow::OwnedArray batch) override {
    if (!have_schema_) return Fail(Status::Internal("the channel sent a batch before its schema"));
    if (Expired()) {
      deadline_hit_ = true;
      return Status::DeadlineExceeded("query_timeout_ms elapsed");
    }
    auto view = arrow::BatchView::Make(fields_, *batch.get());
    if (!view.ok()) return Fail(view.status());
    for (size_t row = 0; row < view->num_rows(); ++row) {
      if (rows_ >= limits_.max_rows) {
        limit_hit_ = true;
        return Status::ResourceExhausted("result has more than max_rows rows");
      }
      if (rows_ != 0) pending_.push_back(',');
      AppendRowJson(pending_, *view, row);
      ++rows_;
      if (pending_.size() >= limits_.stream_threshold_bytes && !Flush()) {
        return Status::Cancelled("the client connection is gone");
      }
    }
    return Status::Ok();
  }

  bool IsCancelled() override { return endpoint_.closed() || out_.broken() || Expired(); }

  // Answers once the channel has returned `status`.
  void Finish(const Status& status) {
    if (out_.broken()) return;  // nobody left to tell
    if (!streaming_ && OkResult(status)) {
      std::string body = Prefix();
      body += pending_;
      body += "],\"row_count\":" + std::to_string(rows_) + "}";
      out_.Respond(JsonResponse(http::status::ok, std::move(body), version_, keep_alive_));
      return;
    }
    if (streaming_ && OkResult(status)) {
      std::string tail = std::move(pending_);
      tail += "],\"row_count\":" + std::to_string(rows_) + "}";
      out_.EndChunked(std::move(tail), keep_alive_);
      return;
    }
    const auto [http_status, code, message] = Describe(status);
    if (!streaming_) {
      out_.Respond(JsonError(http_status, code, message, version_, keep_alive_));
      return;
    }
    std::string tail = std::move(pending_);
    tail += "],\"row_count\":" + std::to_string(rows_) +
            ",\"error\":" + ErrorObject(code, message) + "}";
    out_.EndChunked(std::move(tail), /*keep_alive=*/false);
  }

 private:
  struct Failure {
    http::status http_status;
    std::string code;
    std::string message;
  };

  bool OkResult(const Status& status) const {
    return status.ok() && !limit_hit_ && !deadline_hit_ && !own_error_.has_value();
  }

  Failure Describe(const Status& status) const {
    if (limit_hit_) {
      return {http::status::payload_too_large, "result_too_large",
              "the result has more than " + std::to_string(limits_.max_rows) +
                  " rows (max_rows); narrow the query"};
    }
    if (own_error_.has_value()) {
      return {http::status::bad_gateway, "bad_result",
              "the enclave returned a result the tunnel cannot read: " + own_error_->message()};
    }
    if (endpoint_.closed()) {
      return {http::status::gone, "revoked", "this endpoint has been revoked"};
    }
    if (deadline_hit_ || (Expired() && (status.code() == StatusCode::kCancelled ||
                                        status.code() == StatusCode::kDeadlineExceeded))) {
      return {http::status::gateway_timeout, "deadline_exceeded",
              "the query did not finish within " + std::to_string(limits_.timeout.count()) + " ms"};
    }
    return {HttpStatusFor(status.code()), StatusCodeName(status.code()), status.message()};
  }

  Status Fail(Status status) {
    own_error_ = status;
    return status;
  }

  bool Expired() const { return Clock::now() > deadline_; }

  std::string Prefix() const { return "{\"columns\":" + ColumnsJson(fields_) + ",\"rows\":["; }

  // Sends what is pending, starting the chunked response first if need be.
  bool Flush() {
    if (!streaming_) {
      if (!out_.BeginChunked(http::status::ok, version_, keep_alive_)) return false;
      streaming_ = true;
      pending_.insert(0, Prefix());
    }
    const bool written = out_.WriteChunk(pending_);
    pending_.clear();
    return written;
  }

  const EndpointState& endpoint_;
  const QueryLimits& limits_;
  ResponseChannel& out_;
  const unsigned version_;
  const bool keep_alive_;
  const Clock::time_point deadline_;

  bool have_schema_ = false;
  std::vector<arrow::Field> fields_;
  std::string pending_;
  uint64_t rows_ = 0;
  bool streaming_ = false;
  bool limit_hit_ = false;
  bool deadline_hit_ = false;
  std::optional<Status> own_error_;
};

Response Revoked(unsigned version) {
  return JsonError(http::status::gone, "revoked", "this endpoint has been revoked", version, false);
}

}  // namespace

void RunQuery(EndpointState& endpoint, const std::string& sql, const QueryLimits& limits,
              ResponseChannel& out, unsigned version, bool keep_alive) {
  JsonResultStream stream(endpoint, limits, out, version, keep_alive);
  Status status;
  {
    auto lease = endpoint.Acquire();
    if (!lease.has_value()) {
      out.Respond(Revoked(version));
      return;
    }
    status = lease->channel().Query(sql, stream);
  }  // the channel is not touched after this point: close() may proceed
  stream.Finish(status);
}

void RunTables(EndpointState& endpoint, ResponseChannel& out, unsigned version, bool keep_alive) {
  std::optional<Result<Json>> tables;
  {
    auto lease = endpoint.Acquire();
    if (!lease.has_value()) {
      out.Respond(Revoked(version));
      return;
    }
    tables.emplace(lease->channel().Tables());
  }
  if (!tables->ok()) {
    const Status& status = tables->status();
    out.Respond(JsonError(HttpStatusFor(status.code()), StatusCodeName(status.code()),
                          status.message(), version, keep_alive));
    return;
  }
  out.Respond(JsonResponse(http::status::ok,
                           tables->value().dump(-1, ' ', false, Json::error_handler_t::replace),
                           version, keep_alive));
}

}  // namespace airlock::tunnels::https
