// Runs the connector conformance kit (sdk/include/airlock/testing/) against
// the mongodb connector, through libmongoc, against the MongoDB wire-protocol
// test server (tests/support/mongodb) with SCRAM-SHA-256 authentication on,
// so the bad-credentials and permission-denied cases are the server's own
// answers (codes 18 and 13).
//
// A binary of its own: a plugin binds to the first host that enters it, and
// the kit brings its own host.
#include <bson/bson.h>

#include <memory>
#include <string>
#include <vector>

#include "airlock/cpp/scope.hpp"
#include "airlock/testing/connector_conformance.hpp"
#include "tests/support/mongodb/mongo_test_server.h"

namespace {

namespace conformance = airlock::conformance;
using airlock::testing::mongodb::MongoServerOptions;
using airlock::testing::mongodb::MongoTestServer;

constexpr char kPluginPath[] = AIRLOCK_PLUGIN_DIR "/airlock_connector_mongodb.so";
constexpr int64_t kLargeRows = 20000;
constexpr int64_t kBatchRows = 1000;
constexpr char kPassword[] = "conformance-pw-9c1e";
constexpr char kWrongPassword[] = "wrong-pw-hunter2-77f0";

struct BsonFree {
  void operator()(bson_t* b) const { bson_destroy(b); }
};
using Bson = std::unique_ptr<bson_t, BsonFree>;

class MongoConformanceFixture : public conformance::ConnectorFixture {
 public:
  airlock::Result<conformance::ConformanceSetup> Prepare() override {
    MongoServerOptions options;
    options.users = {{"reader", kPassword}};
    options.forbidden_namespaces = {"db.forbidden"};
    std::string error;
    server_ = MongoTestServer::Start(options, &error);
    if (!server_) return airlock::Status::Internal("test server: " + error);

    // The typed rows with their BSON types: int64, string, double, bool, date.
    std::vector<Bson> owned;
    std::vector<const bson_t*> typed;
    for (const auto& row : conformance::TypedRows()) {
      Bson doc(bson_new());
      BSON_APPEND_INT64(doc.get(), "id", row.id);
      if (row.name) {
        bson_append_utf8(doc.get(), "name", -1, row.name->data(),
                         static_cast<int>(row.name->size()));
      } else {
        BSON_APPEND_NULL(doc.get(), "name");
      }
      if (row.amount) {
        BSON_APPEND_DOUBLE(doc.get(), "amount", *row.amount);
      } else {
        BSON_APPEND_NULL(doc.get(), "amount");
      }
      if (row.active) {
        BSON_APPEND_BOOL(doc.get(), "active", *row.active);
      } else {
        BSON_APPEND_NULL(doc.get(), "active");
      }
      if (row.created_at) {
        auto micros = airlock::scope::ParseTimestampMicros(*row.created_at);
        if (!micros) return airlock::Status::Internal("bad timestamp in the kit's rows");
        BSON_APPEND_DATE_TIME(doc.get(), "created_at", *micros / 1000);
      } else {
        BSON_APPEND_NULL(doc.get(), "created_at");
      }
      typed.push_back(doc.get());
      owned.push_back(std::move(doc));
    }
    server_->Insert("db", "typed", typed);
    server_->Insert("db", "empty", {});
    std::vector<const bson_t*> large;
    for (int64_t i = 1; i <= kLargeRows; ++i) {
      Bson doc(bson_new());
      BSON_APPEND_INT64(doc.get(), "id", i);
      const std::string label = "row number " + std::to_string(i);
      BSON_APPEND_UTF8(doc.get(), "label", label.c_str());
      BSON_APPEND_DOUBLE(doc.get(), "value", static_cast<double>(i) + 0.5);
      large.push_back(doc.get());
      owned.push_back(std::move(doc));
    }
    server_->Insert("db", "large", large);
    server_->Insert("db", "forbidden", typed);

    const airlock::Json typed_columns = {{{"name", "id"}, {"type", "int64"}},
                                         {{"name", "name"}, {"type", "utf8"}},
                                         {{"name", "amount"}, {"type", "float64"}},
                                         {{"name", "active"}, {"type", "bool"}},
                                         {{"name", "created_at"}, {"type", "timestamp"}}};
    auto config = [&](const std::string& password_reference) {
      return airlock::Json{
          {"uri", server_->uri()},
          {"database", "db"},
          {"username", "reader"},
          {"password_secret", password_reference},
          {"batch_rows", kBatchRows},
          {"datasets",
           {{{"name", "typed"}, {"columns", typed_columns}},
            {{"name", "empty"},
             {"columns",
              {{{"name", "id"}, {"type", "int64"}}, {{"name", "label"}, {"type", "utf8"}}}}},
            {{"name", "large"}},
            {{"name", "forbidden"}, {"columns", typed_columns}},
            {{"name", "missing"}, {"collection", "does_not_exist"}}}}}
          .dump();
    };

    conformance::ConformanceSetup setup;
    setup.connector.plugin_path = kPluginPath;
    setup.config_json = config("env:AIRLOCK_MONGO_CONFORMANCE_PASSWORD");
    setup.secret_references = {{"env:AIRLOCK_MONGO_CONFORMANCE_PASSWORD", kPassword},
                               {"env:AIRLOCK_MONGO_CONFORMANCE_WRONG", kWrongPassword}};
    setup.typed = {"typed"};
    setup.empty = {"empty"};
    setup.empty_columns = {"id", "label"};
    setup.large = {"large"};
    setup.large_rows = kLargeRows;
    setup.max_batch_rows = kBatchRows;
    setup.max_batch_bytes = 1u << 20;
    setup.missing = {"missing"};
    setup.bad_credentials =
        conformance::ErrorCase{config("env:AIRLOCK_MONGO_CONFORMANCE_WRONG"), {"typed"}};
    setup.permission_denied = conformance::ErrorCase{{}, {"forbidden"}};
    setup.secret_values = {kWrongPassword};
    return setup;
  }

 private:
  std::unique_ptr<MongoTestServer> server_;
};

}  // namespace

AIRLOCK_CONNECTOR_CONFORMANCE_SUITE(MongoDb, MongoConformanceFixture);
