#include "query_job.h"

#include <memory>
#include <optional>
#include <vector>

#include "airlock/cpp/arrow.hpp"
#include "airlock/cpp/batch.hpp"
#include "result_format.h"
#include "router.h"

namespace airlock::tunnels::https {
namespace {

using Clock = std::chrono::steady_clock;

// Encodes batches as they arrive and writes each one on, once the first has
// been encoded (see RunQuery).
class ResultStream final : public sdk::BatchConsumer {
 public:
  ResultStream(const EndpointState& endpoint, ResultFormat format, const QueryLimits& limits,
               const sdk::Host& host, ResponseChannel& out, unsigned version, bool keep_alive)
      : endpoint_(endpoint),
        encoder_(MakeResultEncoder(format)),
        limits_(limits),
        host_(host),
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
    pending_ = encoder_->Begin(fields_);
    return Status::Ok();
  }

  Status OnBatch(arrow::OwnedArray batch) override {
    if (!have_schema_) return Fail(Status::Internal("the channel sent a batch before its schema"));
    if (Expired()) {
      deadline_hit_ = true;
      return Status::DeadlineExceeded("query_timeout_ms elapsed");
    }
    if (WindowEnded()) {
      window_ended_ = true;
      return Status::Cancelled("the access window ended");
    }
    auto view = arrow::BatchView::Make(fields_, *batch.get());
    if (!view.ok()) return Fail(view.status());
    for (size_t row = 0; row < view->num_rows(); ++row) {
      if (rows_ >= limits_.max_rows) {
        limit_hit_ = true;
        return Status::ResourceExhausted("result has more than max_rows rows");
      }
      encoder_->AppendRow(pending_, *view, row);
      ++rows_;
      if (pending_.size() >= limits_.chunk_bytes && !Flush()) return Gone();
    }
    // Batch by batch: whatever this batch produced goes out now.
    if (!Flush()) return Gone();
    return Status::Ok();
  }

  bool IsCancelled() override {
    return endpoint_.closed() || out_.broken() || Expired() || WindowEnded();
  }

  // Answers once the channel has returned `status`.
  void Finish(const Status& status) {
    if (out_.broken()) return;  // nobody left to tell
    if (OkResult(status)) {
      std::string tail = std::move(pending_);
      if (!have_schema_) tail = encoder_->Begin(fields_);  // a channel that sent nothing
      tail += encoder_->End(rows_);
      if (!streaming_) {
        Response res = JsonResponse(http::status::ok, std::move(tail), version_, keep_alive_);
        res.set(http::field::content_type, encoder_->content_type());
        res.set(kRowCountField, std::to_string(rows_));
        out_.Respond(std::move(res));
        return;
      }
      http::fields trailers;
      trailers.set(kRowCountField, std::to_string(rows_));
      out_.EndChunked(std::move(tail), std::move(trailers), keep_alive_);
      return;
    }
    const auto [http_status, code, message] = Describe(status);
    if (!streaming_) {
      out_.Respond(JsonError(http_status, code, message, version_, keep_alive_));
      return;
    }
    std::string tail = std::move(pending_);
    tail += encoder_->Failed(rows_, code, message);
    if (encoder_->truncate_on_failure()) {
      out_.AbortChunked(std::move(tail));
    } else {
      out_.EndChunked(std::move(tail), {}, /*keep_alive=*/false);
    }
  }

 private:
  struct Failure {
    http::status http_status;
    std::string code;
    std::string message;
  };

  bool OkResult(const Status& status) const {
    return status.ok() && !limit_hit_ && !deadline_hit_ && !window_ended_ &&
           !own_error_.has_value();
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
    const bool stopped =
        status.code() == StatusCode::kCancelled || status.code() == StatusCode::kDeadlineExceeded;
    if (endpoint_.closed()) return Closed(endpoint_.close_reason());
    if (window_ended_ || (stopped && WindowEnded())) return Closed(sdk::CloseReason::kWindowEnded);
    if (deadline_hit_ || (stopped && Expired())) {
      return {http::status::gateway_timeout, "deadline_exceeded",
              "the query did not finish within " + std::to_string(limits_.timeout.count()) + " ms"};
    }
    return {HttpStatusFor(status.code()), StatusCodeName(status.code()), status.message()};
  }

  static Failure Closed(sdk::CloseReason reason) {
    const ClosedText text = DescribeClosed(reason);
    return {text.status, std::string(text.code), std::string(text.message)};
  }

  Status Fail(Status status) {
    own_error_ = status;
    return status;
  }

  static Status Gone() { return Status::Cancelled("the client connection is gone"); }

  bool Expired() const { return Clock::now() > deadline_; }
  bool WindowEnded() const { return NowUnixSeconds(host_) > endpoint_.not_after(); }

  // Sends what is pending, starting the chunked response first if need be.
  bool Flush() {
    if (!streaming_) {
      ResponseHeader header{http::status::ok, version_};
      header.set(http::field::content_type, encoder_->content_type());
      header.set(http::field::trailer, kRowCountField);
      SetCommonHeaders(header);
      header.keep_alive(keep_alive_);
      if (!out_.BeginChunked(std::move(header))) return false;
      streaming_ = true;
    }
    if (pending_.empty()) return !out_.broken();
    const bool written = out_.WriteChunk(pending_);
    pending_.clear();
    return written;
  }

  const EndpointState& endpoint_;
  const std::unique_ptr<ResultEncoder> encoder_;
  const QueryLimits& limits_;
  const sdk::Host& host_;
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
  bool window_ended_ = false;
  std::optional<Status> own_error_;
};

// The answer when the endpoint closed before the job could use the channel.
Response Closed(const EndpointState& endpoint, unsigned version) {
  return ClosedError(endpoint.close_reason(), version, false);
}

}  // namespace

void RunQuery(EndpointState& endpoint, const std::string& sql, ResultFormat format,
              const QueryLimits& limits, const sdk::Host& host, ResponseChannel& out,
              unsigned version, bool keep_alive) {
  ResultStream stream(endpoint, format, limits, host, out, version, keep_alive);
  Status status;
  {
    auto lease = endpoint.Acquire();
    if (!lease.has_value()) {
      out.Respond(Closed(endpoint, version));
      return;
    }
    status = lease->channel().Query(sql, stream);
  }  // the channel is not touched after this point: close() may proceed
  stream.Finish(status);
}

void RunTables(EndpointState& endpoint, const std::optional<std::string>& table,
               ResponseChannel& out, unsigned version, bool keep_alive) {
  std::optional<Result<Json>> tables;
  {
    auto lease = endpoint.Acquire();
    if (!lease.has_value()) {
      out.Respond(Closed(endpoint, version));
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
  const Json& document = tables->value();
  const auto list = document.find("tables");
  if (!document.is_object() || list == document.end() || !list->is_array()) {
    out.Respond(JsonError(http::status::bad_gateway, "bad_result",
                          "the enclave returned a schema document without a \"tables\" list",
                          version, keep_alive));
    return;
  }
  const auto dump = [](const Json& j) {
    return j.dump(-1, ' ', false, Json::error_handler_t::replace);
  };
  if (!table.has_value()) {
    out.Respond(JsonResponse(http::status::ok, dump(document), version, keep_alive));
    return;
  }
  for (const Json& entry : *list) {
    const auto name = entry.find("name");
    if (entry.is_object() && name != entry.end() && name->is_string() &&
        name->get_ref<const std::string&>() == *table) {
      out.Respond(JsonResponse(http::status::ok, dump(entry), version, keep_alive));
      return;
    }
  }
  out.Respond(JsonError(http::status::not_found, "not_found", "no table named '" + *table + "'",
                        version, keep_alive));
}

}  // namespace airlock::tunnels::https
