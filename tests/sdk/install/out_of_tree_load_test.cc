// Loads the out-of-tree examples (built against the installed SDK by the
// sdk_example_build and sdk_notifier_example_build steps) with the kernel's
// loader: pulls from the connector (AIRLOCK_OUT_OF_TREE_PLUGIN) and hands
// notifications to the notifier (AIRLOCK_OUT_OF_TREE_NOTIFIER).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "airlock/cpp/arrow.hpp"
#include "kernel/common/crypto.h"
#include "kernel/plugin_host/host_services.h"
#include "kernel/plugin_host/plugin_instances.h"
#include "kernel/plugin_host/plugin_loader.h"
#include "tests/support/temp_dir.h"

namespace airlock::plugin_host {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class QuietCallbacks : public HostCallbacks {
 public:
  void Log(int32_t, std::string_view plugin, std::string_view message) override {
    logs.push_back(std::string(plugin) + ": " + std::string(message));
  }
  Status AuditEmit(std::string_view) override { return Status::Ok(); }
  int64_t NowMicros() override { return 0; }
  Result<Secret> ResolveSecret(std::string_view) override {
    return Status::PermissionDenied("no secrets here");
  }
  Status EnclaveServe(int) override { return Status::NotImplemented("no enclaves here"); }
  std::string EnclaveExecutable() override { return ""; }
  std::vector<std::string> logs;
};

// Every delivered row, cells rendered as text.
class RowCollector : public sdk::BatchConsumer {
 public:
  Status OnSchema(arrow::OwnedSchema schema) override {
    schema_ = std::move(schema);
    return Status::Ok();
  }
  Status OnBatch(arrow::OwnedArray batch) override {
    ++batches;
    auto view = arrow::BatchView::Make(*schema_.get(), *batch.get());
    if (!view.ok()) return view.status();
    for (size_t r = 0; r < view->num_rows(); ++r) {
      std::vector<std::string> row;
      for (size_t c = 0; c < view->num_columns(); ++c) {
        row.push_back(view->field(c).type == arrow::Type::kInt64
                          ? std::to_string(view->GetInt64(c, r))
                          : std::string(view->GetString(c, r)));
      }
      rows.push_back(std::move(row));
    }
    return Status::Ok();
  }
  std::vector<std::string> columns() const {
    std::vector<std::string> names;
    for (int64_t i = 0; i < schema_->n_children; ++i) names.push_back(schema_->children[i]->name);
    return names;
  }
  std::vector<std::vector<std::string>> rows;
  int batches = 0;

 private:
  arrow::OwnedSchema schema_;
};

class OutOfTreeLoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* path = std::getenv("AIRLOCK_OUT_OF_TREE_PLUGIN");
    ASSERT_NE(path, nullptr) << "set AIRLOCK_OUT_OF_TREE_PLUGIN (run through ctest)";
    path_ = path;
    std::ifstream in(path_, std::ios::binary);
    ASSERT_TRUE(in) << "cannot read " << path_;
    std::stringstream bytes;
    bytes << in.rdbuf();
    auto library = loader_.Load(path_, Sha256Hex(bytes.str()), AIRLOCK_KIND_CONNECTOR);
    ASSERT_TRUE(library.ok()) << library.status().ToString();
    library_ = *library;
  }

  QuietCallbacks callbacks_;
  HostServicesTable table_{callbacks_};
  PluginLoader loader_{table_.get()};
  std::string path_;
  std::shared_ptr<PluginLibrary> library_;
};

TEST_F(OutOfTreeLoadTest, ManifestComesFromThePlugin) {
  const PluginManifest& manifest = library_->manifest();
  EXPECT_EQ(manifest.name, "sequence");
  EXPECT_EQ(manifest.version, "1.0.0");
  EXPECT_EQ(manifest.kind, AIRLOCK_KIND_CONNECTOR);
  EXPECT_EQ(manifest.abi_major, 1u);
  EXPECT_EQ(manifest.config_schema["properties"]["rows"]["maximum"], 10000000);
}

TEST_F(OutOfTreeLoadTest, DescribesAndPullsEveryRowInBatches) {
  auto connector = ConnectorPlugin::Create(library_, {{"rows", 10}, {"batch_rows", 4}});
  ASSERT_TRUE(connector.ok()) << connector.status().ToString();
  auto catalog = (*connector)->Describe();
  ASSERT_TRUE(catalog.ok()) << catalog.status().ToString();
  ASSERT_EQ(catalog->datasets.size(), 1u);
  EXPECT_EQ(catalog->datasets[0].name, "sequence");
  ASSERT_EQ(catalog->datasets[0].columns.size(), 3u);
  EXPECT_EQ(catalog->datasets[0].columns[1].name, "square");
  EXPECT_EQ(catalog->datasets[0].columns[1].type, "int64");

  PullSpec spec;
  spec.dataset = "sequence";
  RowCollector collector;
  ASSERT_TRUE((*connector)->Pull(spec, collector).ok());
  EXPECT_THAT(collector.columns(), ElementsAre("n", "square", "label"));
  EXPECT_EQ(collector.batches, 3);  // 4 + 4 + 2
  ASSERT_EQ(collector.rows.size(), 10u);
  EXPECT_THAT(collector.rows[0], ElementsAre("1", "1", "row-1"));
  EXPECT_THAT(collector.rows[9], ElementsAre("10", "100", "row-10"));
  ASSERT_FALSE(callbacks_.logs.empty());
  EXPECT_EQ(callbacks_.logs.back(), "sequence: delivered 10 rows of sequence");
}

TEST_F(OutOfTreeLoadTest, HonoursColumnsMasksAndRowFilter) {
  auto connector = ConnectorPlugin::Create(library_, {{"rows", 20}});
  ASSERT_TRUE(connector.ok());
  auto spec = PullSpec::FromJson(nlohmann::json::parse(R"({
    "dataset": "sequence",
    "scope": {
      "columns": ["n", "label"],
      "masks": {"label": "last4"},
      "row_filter": [{"column": "n", "op": "gt", "value": 3},
                     {"column": "square", "op": "le", "value": 36}]
    }})"));
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  RowCollector collector;
  ASSERT_TRUE((*connector)->Pull(*spec, collector).ok());
  EXPECT_THAT(collector.columns(), ElementsAre("n", "label"));
  EXPECT_THAT(collector.rows,
              ElementsAre(ElementsAre("4", "****ow-4"), ElementsAre("5", "****ow-5"),
                          ElementsAre("6", "****ow-6")));
}

TEST_F(OutOfTreeLoadTest, RefusesWhatItCannotHonour) {
  auto bad_config = ConnectorPlugin::Create(library_, {{"rows", -1}});
  ASSERT_FALSE(bad_config.ok());
  EXPECT_EQ(bad_config.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(bad_config.status().message(), HasSubstr("config.rows"));

  auto connector = ConnectorPlugin::Create(library_, nlohmann::json::object());
  ASSERT_TRUE(connector.ok());
  PullSpec unknown_column;
  unknown_column.dataset = "sequence";
  unknown_column.scope.columns = {"n", "secret_column"};
  RowCollector collector;
  const Status refused = (*connector)->Pull(unknown_column, collector);
  EXPECT_EQ(refused.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(refused.message(), HasSubstr("secret_column"));
  EXPECT_TRUE(collector.rows.empty());

  PullSpec other;
  other.dataset = "elsewhere";
  EXPECT_EQ((*connector)->Pull(other, collector).code(), StatusCode::kNotFound);
}

// The notifier kind (ABI 1.2) from outside the tree: loaded as a notifier,
// its configuration checked, each notification written once per id.
TEST(OutOfTreeNotifierTest, LoadsAsANotifierAndWritesEachNotificationOnce) {
  const char* path = std::getenv("AIRLOCK_OUT_OF_TREE_NOTIFIER");
  ASSERT_NE(path, nullptr) << "set AIRLOCK_OUT_OF_TREE_NOTIFIER (run through ctest)";
  QuietCallbacks callbacks;
  HostServicesTable table(callbacks);
  PluginLoader loader(table.get());
  auto wrong_kind = loader.Load(path, std::nullopt, AIRLOCK_KIND_CONNECTOR);
  ASSERT_FALSE(wrong_kind.ok());
  EXPECT_THAT(wrong_kind.status().message(), HasSubstr("is a notifier plugin"));
  auto library = loader.Load(path, std::nullopt, AIRLOCK_KIND_NOTIFIER);
  ASSERT_TRUE(library.ok()) << library.status().ToString();
  EXPECT_EQ((*library)->manifest().name, "journal");
  // Built against the installed SDK: it reports that SDK's minor.
  EXPECT_EQ((*library)->manifest().abi_minor, static_cast<uint32_t>(AIRLOCK_ABI_MINOR));

  EXPECT_THAT(CheckPluginConfig(**library, {{"colour", "red"}}).message(),
              HasSubstr("config.path"));
  test::TempDir dir("airlock-journal-");
  const std::string journal = dir.path() + "/notifications.jsonl";
  auto notifier = NotifierPlugin::Create(*library, {{"path", journal}});
  ASSERT_TRUE(notifier.ok()) << notifier.status().ToString();
  const std::string first = R"({"id":"r-1/v1/journal","event":"request.pending_approval"})";
  const std::string second = R"({"id":"r-1/v2/journal","event":"request.approved"})";
  ASSERT_TRUE((*notifier)->Deliver(first).ok());
  ASSERT_TRUE((*notifier)->Deliver(first).ok());  // again, as after a retry
  ASSERT_TRUE((*notifier)->Deliver(second).ok());
  const Status malformed = (*notifier)->Deliver(R"({"event":"request.ready"})");
  EXPECT_EQ(malformed.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(malformed.message(), HasSubstr("plugin journal"));

  std::ifstream in(journal);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(nlohmann::json::parse(lines[0])["id"], "r-1/v1/journal");
  EXPECT_EQ(nlohmann::json::parse(lines[1])["event"], "request.approved");

  auto unwritable = NotifierPlugin::Create(*library, {{"path", dir.path() + "/no/such/file"}});
  ASSERT_TRUE(unwritable.ok());
  EXPECT_EQ((*unwritable)->Deliver(second).code(), StatusCode::kUnavailable);  // retried later
}

}  // namespace
}  // namespace airlock::plugin_host
