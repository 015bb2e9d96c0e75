// Test tunnel: publishes a fake URL per request, runs the spec's optional
// "query" through the host channel at open, audits its own close.
#include "airlock/cpp/plugin.hpp"

namespace {

using airlock::Result;
using airlock::Status;

class RowCounter : public airlock::sdk::BatchConsumer {
 public:
  Status OnSchema(airlock::arrow::OwnedSchema schema) override {
    schema_ = std::move(schema);
    return Status::Ok();
  }
  Status OnBatch(airlock::arrow::OwnedArray batch) override {
    rows += batch->length;
    return Status::Ok();
  }
  int64_t rows = 0;

 private:
  airlock::arrow::OwnedSchema schema_;
};

class TestEndpoint : public airlock::sdk::TunnelEndpoint {
 public:
  TestEndpoint(airlock::sdk::Host host, std::string request_id)
      : host_(std::move(host)), request_id_(std::move(request_id)) {}
  ~TestEndpoint() override {
    (void)host_.Audit({{"event", "tunnel.closed"}, {"request_id", request_id_}, {"why", why_}});
  }
  void SetCloseReason(airlock::sdk::CloseReason reason) override {
    why_ = reason == airlock::sdk::CloseReason::kWindowEnded ? "window_ended" : "other";
  }
  // Audits each extension; refuses a window end that is not later.
  Status ExtendWindow(int64_t not_after) override {
    if (not_after <= not_after_) return Status::InvalidArgument("not later");
    not_after_ = not_after;
    return host_.Audit(
        {{"event", "tunnel.extended"}, {"request_id", request_id_}, {"not_after", not_after}});
  }

 private:
  airlock::sdk::Host host_;
  std::string request_id_;
  std::string why_ = "unsaid";
  int64_t not_after_ = 0;
};

class TestTunnel : public airlock::sdk::TunnelTransport {
 public:
  static Result<std::unique_ptr<TestTunnel>> Create(const airlock::Json& /*config*/,
                                                    const airlock::sdk::Host& host) {
    auto made = std::make_unique<TestTunnel>();
    made->host_ = host;
    return made;
  }

  Result<airlock::sdk::TunnelOpening> Open(const airlock::Json& spec,
                                           airlock::sdk::QueryChannel channel) override {
    std::string request_id;
    AIRLOCK_RETURN_IF_ERROR(
        airlock::json_read::String(spec, "request_id", &request_id, true, "endpoint"));
    if (request_id == "refuse") return Status::FailedPrecondition("enclave is not sealed");
    airlock::sdk::TunnelOpening opening;
    opening.endpoint = std::make_unique<TestEndpoint>(host_, request_id);
    if (request_id == "bad-grant") {
      opening.grant = {{"credential", "c-" + request_id}};  // no url
      return opening;
    }
    opening.grant = {{"url", "airlock-test://" + request_id}, {"credential", "c-" + request_id}};
    if (auto it = spec.find("query"); it != spec.end() && it->is_string()) {
      RowCounter counter;
      AIRLOCK_RETURN_IF_ERROR(channel.Query(it->get<std::string>(), counter));
      opening.grant["rows"] = counter.rows;
    }
    return opening;
  }

 private:
  airlock::sdk::Host host_;
};

}  // namespace

AIRLOCK_TUNNEL_PLUGIN(TestTunnel, "test-tunnel", "0.0.9", "Fake endpoints (tests only)", nullptr)
