// Shared pieces of the mongodb connector tests: a host that resolves secret
// references with the kernel's resolver (and counts releases), a sink that
// decodes every batch, and a fixture that runs the MongoDB wire-protocol
// test server (tests/support/mongodb) and loads the built plugin through the
// C ABI.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "airlock/c/airlock_plugin.h"
#include "airlock/cpp/abi_util.hpp"
#include "airlock/cpp/arrow.hpp"
#include "airlock/cpp/batch.hpp"
#include "airlock/cpp/values.hpp"
#include "kernel/plugin_host/secret_reference.h"
#include "tests/support/dl_plugin.h"
#include "tests/support/mongodb/mongo_test_server.h"

#include <mongoc/mongoc.h>

namespace airlock::mongo_test {

inline constexpr char kPluginPath[] = AIRLOCK_PLUGIN_DIR "/airlock_connector_mongodb.so";

// A connector host that resolves env:/file: references like an enclave does.
class SecretHost {
 public:
  SecretHost() {
    std::memset(&services_, 0, sizeof(services_));
    services_.size = sizeof(services_);
    services_.abi_major = AIRLOCK_ABI_MAJOR;
    services_.abi_minor = AIRLOCK_ABI_MINOR;
    services_.host_data = this;
    services_.log = [](void* self, int32_t, const char*, const char* message, size_t length) {
      auto* host = static_cast<SecretHost*>(self);
      std::lock_guard<std::mutex> lock(host->mutex_);
      host->logs_.emplace_back(message, length);
    };
    services_.secret_resolve = [](void* self, const char* ref, size_t length,
                                  airlock_type_secret* out,
                                  airlock_type_error* error) -> airlock_type_status {
      auto* host = static_cast<SecretHost*>(self);
      auto resolved = plugin_host::ResolveSecretReference(std::string_view(ref, length));
      if (!resolved.ok()) {
        abi::FillError(error, resolved.status().message());
        return static_cast<airlock_type_status>(resolved.status().code());
      }
      auto* held = new Secret(std::move(resolved).value());  // freed by release
      out->data = reinterpret_cast<const uint8_t*>(held->Reveal().data());
      out->length = held->Reveal().size();
      out->private_data = held;
      out->release = [](airlock_type_secret* s) {
        auto* owned = static_cast<Secret*>(s->private_data);
        SecretHost::released_.fetch_add(1);
        delete owned;  // ~Secret wipes
        s->release = nullptr;
        s->data = nullptr;
      };
      host->resolved_.fetch_add(1);
      return AIRLOCK_OK;
    };
  }
  SecretHost(const SecretHost&) = delete;
  SecretHost& operator=(const SecretHost&) = delete;

  const airlock_host_services* services() const { return &services_; }
  int resolved() const { return resolved_.load(); }
  static int released() { return released_.load(); }
  std::vector<std::string> logs() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return logs_;
  }

 private:
  airlock_host_services services_;
  std::atomic<int> resolved_{0};
  static inline std::atomic<int> released_{0};
  mutable std::mutex mutex_;
  std::vector<std::string> logs_;
};

// Everything a pull delivered, decoded through the SDK's BatchView.
class Collector : public sdk::BatchConsumer {
 public:
  Status OnSchema(arrow::OwnedSchema schema) override {
    if (schema_.valid()) return Status::Internal("schema sent twice");
    schema_ = std::move(schema);
    for (int64_t i = 0; i < schema_->n_children; ++i) {
      auto field = arrow::ParseField(*schema_->children[i]);
      if (!field.ok()) return field.status();
      fields.push_back(*field);
    }
    return Status::Ok();
  }

  Status OnBatch(arrow::OwnedArray batch) override {
    if (!schema_.valid()) return Status::Internal("batch before schema");
    auto view = arrow::BatchView::Make(*schema_.get(), *batch.get());
    if (!view.ok()) return view.status();
    batch_rows.push_back(view->num_rows());
    for (size_t r = 0; r < view->num_rows(); ++r) {
      std::vector<Json> row;
      for (size_t c = 0; c < view->num_columns(); ++c) row.push_back(Cell(*view, c, r));
      rows.push_back(std::move(row));
    }
    return Status::Ok();
  }

  bool IsCancelled() override {
    return cancel_after >= 0 && batch_rows.size() >= static_cast<size_t>(cancel_after);
  }

  static Json Cell(const arrow::BatchView& v, size_t c, size_t r) {
    if (v.IsNull(c, r)) return Json();
    switch (v.field(c).type) {
      case arrow::Type::kBool:
        return v.GetBool(c, r);
      case arrow::Type::kInt32:
        return v.GetInt32(c, r);
      case arrow::Type::kInt64:
        return v.GetInt64(c, r);
      case arrow::Type::kFloat64: {
        const double d = v.GetDouble(c, r);
        if (d != d) return "NaN";
        if (d == std::numeric_limits<double>::infinity()) return "Infinity";
        if (d == -std::numeric_limits<double>::infinity()) return "-Infinity";
        return d;
      }
      case arrow::Type::kTimestampMicros:
        return v.GetTimestamp(c, r);
      case arrow::Type::kBinary: {
        const std::string_view bytes = v.GetString(c, r);
        Json out = Json::array();
        for (unsigned char b : bytes) out.push_back(b);
        return out;
      }
      default:
        return std::string(v.GetString(c, r));
    }
  }

  const arrow::Field* field(const std::string& name) const {
    for (const auto& f : fields) {
      if (f.name == name) return &f;
    }
    return nullptr;
  }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& f : fields) out.push_back(f.name);
    return out;
  }
  std::vector<Json> column(const std::string& name) const {
    size_t index = 0;
    while (index < fields.size() && fields[index].name != name) ++index;
    std::vector<Json> out;
    for (const auto& row : rows) out.push_back(index < row.size() ? row[index] : Json("<missing>"));
    return out;
  }

  std::vector<arrow::Field> fields;
  std::vector<std::vector<Json>> rows;
  std::vector<size_t> batch_rows;
  int cancel_after = -1;

 private:
  arrow::OwnedSchema schema_;
};

struct PullResult {
  airlock_type_status status = AIRLOCK_ERR_UNKNOWN;
  std::string message;
  int create_status = AIRLOCK_OK;
};

class MongoFixture : public ::testing::Test {
 protected:
  void SetUp() override { StartServer({}); }

  void StartServer(testing::mongodb::MongoServerOptions options) {
    server_.reset();
    std::string error;
    server_ = testing::mongodb::MongoTestServer::Start(std::move(options), &error);
    ASSERT_NE(server_, nullptr) << error;
    if (!plugin_) {
      plugin_ = testing::DlPlugin::Load(kPluginPath, host_.services(), &error);
      ASSERT_NE(plugin_, nullptr) << error;
      ASSERT_EQ(plugin_->info().kind, AIRLOCK_KIND_CONNECTOR);
    }
  }

  const airlock_type_connector_vtable& table() const {
    return plugin_->vtable<airlock_type_connector_vtable>();
  }

  // {"uri": <server>, "database": "db"} merged with `extra`.
  Json Config(const Json& extra = Json::object()) const {
    Json config = {{"uri", server_->uri()}, {"database", "db"}};
    for (const auto& [k, v] : extra.items()) config[k] = v;
    return config;
  }

  void Seed(const std::string& collection, const std::vector<std::string>& json_documents) {
    ASSERT_TRUE(server_->InsertJson("db", collection, json_documents)) << "bad seed JSON";
  }

  PullResult Pull(const Json& config, const std::string& dataset, const Json& scope,
                  Collector& sink) {
    PullResult result;
    testing::DlInstance<airlock_type_connector_vtable> instance(table(), config.dump());
    if (!instance.ok()) {
      result.create_status = instance.status();
      result.status = instance.status();
      result.message = instance.error();
      return result;
    }
    const Json spec = {{"dataset", dataset}, {"object", dataset}, {"scope", scope}};
    const std::string text = spec.dump();
    airlock_type_batch_sink raw = sdk::MakeBatchSink(sink);
    abi::ErrorHolder error;
    result.status = table().pull(instance.get(), text.data(), text.size(), &raw, error.get());
    result.message = error.message();
    return result;
  }

  Result<Catalog> Describe(const Json& config) {
    testing::DlInstance<airlock_type_connector_vtable> instance(table(), config.dump());
    if (!instance.ok()) return Status(StatusCodeFromAbi(instance.status()), instance.error());
    abi::BufferHolder buffer;
    abi::ErrorHolder error;
    const airlock_type_status rc = table().describe(instance.get(), buffer.get(), error.get());
    if (rc != AIRLOCK_OK) return Status(StatusCodeFromAbi(rc), error.message());
    auto parsed = json_read::Parse(buffer.view(), "catalog");
    if (!parsed.ok()) return parsed.status();
    return Catalog::FromJson(*parsed);
  }

  SecretHost host_;
  std::unique_ptr<testing::DlPlugin> plugin_;
  std::unique_ptr<testing::mongodb::MongoTestServer> server_;
};

}  // namespace airlock::mongo_test
