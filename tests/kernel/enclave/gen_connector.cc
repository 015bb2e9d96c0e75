// "gen": a test connector that generates rows of every supported type.
//
// Config: {"rows": N, "batch_rows": 4096, "offset": 0, "shape": "all|narrow",
//          "fail": false, "fail_after_rows": -1, "delay_ms": 0,
//          "secret": "env:VAR" (optional), "audit": false, "key": "" }
// - audit: emits {"event":"gen.pull","dataset"} once the rows are delivered.
// - shape "all": id int64, score float64 (null every 7th row), name utf8,
//   flag bool, day date32, ts timestamp[us, UTC], t time64[us], small int32,
//   payload binary, nothing null.
// - shape "narrow": id int64, value float64, name utf8.
// - secret: resolved at pull time; a value other than kExpectedSecret fails
//   the pull with unauthenticated (without quoting the value).
// - fail / fail_after_rows: the pull fails with unavailable after that many rows.
// - delay_ms: sleep before each batch (slow source).
// - key: sent verbatim as the schema's "airlock.key" metadata when non-empty.
#include <chrono>
#include <string>
#include <thread>

#include "airlock/cpp/plugin.hpp"
#include "tests/kernel/enclave/gen_rows.h"

namespace {

using airlock::Status;
using airlock::arrow::Field;
using airlock::arrow::RecordBatchBuilder;
using airlock::arrow::Type;

class GenConnector final : public airlock::sdk::Connector {
 public:
  static airlock::Result<std::unique_ptr<GenConnector>> Create(const airlock::Json& config,
                                                               const airlock::sdk::Host& host) {
    auto c = std::make_unique<GenConnector>();
    c->host_ = host;
    c->rows_ = config.value("rows", int64_t{100});
    c->batch_rows_ = config.value("batch_rows", int64_t{4096});
    c->offset_ = config.value("offset", int64_t{0});
    c->narrow_ = config.value("shape", std::string("all")) == "narrow";
    c->fail_after_ = config.value("fail_after_rows", int64_t{-1});
    if (config.value("fail", false) && c->fail_after_ < 0) c->fail_after_ = c->rows_ / 2;
    c->delay_ms_ = config.value("delay_ms", int64_t{0});
    c->secret_ref_ = config.value("secret", std::string());
    c->audit_ = config.value("audit", false);
    c->key_ = config.value("key", std::string());
    if (c->rows_ < 0 || c->batch_rows_ <= 0) {
      return Status::InvalidArgument("rows must be >= 0 and batch_rows > 0");
    }
    return c;
  }

  airlock::Result<airlock::Catalog> Describe() override { return airlock::Catalog{}; }

  Status Pull(const airlock::PullSpec& spec, airlock::sdk::BatchSink& sink) override {
    if (!secret_ref_.empty()) {
      auto secret = host_.ResolveSecret(secret_ref_);
      if (!secret.ok()) return secret.status();
      if (secret->view() != gen::kExpectedSecret) {
        return Status::Unauthenticated("the source refused the credential");
      }
      // Released here: the connector keeps no credential past its use.
    }
    const std::vector<Field> fields = narrow_ ? gen::NarrowFields() : gen::AllFields();
    RecordBatchBuilder builder(fields, static_cast<size_t>(batch_rows_));
    airlock::arrow::OwnedSchema schema = builder.MakeSchema();
    if (!key_.empty()) {
      Status s =
          airlock::arrow::SetSchemaMetadata(schema, {{airlock::sdk::kKeyColumnsMetadata, key_}});
      if (!s.ok()) return s;
    }
    if (Status s = sink.SendSchema(std::move(schema)); !s.ok()) return s;
    int64_t produced = 0;
    while (produced < rows_) {
      if (sink.cancelled()) return Status::Cancelled("pull cancelled");
      if (delay_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms_));
      const int64_t n = std::min(batch_rows_, rows_ - produced);
      for (int64_t i = 0; i < n; ++i) {
        if (fail_after_ >= 0 && produced + i >= fail_after_) {
          return Status::Unavailable("the source went away after " + std::to_string(fail_after_) +
                                     " rows");
        }
        const int64_t row = offset_ + produced + i;
        if (narrow_) {
          gen::AppendNarrowRow(builder, row);
        } else {
          gen::AppendAllRow(builder, row);
        }
      }
      produced += n;
      if (Status s = sink.SendBatch(builder.Finish()); !s.ok()) return s;
      sink.Progress(static_cast<uint64_t>(produced), 0);
    }
    if (fail_after_ >= 0 && produced >= fail_after_) {
      return Status::Unavailable("the source went away after " + std::to_string(fail_after_) +
                                 " rows");
    }
    if (audit_) return host_.Audit({{"event", "gen.pull"}, {"dataset", spec.dataset}});
    return Status::Ok();
  }

 private:
  airlock::sdk::Host host_;
  int64_t rows_ = 0;
  int64_t batch_rows_ = 4096;
  int64_t offset_ = 0;
  bool narrow_ = false;
  int64_t fail_after_ = -1;
  int64_t delay_ms_ = 0;
  std::string secret_ref_;
  bool audit_ = false;
  std::string key_;
};

}  // namespace

AIRLOCK_CONNECTOR_PLUGIN(GenConnector, "gen", "1.0.0", "Generates test rows of every type", nullptr)
