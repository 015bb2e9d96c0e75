#include "kernel/plugin_host/plugin_instances.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "airlock/cpp/arrow.hpp"
#include "kernel/plugin_host/plugin_loader.h"
#include "tests/kernel/plugin_host/test_support.h"

namespace airlock::plugin_host {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using testing::RecordingCallbacks;
using testing::RequestBuilder;
using testing::TestPlugin;

// Keeps everything delivered to it, as the enclave's staging would.
class CollectingConsumer : public sdk::BatchConsumer {
 public:
  Status OnSchema(arrow::OwnedSchema schema) override {
    ++schemas;
    schema_ = std::move(schema);
    return Status::Ok();
  }
  Status OnBatch(arrow::OwnedArray batch) override {
    if (!refuse_batches.ok()) return refuse_batches;
    batches_.push_back(std::move(batch));
    return Status::Ok();
  }
  bool IsCancelled() override { return cancel_after > 0 && batches_.size() >= cancel_after; }
  void OnProgress(uint64_t rows, uint64_t /*bytes*/) override { progress_rows = rows; }

  // Every row, each column rendered as text.
  std::vector<std::vector<std::string>> Rows() const {
    std::vector<std::vector<std::string>> rows;
    for (const auto& batch : batches_) {
      auto view = arrow::BatchView::Make(*schema_.get(), *batch.get());
      EXPECT_TRUE(view.ok()) << view.status().ToString();
      if (!view.ok()) return rows;
      for (size_t r = 0; r < view->num_rows(); ++r) {
        std::vector<std::string> row;
        for (size_t c = 0; c < view->num_columns(); ++c) {
          if (view->field(c).type == arrow::Type::kInt64) {
            row.push_back(std::to_string(view->GetInt64(c, r)));
          } else {
            row.emplace_back(view->GetString(c, r));
          }
        }
        rows.push_back(std::move(row));
      }
    }
    return rows;
  }
  std::vector<std::string> ColumnNames() const {
    std::vector<std::string> names;
    for (int64_t i = 0; i < schema_->n_children; ++i) names.push_back(schema_->children[i]->name);
    return names;
  }
  size_t batch_count() const { return batches_.size(); }

  int schemas = 0;
  uint64_t progress_rows = 0;
  size_t cancel_after = 0;
  Status refuse_batches = Status::Ok();

 private:
  arrow::OwnedSchema schema_;
  std::vector<arrow::OwnedArray> batches_;
};

class PluginInstancesTest : public ::testing::Test {
 protected:
  std::shared_ptr<PluginLibrary> Load(std::string_view file) {
    auto loaded = loader_.Load(TestPlugin(file), std::nullopt);
    EXPECT_TRUE(loaded.ok()) << loaded.status().ToString();
    return loaded.ok() ? *loaded : nullptr;
  }

  RecordingCallbacks callbacks_;
  HostServicesTable table_{callbacks_};
  PluginLoader loader_{table_.get()};
};

// ---------------------------------------------------------------------------
// Identity

TEST_F(PluginInstancesTest, IdentityReturnsAParsedPrincipalInItsOwnName) {
  auto identity = IdentityPlugin::Create(Load("test_identity"), {{"tenant", "acme"}});
  ASSERT_TRUE(identity.ok()) << identity.status().ToString();
  RequestBuilder request;
  request.Header("x-test-user", "alice").Header("X-Test-Groups", "eng,oncall");
  request.Header("X-Test-Kind", "service");
  auto principal = (*identity)->Authenticate(request.view());
  ASSERT_TRUE(principal.ok()) << principal.status().ToString();
  EXPECT_EQ(principal->subject, "alice");
  EXPECT_EQ(principal->kind, PrincipalKind::kService);
  EXPECT_THAT(principal->groups, ElementsAre("eng", "oncall"));
  EXPECT_EQ(principal->tenant, "acme");
  EXPECT_EQ(principal->provider, "test-identity");  // not what the plugin claimed
  EXPECT_EQ(principal->attributes["remote"], "127.0.0.1:5555");
  EXPECT_EQ(principal->attributes["method"], "POST");
  EXPECT_EQ((*identity)->manifest().name, "test-identity");
}

TEST_F(PluginInstancesTest, IdentityStatusesPassThroughWithTheirCodes) {
  auto identity = IdentityPlugin::Create(Load("test_identity"), nlohmann::json::object());
  ASSERT_TRUE(identity.ok());
  RequestBuilder none;
  auto not_applicable = (*identity)->Authenticate(none.view());
  EXPECT_EQ(not_applicable.status().code(), StatusCode::kNotApplicable);
  EXPECT_THAT(not_applicable.status().message(), HasSubstr("no X-Test-User header"));

  RequestBuilder locked;
  locked.Header("X-Test-User", "mallory");
  auto refused = (*identity)->Authenticate(locked.view());
  EXPECT_EQ(refused.status().code(), StatusCode::kUnauthenticated);
  EXPECT_THAT(refused.status().message(),
              HasSubstr("plugin test-identity: user mallory is locked"));
}

TEST_F(PluginInstancesTest, ExceptionInsideAPluginBecomesInternal) {
  auto identity = IdentityPlugin::Create(Load("test_identity"), nlohmann::json::object());
  ASSERT_TRUE(identity.ok());
  RequestBuilder request;
  request.Header("X-Test-Throw", "1");
  auto thrown = (*identity)->Authenticate(request.view());
  EXPECT_EQ(thrown.status().code(), StatusCode::kInternal);
  EXPECT_THAT(thrown.status().message(), HasSubstr("boom from identity"));
  // The instance still works afterwards.
  RequestBuilder good;
  good.Header("X-Test-User", "bob");
  EXPECT_TRUE((*identity)->Authenticate(good.view()).ok());
}

TEST_F(PluginInstancesTest, InvalidPrincipalsBecomeInternal) {
  auto sdk_identity = IdentityPlugin::Create(Load("test_identity"), nlohmann::json::object());
  ASSERT_TRUE(sdk_identity.ok());
  RequestBuilder empty_subject;
  empty_subject.Header("X-Test-Empty-Subject", "1");
  auto empty = (*sdk_identity)->Authenticate(empty_subject.view());
  EXPECT_EQ(empty.status().code(), StatusCode::kInternal);
  EXPECT_THAT(empty.status().message(),
              HasSubstr("plugin test-identity returned an invalid principal: "
                        "principal.subject is empty"));

  auto raw = IdentityPlugin::Create(Load("raw_identity_garbage"), nlohmann::json::object());
  ASSERT_TRUE(raw.ok()) << raw.status().ToString();
  const std::pair<const char*, const char*> cases[] = {
      {"garbage", "not valid JSON"},
      {"no-subject", "principal.subject is required"},
      {"bad-kind", "principal.kind must be"},
      {"no-buffer", "no document"},
      {"huge", "more than 65536"},
  };
  for (const auto& [mode, reason] : cases) {
    RequestBuilder request;
    request.Header("X-Raw", mode);
    auto result = (*raw)->Authenticate(request.view());
    ASSERT_FALSE(result.ok()) << mode;
    EXPECT_EQ(result.status().code(), StatusCode::kInternal) << mode;
    EXPECT_THAT(result.status().message(),
                HasSubstr("plugin raw-identity-garbage returned an invalid principal: "))
        << mode;
    EXPECT_THAT(result.status().message(), HasSubstr(reason)) << mode;
  }
  RequestBuilder odd;
  odd.Header("X-Raw", "odd-code");
  EXPECT_EQ((*raw)->Authenticate(odd.view()).status().code(), StatusCode::kUnknown);
}

TEST_F(PluginInstancesTest, CreateFailuresAndKindMismatchesAreReported) {
  auto refused = IdentityPlugin::Create(Load("test_identity"), {{"refuse", true}});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.status().message(),
              HasSubstr("plugin test-identity: configuration refused: refuse"));

  auto wrong = PolicyPlugin::Create(Load("test_identity"), nlohmann::json::object());
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(wrong.status().message(),
              HasSubstr("plugin test-identity is an identity plugin, not a policy plugin"));
  EXPECT_FALSE(ConnectorPlugin::Create(nullptr, {}).ok());
}

// ---------------------------------------------------------------------------
// Policy

PolicyInput MakeInput(std::vector<std::string> groups, std::string purpose) {
  PolicyInput input;
  input.principal.subject = "alice";
  input.principal.groups = std::move(groups);
  input.request.id = "r-1";
  input.request.datasets = {"orders"};
  input.request.purpose = std::move(purpose);
  input.now_unix_seconds = 1'700'000'000;
  return input;
}

TEST_F(PluginInstancesTest, PolicyDecisionsAreParsed) {
  auto policy = PolicyPlugin::Create(Load("test_policy"), {{"allow_group", "analysts"}});
  ASSERT_TRUE(policy.ok()) << policy.status().ToString();
  auto allow = (*policy)->Evaluate(MakeInput({"analysts"}, "audit"));
  ASSERT_TRUE(allow.ok()) << allow.status().ToString();
  EXPECT_EQ(allow->effect, Effect::kAllow);
  EXPECT_EQ(allow->rule, "group-allow");
  EXPECT_EQ(allow->max_window_seconds, 600);
  ASSERT_EQ(allow->obligations.count("orders"), 1u);
  EXPECT_THAT(allow->obligations["orders"].columns, ElementsAre("id"));
  EXPECT_EQ(allow->obligations["orders"].masks["email"], "redact");

  auto approval = (*policy)->Evaluate(MakeInput({"eng"}, "audit"));
  ASSERT_TRUE(approval.ok());
  EXPECT_EQ(approval->effect, Effect::kNeedsApproval);
  EXPECT_THAT(approval->approval.groups, ElementsAre("approvers"));
  EXPECT_EQ(approval->approval.count, 2);
}

TEST_F(PluginInstancesTest, PolicyGarbageAndExceptionsBecomeInternal) {
  auto policy = PolicyPlugin::Create(Load("test_policy"), {{"allow_group", "analysts"}});
  ASSERT_TRUE(policy.ok());
  auto garbage = (*policy)->Evaluate(MakeInput({}, "garbage"));
  EXPECT_EQ(garbage.status().code(), StatusCode::kInternal);
  EXPECT_THAT(garbage.status().message(),
              HasSubstr("plugin test-policy returned an invalid decision: "
                        "decision needs_approval without approver groups"));
  auto thrown = (*policy)->Evaluate(MakeInput({}, "throw"));
  EXPECT_EQ(thrown.status().code(), StatusCode::kInternal);
  EXPECT_THAT(thrown.status().message(), HasSubstr("policy exploded"));
}

TEST_F(PluginInstancesTest, PolicyReloadReplacesOrKeepsThePolicy) {
  auto policy = PolicyPlugin::Create(Load("test_policy"), {{"allow_group", "analysts"}});
  ASSERT_TRUE(policy.ok());
  ASSERT_TRUE((*policy)->Reload({{"allow_group", "eng"}}).ok());
  EXPECT_EQ((*policy)->Evaluate(MakeInput({"eng"}, "x"))->effect, Effect::kAllow);
  const Status bad = (*policy)->Reload({{"allow_group", 7}});
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.message(), HasSubstr("config.allow_group must be a string"));
  EXPECT_EQ((*policy)->Evaluate(MakeInput({"eng"}, "x"))->effect, Effect::kAllow);  // kept

  auto raw = PolicyPlugin::Create(Load("raw_policy_no_reload"), nlohmann::json::object());
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ((*raw)->Reload({}).code(), StatusCode::kNotImplemented);
  auto deny = (*raw)->Evaluate(MakeInput({}, "x"));
  ASSERT_TRUE(deny.ok());
  EXPECT_EQ(deny->reason, "raw says no");
}

// ---------------------------------------------------------------------------
// Connectors

PullSpec Spec(std::string dataset, std::vector<std::string> columns = {}) {
  PullSpec spec;
  spec.dataset = std::move(dataset);
  spec.object = spec.dataset;
  spec.scope.columns = std::move(columns);
  return spec;
}

TEST_F(PluginInstancesTest, PlainCConnectorDescribesAndPullsArrowBatches) {
  auto connector = ConnectorPlugin::Create(Load("c_numbers"), nlohmann::json::object());
  ASSERT_TRUE(connector.ok()) << connector.status().ToString();
  auto catalog = (*connector)->Describe();
  ASSERT_TRUE(catalog.ok()) << catalog.status().ToString();
  ASSERT_EQ(catalog->datasets.size(), 1u);
  EXPECT_EQ(catalog->datasets[0].name, "numbers");
  ASSERT_EQ(catalog->datasets[0].columns.size(), 2u);
  EXPECT_EQ(catalog->datasets[0].columns[1].type, "utf8");

  CollectingConsumer consumer;
  ASSERT_TRUE((*connector)->Pull(Spec("numbers"), consumer).ok());
  EXPECT_EQ(consumer.schemas, 1);
  EXPECT_THAT(consumer.ColumnNames(), ElementsAre("id", "word"));
  EXPECT_THAT(consumer.Rows(), ElementsAre(ElementsAre("1", "one"), ElementsAre("2", "two"),
                                           ElementsAre("3", "three")));
  EXPECT_EQ(consumer.progress_rows, 3u);
  const auto logs = callbacks_.logs();
  ASSERT_FALSE(logs.empty());
  EXPECT_EQ(logs.back().plugin, "c-numbers");
  EXPECT_EQ(logs.back().message, "pulling numbers");
}

TEST_F(PluginInstancesTest, ConnectorErrorsAndConsumerRefusalsPassThrough) {
  auto connector = ConnectorPlugin::Create(Load("c_numbers"), nlohmann::json::object());
  ASSERT_TRUE(connector.ok());
  CollectingConsumer consumer;
  const Status missing = (*connector)->Pull(Spec("nope"), consumer);
  EXPECT_EQ(missing.code(), StatusCode::kNotFound);
  EXPECT_THAT(missing.message(), HasSubstr("plugin c-numbers: unknown dataset"));

  CollectingConsumer refusing;
  refusing.refuse_batches = Status::ResourceExhausted("staging full");
  EXPECT_EQ((*connector)->Pull(Spec("numbers"), refusing).code(), StatusCode::kResourceExhausted);
}

TEST_F(PluginInstancesTest, SdkConnectorHonoursScopeBatchesAndCancellation) {
  auto connector = ConnectorPlugin::Create(Load("test_squares"), {{"rows", 5}});
  ASSERT_TRUE(connector.ok()) << connector.status().ToString();
  CollectingConsumer all;
  ASSERT_TRUE((*connector)->Pull(Spec("squares"), all).ok());
  EXPECT_EQ(all.batch_count(), 3u);  // 2 + 2 + 1
  EXPECT_THAT(all.ColumnNames(), ElementsAre("n", "label"));
  EXPECT_THAT(all.Rows(), ElementsAre(ElementsAre("1", "row-1"), ElementsAre("4", "row-2"),
                                      ElementsAre("9", "row-3"), ElementsAre("16", "row-4"),
                                      ElementsAre("25", "row-5")));
  EXPECT_EQ(all.progress_rows, 5u);

  CollectingConsumer scoped;
  ASSERT_TRUE((*connector)->Pull(Spec("squares", {"label"}), scoped).ok());
  EXPECT_THAT(scoped.ColumnNames(), ElementsAre("label"));
  EXPECT_EQ(scoped.Rows().size(), 5u);

  CollectingConsumer cancelling;
  cancelling.cancel_after = 1;
  const Status cancelled = (*connector)->Pull(Spec("squares"), cancelling);
  EXPECT_EQ(cancelled.code(), StatusCode::kCancelled);
  EXPECT_EQ(cancelling.batch_count(), 1u);

  auto bad_config = ConnectorPlugin::Create(Load("test_squares"), {{"rows", "many"}});
  EXPECT_EQ(bad_config.status().code(), StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------
// Tunnels

// A host query channel answering every query with `rows` rows of one column.
class FakeChannel {
 public:
  explicit FakeChannel(int64_t rows) : rows_(rows) {
    channel_.size = sizeof(channel_);
    channel_.host_data = this;
    channel_.query = &Query;
    channel_.tables = &Tables;
  }
  const airlock_type_query_channel* get() const { return &channel_; }
  std::vector<std::string> queries;

 private:
  static airlock_type_status Query(void* data, const char* sql, size_t length,
                                   const airlock_type_batch_sink* sink, airlock_type_error*) {
    auto* self = static_cast<FakeChannel*>(data);
    self->queries.emplace_back(sql, length);
    arrow::RecordBatchBuilder builder({{"x", arrow::Type::kInt64}});
    for (int64_t i = 0; i < self->rows_; ++i) builder.AppendInt64(0, i);
    sdk::BatchSink out(sink);
    if (!out.SendSchema(builder.MakeSchema()).ok()) return AIRLOCK_ERR_INTERNAL;
    if (!out.SendBatch(builder.Finish()).ok()) return AIRLOCK_ERR_INTERNAL;
    return AIRLOCK_OK;
  }
  static airlock_type_status Tables(void*, airlock_type_buffer* tables, airlock_type_error*) {
    abi::FillBuffer(tables, R"({"tables":[]})");
    return AIRLOCK_OK;
  }

  airlock_type_query_channel channel_{};
  int64_t rows_;
};

TEST_F(PluginInstancesTest, TunnelOpensQueriesThroughTheChannelAndCloses) {
  auto tunnel = TunnelPlugin::Create(Load("test_tunnel"), nlohmann::json::object());
  ASSERT_TRUE(tunnel.ok()) << tunnel.status().ToString();
  FakeChannel channel(7);
  auto opened =
      (*tunnel)->Open({{"request_id", "r-42"}, {"query", "SELECT x FROM t"}}, channel.get());
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto& [endpoint, grant] = *opened;
  EXPECT_EQ(grant["url"], "airlock-test://r-42");
  EXPECT_EQ(grant["credential"], "c-r-42");
  EXPECT_EQ(grant["rows"], 7);
  EXPECT_THAT(channel.queries, ElementsAre("SELECT x FROM t"));
  EXPECT_TRUE(callbacks_.AuditsNamed("tunnel.closed").empty());

  endpoint->Close();
  EXPECT_TRUE(endpoint->closed());
  const auto closed = callbacks_.AuditsNamed("tunnel.closed");
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0]["request_id"], "r-42");
  endpoint->Close();  // once only
  endpoint.reset();
  EXPECT_EQ(callbacks_.AuditsNamed("tunnel.closed").size(), 1u);
}

TEST_F(PluginInstancesTest, TunnelEndpointIsToldWhyItCloses) {
  auto tunnel = TunnelPlugin::Create(Load("test_tunnel"), nlohmann::json::object());
  ASSERT_TRUE(tunnel.ok());
  FakeChannel channel(0);
  auto ended = (*tunnel)->Open({{"request_id", "r-ended"}}, channel.get());
  auto revoked = (*tunnel)->Open({{"request_id", "r-revoked"}}, channel.get());
  ASSERT_TRUE(ended.ok() && revoked.ok());
  // The SDK plugin's table has close_with_reason (ABI 1.1): it is used.
  ended->first->Close(AIRLOCK_CLOSE_WINDOW_ENDED);
  revoked->first.reset();  // destruction: revoked
  const auto closed = callbacks_.AuditsNamed("tunnel.closed");
  ASSERT_EQ(closed.size(), 2u);
  EXPECT_EQ(closed[0]["request_id"], "r-ended");
  EXPECT_EQ(closed[0]["why"], "window_ended");
  EXPECT_EQ(closed[1]["request_id"], "r-revoked");
  EXPECT_EQ(closed[1]["why"], "other");
}

TEST_F(PluginInstancesTest, AnEndpointsWindowIsExtendedThroughTheAbi13Member) {
  auto tunnel = TunnelPlugin::Create(Load("test_tunnel"), nlohmann::json::object());
  ASSERT_TRUE(tunnel.ok());
  EXPECT_TRUE((*tunnel)->ExtendsWindows());
  FakeChannel channel(0);
  auto opened = (*tunnel)->Open({{"request_id", "r-longer"}}, channel.get());
  ASSERT_TRUE(opened.ok());
  ASSERT_TRUE(opened->first->Extend(2000000000).ok());
  const auto extended = callbacks_.AuditsNamed("tunnel.extended");
  ASSERT_EQ(extended.size(), 1u);
  EXPECT_EQ(extended[0]["request_id"], "r-longer");
  EXPECT_EQ(extended[0]["not_after"], 2000000000);
  // The plugin's refusal comes back with its code and its name.
  const Status earlier = opened->first->Extend(1000);
  EXPECT_EQ(earlier.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(earlier.message().find("test-tunnel"), std::string::npos) << earlier.ToString();
  opened->first->Close();
  EXPECT_EQ(opened->first->Extend(2000000001).code(), StatusCode::kFailedPrecondition);
}

TEST_F(PluginInstancesTest, AnAbi10TunnelStillLoadsAndIsClosedWithClose) {
  auto library = Load("raw_tunnel_1_0");
  ASSERT_NE(library, nullptr);
  EXPECT_EQ(library->check_config(), nullptr);  // its manifest ends before check_config
  EXPECT_EQ(CheckPluginConfig(*library, nlohmann::json::object()).code(),
            StatusCode::kNotImplemented);
  auto tunnel = TunnelPlugin::Create(library, nlohmann::json::object());
  ASSERT_TRUE(tunnel.ok()) << tunnel.status().ToString();
  FakeChannel channel(0);
  auto opened = (*tunnel)->Open({{"request_id", "old"}}, channel.get());
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  // No extend in a 1.0 table: windows cannot be extended, and nothing is called.
  EXPECT_FALSE((*tunnel)->ExtendsWindows());
  EXPECT_EQ(opened->first->Extend(2000000000).code(), StatusCode::kNotImplemented);
  // No close_with_reason in a 1.0 table: the host falls back to close().
  opened->first->Close(AIRLOCK_CLOSE_WINDOW_ENDED);
  bool closed = false;
  for (const auto& line : callbacks_.logs()) closed = closed || line.message == "closed";
  EXPECT_TRUE(closed);
}

TEST_F(PluginInstancesTest, PluginConfigurationIsCheckedWithoutAnInstance) {
  auto library = Load("test_tunnel");
  ASSERT_NE(library, nullptr);
  // The SDK test tunnel declares no CheckConfig: its manifest member is null.
  EXPECT_EQ(CheckPluginConfig(*library, nlohmann::json::object()).code(),
            StatusCode::kNotImplemented);
}

TEST_F(PluginInstancesTest, TunnelEndpointClosesOnDestructionAndMovesOwnership) {
  auto tunnel = TunnelPlugin::Create(Load("test_tunnel"), nlohmann::json::object());
  ASSERT_TRUE(tunnel.ok());
  FakeChannel channel(0);
  {
    auto opened = (*tunnel)->Open({{"request_id", "r-1"}}, channel.get());
    ASSERT_TRUE(opened.ok());
    TunnelEndpointHandle moved(std::move(*opened->first));
    EXPECT_TRUE(opened->first->closed());
    EXPECT_FALSE(moved.closed());
    EXPECT_TRUE(callbacks_.AuditsNamed("tunnel.closed").empty());
  }
  EXPECT_EQ(callbacks_.AuditsNamed("tunnel.closed").size(), 1u);
}

TEST_F(PluginInstancesTest, TunnelBadGrantIsRevokedAndRefusalsPassThrough) {
  auto tunnel = TunnelPlugin::Create(Load("test_tunnel"), nlohmann::json::object());
  ASSERT_TRUE(tunnel.ok());
  FakeChannel channel(0);
  auto bad = (*tunnel)->Open({{"request_id", "bad-grant"}}, channel.get());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInternal);
  EXPECT_THAT(bad.status().message(),
              HasSubstr("plugin test-tunnel returned an invalid grant: \"url\" must be"));
  EXPECT_THAT(bad.status().message(), Not(HasSubstr("c-bad-grant")));  // never the credential
  const auto closed = callbacks_.AuditsNamed("tunnel.closed");
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0]["request_id"], "bad-grant");

  auto refused = (*tunnel)->Open({{"request_id", "refuse"}}, channel.get());
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ((*tunnel)->Open({{"request_id", "x"}}, nullptr).status().code(),
            StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------
// Isolators

// Writes `text` to `fd` and reads the same number of bytes back.
std::string Echo(int fd, const std::string& text) {
  if (::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) return "";
  std::string reply(text.size(), '\0');
  size_t got = 0;
  while (got < reply.size()) {
    const ssize_t n = ::read(fd, reply.data() + got, reply.size() - got);
    if (n <= 0) return "";
    got += static_cast<size_t>(n);
  }
  return reply;
}

TEST_F(PluginInstancesTest, IsolatorProvisionsAnEnclaveAndTerminatesIt) {
  auto isolator = IsolatorPlugin::Create(Load("test_isolator"), nlohmann::json::object());
  ASSERT_TRUE(isolator.ok()) << isolator.status().ToString();
  auto enclave = (*isolator)->Provision({{"request_id", "r-7"}});
  ASSERT_TRUE(enclave.ok()) << enclave.status().ToString();
  ASSERT_GE((*enclave)->control_fd(), 0);
  // The far end runs the host's enclave runtime (an echo here).
  EXPECT_EQ(Echo((*enclave)->control_fd(), "hello enclave"), "hello enclave");

  const int fd = (*enclave)->ReleaseControlFd();
  EXPECT_EQ((*enclave)->control_fd(), -1);
  ASSERT_TRUE((*enclave)->Terminate().ok());
  EXPECT_TRUE((*enclave)->terminated());
  const auto terminated = callbacks_.AuditsNamed("enclave.terminated");
  ASSERT_EQ(terminated.size(), 1u);
  EXPECT_EQ(terminated[0]["request_id"], "r-7");
  // The enclave's end is gone: our end reads EOF.
  char byte;
  EXPECT_EQ(::read(fd, &byte, 1), 0);
  ::close(fd);
  EXPECT_TRUE((*enclave)->Terminate().ok());  // idempotent
  EXPECT_EQ(callbacks_.AuditsNamed("enclave.terminated").size(), 1u);
}

TEST_F(PluginInstancesTest, EnclaveHandleTerminatesOnDestructionAndClosesItsDescriptor) {
  auto isolator = IsolatorPlugin::Create(Load("test_isolator"), nlohmann::json::object());
  ASSERT_TRUE(isolator.ok());
  int fd = -1;
  {
    auto enclave = (*isolator)->Provision({{"request_id", "r-8"}});
    ASSERT_TRUE(enclave.ok());
    fd = (*enclave)->control_fd();
  }
  EXPECT_EQ(callbacks_.AuditsNamed("enclave.terminated").size(), 1u);
  errno = 0;
  EXPECT_EQ(::fcntl(fd, F_GETFD), -1);  // closed by the handle
  EXPECT_EQ(errno, EBADF);
}

TEST_F(PluginInstancesTest, IsolatorFailuresAndBadLaunches) {
  auto isolator = IsolatorPlugin::Create(Load("test_isolator"), nlohmann::json::object());
  ASSERT_TRUE(isolator.ok());
  auto full = (*isolator)->Provision({{"request_id", "no-capacity"}});
  EXPECT_EQ(full.status().code(), StatusCode::kUnavailable);
  EXPECT_THAT(full.status().message(), HasSubstr("plugin test-isolator: no capacity left"));

  auto bad = (*isolator)->Provision({{"request_id", "bad-fd"}});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInternal);
  EXPECT_THAT(bad.status().message(),
              HasSubstr("plugin test-isolator returned an invalid enclave launch: control_fd -1"));
  // The half-made enclave was terminated, not leaked.
  const auto terminated = callbacks_.AuditsNamed("enclave.terminated");
  ASSERT_EQ(terminated.size(), 1u);
  EXPECT_EQ(terminated[0]["request_id"], "bad-fd");

  auto pipe = (*isolator)->Provision({{"request_id", "pipe-fd"}});
  ASSERT_FALSE(pipe.ok());
  EXPECT_EQ(pipe.status().code(), StatusCode::kInternal);
  const std::string& message = pipe.status().message();
  const size_t at = message.find("control_fd ");
  ASSERT_NE(at, std::string::npos) << message;
  EXPECT_THAT(message, HasSubstr("is not an open socket"));
  // The host owned the pipe once provision returned OK: it was closed, not leaked.
  const int leaked = std::stoi(message.substr(at + std::strlen("control_fd ")));
  errno = 0;
  EXPECT_EQ(::fcntl(leaked, F_GETFD), -1);
  EXPECT_EQ(errno, EBADF);
  EXPECT_EQ(callbacks_.AuditsNamed("enclave.terminated").size(), 2u);
}

TEST_F(PluginInstancesTest, IsolatorDescribesItselfAndReaps) {
  auto isolator = IsolatorPlugin::Create(Load("test_isolator"), nlohmann::json::object());
  ASSERT_TRUE(isolator.ok());
  auto description = (*isolator)->DescribeIsolation();
  ASSERT_TRUE(description.ok()) << description.status().ToString();
  EXPECT_EQ((*description)["isolation"], "none");
  EXPECT_EQ((*description)["development_only"], true);
  ASSERT_TRUE((*isolator)->ReapOrphans().ok());
  EXPECT_EQ(callbacks_.AuditsNamed("enclave.reaped").size(), 1u);

  auto raw = IsolatorPlugin::Create(Load("raw_isolator_no_reap"), nlohmann::json::object());
  ASSERT_TRUE(raw.ok());
  EXPECT_TRUE((*raw)->ReapOrphans().ok());  // optional member absent: nothing to reap
  auto invalid = (*raw)->DescribeIsolation();
  EXPECT_EQ(invalid.status().code(), StatusCode::kInternal);
  EXPECT_THAT(invalid.status().message(),
              HasSubstr("returned an invalid isolation description: \"isolation\" must be"));
}

// ---------------------------------------------------------------------------
// Library lifetime

// True while `path` is mapped in this process (does not load it).
bool IsMapped(const std::string& path) {
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_NOLOAD);
  if (handle == nullptr) return false;
  ::dlclose(handle);
  return true;
}

TEST(PluginLifetimeTest, InstancesAndTheirBatchesKeepTheLibraryLoaded) {
  const std::string path = std::filesystem::canonical(TestPlugin("c_numbers")).string();
  ASSERT_FALSE(IsMapped(path));
  RecordingCallbacks callbacks;
  HostServicesTable table(callbacks);
  std::unique_ptr<ConnectorPlugin> connector;
  {
    auto loader = std::make_unique<PluginLoader>(table.get());
    auto library = loader->Load(path, std::nullopt);
    ASSERT_TRUE(library.ok()) << library.status().ToString();
    auto made = ConnectorPlugin::Create(*library, nlohmann::json::object());
    ASSERT_TRUE(made.ok());
    connector = std::move(made).value();
    loader.reset();
  }  // the loader and every PluginLibrary reference are gone
  ASSERT_TRUE(IsMapped(path));

  auto consumer = std::make_unique<CollectingConsumer>();
  ASSERT_TRUE(connector->Pull(Spec("numbers"), *consumer).ok());
  EXPECT_EQ(consumer->Rows().size(), 3u);

  connector.reset();
  // The batches still hold release callbacks into the plugin: still mapped.
  EXPECT_TRUE(IsMapped(path));
  EXPECT_THAT(consumer->Rows(), ElementsAre(ElementsAre("1", "one"), ElementsAre("2", "two"),
                                            ElementsAre("3", "three")));
  consumer.reset();
  EXPECT_FALSE(IsMapped(path));
}

}  // namespace
}  // namespace airlock::plugin_host
