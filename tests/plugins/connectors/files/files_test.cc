// Loads the built files connector through the C ABI and pulls real files
// from a temporary root directory into a consumer-side sink.
#include <gtest/gtest.h>
#include <seccomp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "airlock/c/airlock_plugin.h"
#include "airlock/cpp/abi_util.hpp"
#include "airlock/cpp/arrow.hpp"
#include "airlock/cpp/batch.hpp"
#include "airlock/cpp/masking.hpp"
#include "airlock/cpp/scope.hpp"
#include "airlock/cpp/values.hpp"
#include "plugins/connectors/files/buffered_file.h"
#include "tests/support/dl_plugin.h"

namespace airlock {
namespace {

namespace fs = std::filesystem;
using testing::DlInstance;
using testing::DlPlugin;
using testing::FakeHost;

constexpr char kPluginPath[] = AIRLOCK_PLUGIN_DIR "/airlock_connector_files.so";

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
    // Every byte of every string buffer, including bytes behind null slots.
    for (size_t c = 0; c < view->num_columns(); ++c) {
      const auto& col = view->column(c);
      if (col.type == arrow::Type::kUtf8 && col.data != nullptr && view->num_rows() > 0) {
        const int32_t end = col.offsets[col.offset + static_cast<int64_t>(view->num_rows())];
        string_bytes.append(reinterpret_cast<const char*>(col.data), static_cast<size_t>(end));
      }
    }
    return Status::Ok();
  }

  bool IsCancelled() override {
    return cancel_after >= 0 && batch_rows.size() >= static_cast<size_t>(cancel_after);
  }

  void OnProgress(uint64_t r, uint64_t b) override { progress.emplace_back(r, b); }

  static Json Cell(const arrow::BatchView& v, size_t c, size_t r) {
    if (v.IsNull(c, r)) return Json();
    switch (v.field(c).type) {
      case arrow::Type::kBool:
        return v.GetBool(c, r);
      case arrow::Type::kInt64:
        return v.GetInt64(c, r);
      case arrow::Type::kFloat64:
        return v.GetDouble(c, r);
      case arrow::Type::kDate32:
        return arrow::FormatDate32(v.GetDate32(c, r));
      case arrow::Type::kTimestampMicros:
        return arrow::FormatTimestamp(v.GetTimestamp(c, r), true);
      default:
        return std::string(v.GetString(c, r));
    }
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
  std::vector<std::pair<uint64_t, uint64_t>> progress;
  std::string string_bytes;
  int cancel_after = -1;

 private:
  arrow::OwnedSchema schema_;
};

struct PullResult {
  airlock_type_status status = AIRLOCK_ERR_UNKNOWN;
  std::string message;
};

class FilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/airlock-files-test-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    base_ = pattern;
    root_ = base_ + "/root";
    fs::create_directories(root_);
    std::string error;
    plugin_ = DlPlugin::Load(kPluginPath, host_.services(), &error);
    ASSERT_NE(plugin_, nullptr) << error;
    ASSERT_EQ(plugin_->info().kind, AIRLOCK_KIND_CONNECTOR);
  }
  void TearDown() override { fs::remove_all(base_); }

  const airlock_type_connector_vtable& table() const {
    return plugin_->vtable<airlock_type_connector_vtable>();
  }

  void Write(const std::string& relative, const std::string& content) {
    const fs::path path = fs::path(root_) / relative;
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << content;
  }

  std::unique_ptr<DlInstance<airlock_type_connector_vtable>> Connector(Json config = Json()) {
    if (config.is_null()) config = Json::object();
    if (!config.contains("root")) config["root"] = root_;
    auto instance =
        std::make_unique<DlInstance<airlock_type_connector_vtable>>(table(), config.dump());
    EXPECT_TRUE(instance->ok()) << instance->error();
    return instance;
  }

  Json Describe(void* instance, PullResult* result = nullptr) {
    abi::BufferHolder buffer;
    abi::ErrorHolder error;
    const auto rc = table().describe(instance, buffer.get(), error.get());
    if (result != nullptr) *result = {rc, error.message()};
    if (rc != AIRLOCK_OK) {
      if (result == nullptr) ADD_FAILURE() << error.message();
      return Json();
    }
    return Json::parse(buffer.view());
  }

  PullResult Pull(void* instance, const Json& spec, Collector* collector) {
    const std::string text = spec.dump();
    airlock_type_batch_sink sink = sdk::MakeBatchSink(*collector);
    abi::ErrorHolder error;
    PullResult result;
    result.status = table().pull(instance, text.data(), text.size(), &sink, error.get());
    result.message = error.message();
    return result;
  }

  // Pulls and expects success.
  Collector PullOk(void* instance, const Json& spec) {
    Collector collector;
    auto result = Pull(instance, spec, &collector);
    EXPECT_EQ(result.status, AIRLOCK_OK) << result.message;
    return collector;
  }

  FakeHost host_;
  std::unique_ptr<DlPlugin> plugin_;
  std::string base_;
  std::string root_;
};

const char kCustomers[] =
    "id,name,email,score,active,country\n"
    "1,Ada,ada@example.com,9.5,true,GB\n"
    "2,Grace,grace@example.com,8,false,US\n"
    "3,Edsger,,7.25,TRUE,NL\n"
    "4,Barbara,barbara@example.com,,false,US\n";

TEST_F(FilesTest, DescribeDiscoversFilesAndInfersTypes) {
  Write("customers.csv", kCustomers);
  Write("events.jsonl", R"({"at":"2024-01-01","n":1,"ok":true,"tags":["a"]})"
                        "\n"
                        R"({"at":"2024-01-02","n":2.5,"extra":null})"
                        "\n");
  Write("notes.txt", "not a dataset");
  Write(".hidden.csv", "a\n1\n");
  auto connector = Connector();
  Json catalog = Describe(connector->get());
  ASSERT_EQ(catalog["datasets"].size(), 2u) << catalog.dump();
  const Json& customers = catalog["datasets"][0];
  EXPECT_EQ(customers["name"], "customers");
  EXPECT_EQ(customers["object"], "customers.csv");
  EXPECT_EQ(customers["columns"], Json::parse(R"([
      {"name":"id","type":"int64"},{"name":"name","type":"utf8"},
      {"name":"email","type":"utf8"},{"name":"score","type":"float64"},
      {"name":"active","type":"bool"},{"name":"country","type":"utf8"}])"));
  const Json& events = catalog["datasets"][1];
  EXPECT_EQ(events["name"], "events");
  EXPECT_EQ(events["columns"], Json::parse(R"([
      {"name":"at","type":"utf8"},{"name":"n","type":"float64"},{"name":"ok","type":"bool"},
      {"name":"tags","type":"utf8"},{"name":"extra","type":"utf8"}])"));
  // Small files are counted: records, not lines, and without the header.
  EXPECT_EQ(customers.value("rows", -1), 4);
  EXPECT_EQ(events.value("rows", -1), 2);
  EXPECT_TRUE(Catalog::FromJson(catalog).ok());
}

TEST_F(FilesTest, DescribeCountsRecordsNotLines) {
  Write("notes.csv", "id,text\n1,\"two\nlines\"\n2,plain\n");
  auto connector = Connector();
  Json catalog = Describe(connector->get());
  ASSERT_EQ(catalog["datasets"].size(), 1u) << catalog.dump();
  EXPECT_EQ(catalog["datasets"][0].value("rows", -1), 2) << catalog.dump();
}

TEST_F(FilesTest, DescribeConfiguredDatasets) {
  Write("data/people.txt", "id|born|zip\n1|1990-05-17|01234\n");
  auto connector = Connector(
      {{"datasets",
        {{{"name", "people"},
          {"file", "data/people.txt"},
          {"format", "csv"},
          {"delimiter", "|"},
          {"description", "People"},
          {"tags", {"pii"}},
          {"columns",
           {{{"name", "born"}, {"type", "date32"}}, {{"name", "zip"}, {"type", "utf8"}}}}}}}});
  Json catalog = Describe(connector->get());
  ASSERT_EQ(catalog["datasets"].size(), 1u);
  EXPECT_EQ(catalog["datasets"][0]["description"], "People");
  EXPECT_EQ(catalog["datasets"][0]["tags"], Json({"pii"}));
  EXPECT_EQ(catalog["datasets"][0]["columns"], Json::parse(R"([
      {"name":"id","type":"int64"},{"name":"born","type":"date32"},{"name":"zip","type":"utf8"}])"));

  Collector c = PullOk(connector->get(), {{"dataset", "people"}});
  ASSERT_EQ(c.rows.size(), 1u);
  EXPECT_EQ(c.rows[0], (std::vector<Json>{1, "1990-05-17", "01234"}));
}

TEST_F(FilesTest, DescribeReportsAMissingConfiguredFile) {
  auto connector = Connector({{"datasets", {{{"name", "gone"}, {"file", "gone.csv"}}}}});
  PullResult result;
  Describe(connector->get(), &result);
  EXPECT_EQ(result.status, AIRLOCK_ERR_NOT_FOUND);
  EXPECT_NE(result.message.find("dataset 'gone'"), std::string::npos) << result.message;
}

TEST_F(FilesTest, FullPullDeliversTypedValues) {
  Write("customers.csv", kCustomers);
  auto connector = Connector();
  Collector c = PullOk(connector->get(), {{"dataset", "customers"}, {"object", "customers.csv"}});
  EXPECT_EQ(c.names(),
            (std::vector<std::string>{"id", "name", "email", "score", "active", "country"}));
  EXPECT_EQ(c.fields[0].type, arrow::Type::kInt64);
  EXPECT_EQ(c.fields[3].type, arrow::Type::kFloat64);
  EXPECT_EQ(c.fields[4].type, arrow::Type::kBool);
  ASSERT_EQ(c.rows.size(), 4u);
  EXPECT_EQ(c.rows[0], (std::vector<Json>{1, "Ada", "ada@example.com", 9.5, true, "GB"}));
  EXPECT_EQ(c.rows[1], (std::vector<Json>{2, "Grace", "grace@example.com", 8.0, false, "US"}));
  EXPECT_EQ(c.rows[2], (std::vector<Json>{3, "Edsger", Json(), 7.25, true, "NL"}));
  EXPECT_EQ(c.rows[3],
            (std::vector<Json>{4, "Barbara", "barbara@example.com", Json(), false, "US"}));
  ASSERT_FALSE(c.progress.empty());
  EXPECT_EQ(c.progress.back().first, 4u);
  // A bare dataset name finds <name>.csv.
  Collector bare = PullOk(connector->get(), {{"dataset", "customers"}});
  EXPECT_EQ(bare.rows, c.rows);
}

TEST_F(FilesTest, CsvQuotingNewlinesCrlfAndDelimiters) {
  Write("tricky.csv",
        "\xEF\xBB\xBFid;text;note\r\n"
        "1;\"semi;colon\";plain\r\n"
        "2;\"he said \"\"hi\"\"\";\"\"\r\n"
        "3;\"line one\r\nline two\nline three\";x\r\n"
        "\r\n"
        "4;;\"\"\"\"\r\n"
        "5;last;\"no newline at end\"");
  auto connector =
      Connector({{"datasets", {{{"name", "tricky"}, {"file", "tricky.csv"}, {"delimiter", ";"}}}}});
  Collector c = PullOk(connector->get(), {{"dataset", "tricky"}});
  EXPECT_EQ(c.names(), (std::vector<std::string>{"id", "text", "note"}));
  ASSERT_EQ(c.rows.size(), 5u);
  EXPECT_EQ(c.column("text"),
            (std::vector<Json>{"semi;colon", "he said \"hi\"", "line one\r\nline two\nline three",
                               Json(), "last"}));
  // A quoted empty field is the empty string; an unquoted one is NULL.
  EXPECT_EQ(c.column("note"), (std::vector<Json>{"plain", "", "x", "\"", "no newline at end"}));
}

TEST_F(FilesTest, DeclaredTypesOverrideInference) {
  Write("events.csv",
        "id,day,at,code,flag\n"
        "1,2024-02-29,2024-02-29T10:00:00Z,007,1\n"
        "2,2024-03-01,2024-03-01 12:30:00.5+02:00,008,0\n");
  auto connector = Connector({{"datasets",
                               {{{"name", "events"},
                                 {"file", "events.csv"},
                                 {"columns",
                                  {{{"name", "day"}, {"type", "date32"}},
                                   {{"name", "at"}, {"type", "timestamp"}},
                                   {{"name", "code"}, {"type", "utf8"}},
                                   {{"name", "flag"}, {"type", "float64"}}}}}}}});
  Collector c = PullOk(connector->get(), {{"dataset", "events"}});
  EXPECT_EQ(c.fields[1].type, arrow::Type::kDate32);
  EXPECT_EQ(c.fields[2].type, arrow::Type::kTimestampMicros);
  EXPECT_EQ(c.fields[2].timezone, "UTC");
  EXPECT_EQ(c.column("day"), (std::vector<Json>{"2024-02-29", "2024-03-01"}));
  EXPECT_EQ(c.column("at"),
            (std::vector<Json>{"2024-02-29 10:00:00+00", "2024-03-01 10:30:00.500000+00"}));
  EXPECT_EQ(c.column("code"), (std::vector<Json>{"007", "008"}));
  EXPECT_EQ(c.column("flag"), (std::vector<Json>{1.0, 0.0}));
}

TEST_F(FilesTest, HeaderlessCsvUsesDeclaredOrPositionalNames) {
  Write("raw.csv", "1,a\n2,b\n");
  auto declared = Connector(
      {{"datasets",
        {{{"name", "raw"},
          {"file", "raw.csv"},
          {"header", false},
          {"columns", {{{"name", "n"}, {"type", "int64"}}, {{"name", "s"}, {"type", "utf8"}}}}}}}});
  Collector c = PullOk(declared->get(), {{"dataset", "raw"}});
  EXPECT_EQ(c.names(), (std::vector<std::string>{"n", "s"}));
  EXPECT_EQ(c.column("n"), (std::vector<Json>{1, 2}));
  auto positional =
      Connector({{"datasets", {{{"name", "raw"}, {"file", "raw.csv"}, {"header", false}}}}});
  Collector p = PullOk(positional->get(), {{"dataset", "raw"}});
  EXPECT_EQ(p.names(), (std::vector<std::string>{"column_1", "column_2"}));
  EXPECT_EQ(p.rows.size(), 2u);
}

TEST_F(FilesTest, ColumnScopeDeliversOnlyScopedColumns) {
  Write("customers.csv", kCustomers);
  auto connector = Connector();
  Collector c = PullOk(connector->get(),
                       {{"dataset", "customers"}, {"scope", {{"columns", {"name", "id"}}}}});
  EXPECT_EQ(c.names(), (std::vector<std::string>{"id", "name"}));
  EXPECT_EQ(c.rows.size(), 4u);
  EXPECT_EQ(c.string_bytes.find("example.com"), std::string::npos);

  Collector bad;
  auto result = Pull(connector->get(),
                     {{"dataset", "customers"}, {"scope", {{"columns", {"id", "ssn"}}}}}, &bad);
  EXPECT_EQ(result.status, AIRLOCK_ERR_INVALID_ARGUMENT);
  EXPECT_NE(result.message.find("'ssn'"), std::string::npos) << result.message;
  EXPECT_TRUE(bad.rows.empty());
}

TEST_F(FilesTest, RowFilterUsesTypedValues) {
  Write("customers.csv", kCustomers);
  auto connector = Connector();
  Collector c =
      PullOk(connector->get(), {{"dataset", "customers"},
                                {"scope",
                                 {{"columns", {"id"}},
                                  {"row_filter",
                                   {{{"column", "country"}, {"op", "in"}, {"value", {"US", "NL"}}},
                                    {{"column", "score"}, {"op", "gt"}, {"value", 7.5}}}}}}});
  // Row 3 (NL, 7.25) fails the score test; row 4 has a NULL score.
  EXPECT_EQ(c.column("id"), (std::vector<Json>{2}));

  Collector numeric =
      PullOk(connector->get(),
             {{"dataset", "customers"},
              {"scope", {{"row_filter", {{{"column", "id"}, {"op", "ge"}, {"value", 3}}}}}}});
  EXPECT_EQ(numeric.column("id"), (std::vector<Json>{3, 4}));  // 3 >= 3 numerically

  Collector unknown;
  auto result = Pull(connector->get(),
                     {{"dataset", "customers"},
                      {"scope", {{"row_filter", {{{"column", "nope"}, {"op", "is_null"}}}}}}},
                     &unknown);
  EXPECT_EQ(result.status, AIRLOCK_ERR_INVALID_ARGUMENT);
}

TEST_F(FilesTest, MasksNeverDeliverRawValues) {
  Write("cards.csv",
        "id,email,card,name,score\n"
        "1,ada@example.com,4111111111111111,Ada Lovelace,9.5\n"
        "2,grace@example.com,5500005555555559,Grace Hopper,8\n"
        "3,,378282246310005,Edsger Dijkstra,\n");
  auto connector = Connector();
  Collector c = PullOk(
      connector->get(),
      {{"dataset", "cards"},
       {"scope",
        {{"masks",
          {{"email", "redact"}, {"card", "last4"}, {"name", "hash"}, {"score", "redact"}}}}}});
  ASSERT_EQ(c.rows.size(), 3u);
  EXPECT_EQ(c.column("email"), (std::vector<Json>{"***", "***", Json()}));  // NULL stays NULL
  EXPECT_EQ(c.column("card"), (std::vector<Json>{"****1111", "****5559", "****0005"}));
  EXPECT_EQ(c.column("name"),
            (std::vector<Json>{scope::MaskHash("Ada Lovelace"), scope::MaskHash("Grace Hopper"),
                               scope::MaskHash("Edsger Dijkstra")}));
  // A masked column is utf8 whatever its source type.
  EXPECT_EQ(c.fields[4].type, arrow::Type::kUtf8);
  EXPECT_EQ(c.column("score"), (std::vector<Json>{"***", "***", Json()}));
  for (const char* raw :
       {"ada@example.com", "grace@example.com", "4111111111111111", "5500005555555559",
        "378282246310005", "Ada Lovelace", "Grace Hopper", "Edsger", "9.5"}) {
    EXPECT_EQ(c.string_bytes.find(raw), std::string::npos) << raw;
  }

  Collector unknown;
  auto result =
      Pull(connector->get(), {{"dataset", "cards"}, {"scope", {{"masks", {{"card", "reveal"}}}}}},
           &unknown);
  EXPECT_EQ(result.status, AIRLOCK_ERR_INVALID_ARGUMENT);
  EXPECT_TRUE(unknown.rows.empty());
}

TEST_F(FilesTest, PathsOutsideTheRootAreRefused) {
  Write("inside.csv", "a\n1\n");
  std::ofstream(base_ + "/secret.csv") << "password\nhunter2\n";
  fs::create_symlink(base_ + "/secret.csv", fs::path(root_) / "abs-link.csv");
  fs::create_symlink("../secret.csv", fs::path(root_) / "rel-link.csv");
  fs::create_directories(fs::path(root_) / "sub");
  fs::create_symlink("../inside.csv", fs::path(root_) / "sub" / "ok-link.csv");
  auto connector = Connector();
  for (const std::string& object : std::vector<std::string>{
           "../secret.csv", "sub/../../secret.csv", base_ + "/secret.csv", root_ + "/inside.csv",
           "/etc/passwd", "abs-link.csv", "rel-link.csv"}) {
    SCOPED_TRACE(object);
    Collector c;
    auto result = Pull(connector->get(), {{"dataset", "x"}, {"object", object}}, &c);
    EXPECT_EQ(result.status, AIRLOCK_ERR_PERMISSION_DENIED) << result.message;
    EXPECT_NE(result.message.find("path outside the configured root"), std::string::npos)
        << result.message;
    EXPECT_TRUE(c.rows.empty());
    EXPECT_EQ(c.string_bytes.find("hunter2"), std::string::npos);
  }
  // A symlink that stays inside the root is fine.
  Collector ok = PullOk(connector->get(), {{"dataset", "x"}, {"object", "sub/ok-link.csv"}});
  EXPECT_EQ(ok.rows.size(), 1u);
  // Discovery lists what is inside and skips links leading out.
  Json catalog = Describe(connector->get());
  ASSERT_EQ(catalog["datasets"].size(), 1u) << catalog.dump();
  EXPECT_EQ(catalog["datasets"][0]["name"], "inside");
}

// Where openat2 is unavailable (older kernels, or a seccomp filter that
// refuses it) the connector falls back to realpath + prefix check +
// O_NOFOLLOW. Run the same checks in a child whose openat2 fails.
TEST_F(FilesTest, PathChecksHoldWithoutOpenat2) {
  Write("inside.csv", "a\n1\n");
  std::ofstream(base_ + "/secret.csv") << "password\nhunter2\n";
  fs::create_symlink(base_ + "/secret.csv", fs::path(root_) / "abs-link.csv");
  fs::create_symlink("../secret.csv", fs::path(root_) / "rel-link.csv");
  fs::create_directories(fs::path(root_) / "sub");
  fs::create_symlink("../inside.csv", fs::path(root_) / "sub" / "ok-link.csv");
  auto connector = Connector();

  for (const int error : {ENOSYS, EPERM}) {
    SCOPED_TRACE(error);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      // Exit code: 0 = all as expected, otherwise the number of the failed check.
      scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
      if (ctx == nullptr ||
          seccomp_rule_add(ctx, SCMP_ACT_ERRNO(error), SCMP_SYS(openat2), 0) != 0 ||
          seccomp_load(ctx) != 0) {
        ::_exit(100);
      }
      int check = 0;
      for (const std::string& object :
           std::vector<std::string>{"../secret.csv", "sub/../../secret.csv", "abs-link.csv",
                                    "rel-link.csv", "/etc/passwd", "../nope.csv"}) {
        ++check;
        Collector c;
        auto r = Pull(connector->get(), {{"dataset", "x"}, {"object", object}}, &c);
        if (r.status != AIRLOCK_ERR_PERMISSION_DENIED || !c.rows.empty()) ::_exit(check);
      }
      Collector missing;
      if (Pull(connector->get(), {{"dataset", "x"}, {"object", "nope.csv"}}, &missing).status !=
          AIRLOCK_ERR_NOT_FOUND) {
        ::_exit(20);
      }
      Collector ok;
      if (Pull(connector->get(), {{"dataset", "x"}, {"object", "sub/ok-link.csv"}}, &ok).status !=
              AIRLOCK_OK ||
          ok.rows.size() != 1) {
        ::_exit(21);
      }
      ::_exit(0);
    }
    int wstatus = 0;
    ASSERT_EQ(::waitpid(child, &wstatus, 0), child);
    ASSERT_TRUE(WIFEXITED(wstatus));
    EXPECT_EQ(WEXITSTATUS(wstatus), 0) << "failed check " << WEXITSTATUS(wstatus);
  }
}

TEST_F(FilesTest, MissingFileIsNotFound) {
  auto connector = Connector();
  Collector c;
  auto result = Pull(connector->get(), {{"dataset", "x"}, {"object", "nope.csv"}}, &c);
  EXPECT_EQ(result.status, AIRLOCK_ERR_NOT_FOUND) << result.message;
  auto bare = Pull(connector->get(), {{"dataset", "nope"}}, &c);
  EXPECT_EQ(bare.status, AIRLOCK_ERR_NOT_FOUND) << bare.message;
}

TEST_F(FilesTest, NonRegularFilesAreRefused) {
  fs::create_directories(fs::path(root_) / "dir.csv");
  ASSERT_EQ(::mkfifo((fs::path(root_) / "pipe.csv").c_str(), 0600), 0);
  auto connector = Connector();
  Collector c;
  EXPECT_EQ(Pull(connector->get(), {{"dataset", "x"}, {"object", "dir.csv"}}, &c).status,
            AIRLOCK_ERR_INVALID_ARGUMENT);
  // Opening a FIFO must neither block nor read.
  EXPECT_EQ(Pull(connector->get(), {{"dataset", "x"}, {"object", "pipe.csv"}}, &c).status,
            AIRLOCK_ERR_INVALID_ARGUMENT);
}

TEST_F(FilesTest, MalformedCsvNamesTheLine) {
  struct Case {
    std::string content;
    std::string expected;
  };
  const std::vector<Case> cases = {
      {"a,b\n1,2\n3\n", "line 3: expected 2 fields, found 1"},
      {"a,b\n1,\"x\ny\"\n3,4,5\n", "line 4: expected 2 fields, found 3"},  // embedded newline
      {"a,b\n1,2\n\n3,\"unterminated\n4,5\n", "line 4: unterminated quoted field"},
      {"a,b\n1,\"x\"y\n", "line 2: unexpected character after a closing quote"},
      {"a,a\n1,2\n", "line 1: duplicate column name 'a'"},
      {"a,b\n1,2\n" + std::string(5000, ',') + "\n", "line 3: more than 4096 fields"},
  };
  auto connector = Connector({{"infer_rows", 1}});  // errors past the inference window too
  for (const auto& c : cases) {
    SCOPED_TRACE(c.content.substr(0, 40));
    Write("bad.csv", c.content);
    Collector collector;
    auto result = Pull(connector->get(), {{"dataset", "bad"}, {"object", "bad.csv"}}, &collector);
    EXPECT_EQ(result.status, AIRLOCK_ERR_INVALID_ARGUMENT);
    EXPECT_NE(result.message.find(c.expected), std::string::npos) << result.message;
  }
}

TEST_F(FilesTest, ValuePastTheInferenceWindowMustFit) {
  Write("late.csv", "id,secret\n1,a\n2,b\n3,c\nTOPSECRET,d\n");
  auto connector = Connector({{"infer_rows", 2}});
  Collector c;
  auto result = Pull(connector->get(), {{"dataset", "late"}}, &c);
  EXPECT_EQ(result.status, AIRLOCK_ERR_INVALID_ARGUMENT);
  EXPECT_NE(result.message.find("line 5: column 'id' does not hold a valid int64"),
            std::string::npos)
      << result.message;
  EXPECT_EQ(result.message.find("TOPSECRET"), std::string::npos);  // values never in errors
}

TEST_F(FilesTest, JsonLines) {
  Write("events.jsonl",
        "{\"id\": 1, \"user\": {\"name\": \"ada\"}, \"amount\": 3, \"ok\": true}\n"
        "\n"
        "{\"id\": 2, \"amount\": 4.5, \"tags\": [1, 2], \"ok\": false}\r\n"
        "{\"id\": 3, \"user\": null, \"amount\": null, \"late\": \"ignored\"}");
  auto connector = Connector({{"infer_rows", 2}});
  Collector c = PullOk(connector->get(), {{"dataset", "events"}});
  EXPECT_EQ(c.names(), (std::vector<std::string>{"id", "user", "amount", "ok", "tags"}));
  EXPECT_EQ(c.fields[2].type, arrow::Type::kFloat64);
  ASSERT_EQ(c.rows.size(), 3u);
  EXPECT_EQ(c.column("user"), (std::vector<Json>{R"({"name":"ada"})", Json(), Json()}));
  EXPECT_EQ(c.column("amount"), (std::vector<Json>{3.0, 4.5, Json()}));
  EXPECT_EQ(c.column("ok"), (std::vector<Json>{true, false, Json()}));
  EXPECT_EQ(c.column("tags"), (std::vector<Json>{Json(), "[1,2]", Json()}));

  Collector filtered = PullOk(
      connector->get(), {{"dataset", "events"},
                         {"scope",
                          {{"columns", {"id", "user"}},
                           {"masks", {{"user", "redact"}}},
                           {"row_filter", {{{"column", "ok"}, {"op", "eq"}, {"value", true}}}}}}});
  EXPECT_EQ(filtered.rows, (std::vector<std::vector<Json>>{{1, "***"}}));
  EXPECT_EQ(filtered.string_bytes.find("ada"), std::string::npos);

  Write("broken.jsonl", "{\"id\": 1}\n{\"id\": \n");
  Collector broken;
  auto result = Pull(connector->get(), {{"dataset", "broken"}}, &broken);
  EXPECT_EQ(result.status, AIRLOCK_ERR_INVALID_ARGUMENT);
  EXPECT_NE(result.message.find("line 2: not valid JSON"), std::string::npos) << result.message;
  Write("array.jsonl", "[1, 2]\n");
  result = Pull(connector->get(), {{"dataset", "array"}}, &broken);
  EXPECT_NE(result.message.find("line 1: not a JSON object"), std::string::npos) << result.message;
}

TEST_F(FilesTest, LargeFileArrivesInSeveralBatches) {
  constexpr int kRows = 200000;
  {
    std::ofstream out(fs::path(root_) / "big.csv");
    out << "id,name,value\n";
    for (int i = 0; i < kRows; ++i) out << i << ",name-" << i << "," << (i * 0.5) << "\n";
  }
  auto connector = Connector();
  Collector c = PullOk(connector->get(), {{"dataset", "big"}});
  ASSERT_EQ(c.rows.size(), static_cast<size_t>(kRows));
  EXPECT_GE(c.batch_rows.size(), 20u);
  for (size_t i = 0; i + 1 < c.batch_rows.size(); ++i) EXPECT_EQ(c.batch_rows[i], 8192u);
  for (int i = 0; i < kRows; i += 9999) {
    ASSERT_EQ(c.rows[i][0], i);
    ASSERT_EQ(c.rows[i][1], "name-" + std::to_string(i));
  }
  // Progress is cumulative, once per batch, ending at the total.
  ASSERT_EQ(c.progress.size(), c.batch_rows.size());
  for (size_t i = 1; i < c.progress.size(); ++i) {
    EXPECT_GT(c.progress[i].first, c.progress[i - 1].first);
    EXPECT_GT(c.progress[i].second, c.progress[i - 1].second);
  }
  EXPECT_EQ(c.progress.back().first, static_cast<uint64_t>(kRows));
}

TEST_F(FilesTest, CancellationStopsThePull) {
  {
    std::ofstream out(fs::path(root_) / "big.csv");
    out << "id\n";
    for (int i = 0; i < 100000; ++i) out << i << "\n";
  }
  auto connector = Connector();
  Collector c;
  c.cancel_after = 2;
  auto result = Pull(connector->get(), {{"dataset", "big"}}, &c);
  EXPECT_EQ(result.status, AIRLOCK_ERR_CANCELLED) << result.message;
  EXPECT_EQ(c.batch_rows.size(), 2u);

  // Cancellation is noticed even when the filter keeps nothing.
  Collector filtered;
  filtered.cancel_after = 0;
  result = Pull(connector->get(),
                {{"dataset", "big"},
                 {"scope", {{"row_filter", {{{"column", "id"}, {"op", "lt"}, {"value", 0}}}}}}},
                &filtered);
  EXPECT_EQ(result.status, AIRLOCK_ERR_CANCELLED) << result.message;
}

TEST_F(FilesTest, ConfigErrorsNameTheKey) {
  const std::vector<std::pair<Json, std::string>> cases = {
      {Json::object(), "root is required"},
      {{{"root", base_ + "/missing"}}, "root '" + base_ + "/missing' cannot be resolved"},
      {{{"root", root_}, {"infer_rows", 0}}, "infer_rows must be between 1 and"},
      {{{"root", root_}, {"rooot", 1}}, "unknown key 'rooot'"},
      {{{"root", root_}, {"datasets", {{{"name", "a"}, {"file", "a.csv"}, {"delimiter", ";;"}}}}},
       "datasets[0].delimiter must be one character"},
      {{{"root", root_}, {"datasets", {{{"name", "a"}, {"file", "a.csv"}, {"delimiter", "\""}}}}},
       "datasets[0].delimiter must be one character"},
      {{{"root", root_}, {"datasets", {{{"name", "a"}, {"file", "a.dat"}}}}},
       "datasets[0].format is required"},
      {{{"root", root_}, {"datasets", {{{"name", "a"}, {"file", "a.csv"}, {"format", "xml"}}}}},
       "datasets[0].format 'xml' is unknown"},
      {{{"root", root_}, {"datasets", {{{"name", "a"}, {"file", "/etc/passwd"}}}}},
       "datasets[0].file must be a path relative to root"},
      {{{"root", root_},
        {"datasets",
         {{{"name", "a"}, {"file", "a.csv"}, {"columns", {{{"name", "x"}, {"type", "int"}}}}}}}},
       "datasets[0].columns[0].type 'int' is unknown"},
      {{{"root", root_}, {"datasets", {{{"name", "a"}, {"file", "a.jsonl"}, {"header", false}}}}},
       "datasets[0].header applies to csv only"},
      {{{"root", root_},
        {"datasets", {{{"name", "a"}, {"file", "a.csv"}}, {{"name", "a"}, {"file", "b.csv"}}}}},
       "datasets[1].name 'a' duplicates datasets[0].name"},
      {{{"root", root_}, {"datasets", {{{"name", "a"}, {"file", "a.csv"}, {"sep", ","}}}}},
       "datasets[0]: unknown key 'sep'"},
  };
  for (const auto& [config, expected] : cases) {
    SCOPED_TRACE(expected);
    DlInstance<airlock_type_connector_vtable> instance(table(), config.dump());
    EXPECT_EQ(instance.status(), AIRLOCK_ERR_INVALID_ARGUMENT);
    EXPECT_NE(instance.error().find(expected), std::string::npos) << instance.error();
  }
}

}  // namespace
}  // namespace airlock

namespace airlock {
namespace {

// A quoted field with escaped quotes and embedded line breaks that straddles
// the connector's 1 MiB read buffer still arrives whole; a .tsv file found by
// discovery is read with a tab delimiter.
TEST_F(FilesTest, QuotedFieldAcrossTheReadBufferAndTsvDiscovery) {
  const std::string padding(connectors::files::BufferedFile::kDefaultChunk - 40, 'p');
  const std::string long_text = "first \"\"quoted\"\"\nsecond\r\nthird\t" + std::string(5000, 'x');
  const std::string expected_long = "first \"quoted\"\nsecond\r\nthird\t" + std::string(5000, 'x');
  Write("wide.tsv", "id\ttext\n1\t" + padding + "\n2\t\"" + long_text + "\"\n3\tend\n");
  auto connector = Connector();
  Collector c = PullOk(connector->get(), {{"dataset", "wide"}});
  EXPECT_EQ(c.names(), (std::vector<std::string>{"id", "text"}));
  ASSERT_EQ(c.rows.size(), 3u);
  EXPECT_EQ(c.rows[0][1], padding);
  EXPECT_EQ(c.rows[1][1], expected_long);
  EXPECT_EQ(c.rows[2], (std::vector<Json>{3, "end"}));
  // A second file discovery would list under the same name is ambiguous.
  Write("wide.ndjson", "{\"id\": 1}\n");
  Collector ambiguous;
  auto result = Pull(connector->get(), {{"dataset", "wide"}}, &ambiguous);
  EXPECT_EQ(result.status, AIRLOCK_ERR_INVALID_ARGUMENT) << result.message;
  EXPECT_TRUE(ambiguous.rows.empty());
}

// Escapes through a symlinked directory or a chain of links are refused like
// direct ones; a configured dataset that points outside fails describe().
TEST_F(FilesTest, DirectoryLinksAndLinkChainsCannotLeaveTheRoot) {
  fs::create_directories(fs::path(base_) / "outside");
  std::ofstream(fs::path(base_) / "outside" / "secret.csv") << "password\nhunter2\n";
  fs::create_directory_symlink(fs::path(base_) / "outside", fs::path(root_) / "linkdir");
  fs::create_directory_symlink("../outside", fs::path(root_) / "rellinkdir");
  fs::create_directories(fs::path(root_) / "sub");
  fs::create_symlink("../outside/secret.csv", fs::path(root_) / "hop2.csv");
  fs::create_symlink("../hop2.csv", fs::path(root_) / "sub" / "hop1.csv");
  auto connector = Connector({{"datasets", Json::array()}});
  for (const std::string object : {"linkdir/secret.csv", "rellinkdir/secret.csv", "sub/hop1.csv",
                                   "hop2.csv", "sub/../linkdir/secret.csv"}) {
    SCOPED_TRACE(object);
    Collector c;
    auto result = Pull(connector->get(), {{"dataset", "x"}, {"object", object}}, &c);
    EXPECT_EQ(result.status, AIRLOCK_ERR_PERMISSION_DENIED) << result.message;
    EXPECT_TRUE(c.rows.empty());
    EXPECT_EQ(c.string_bytes.find("hunter2"), std::string::npos);
    EXPECT_EQ(result.message.find("hunter2"), std::string::npos);
  }
  auto configured = Connector({{"datasets", {{{"name", "leak"}, {"file", "linkdir/secret.csv"}}}}});
  PullResult described;
  Describe(configured->get(), &described);
  EXPECT_EQ(described.status, AIRLOCK_ERR_PERMISSION_DENIED) << described.message;
}

}  // namespace
}  // namespace airlock
