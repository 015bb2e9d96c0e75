// Runs the connector conformance kit against the files connector: one suite
// per format (CSV, CSV with a custom delimiter, JSON Lines), each over a
// temporary root the fixture fills with the kit's datasets.
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "airlock/testing/connector_conformance.hpp"

namespace {

namespace fs = std::filesystem;
namespace conformance = airlock::conformance;

constexpr char kPluginPath[] = AIRLOCK_PLUGIN_DIR "/airlock_connector_files.so";
constexpr int64_t kLargeRows = 20000;
constexpr int64_t kBatchRows = 1000;
// Lies outside the root; the permission-denied case tries to reach it, and
// the kit checks it never shows up in an error or a log line.
constexpr char kOutsideSecret[] = "outside-the-root-hunter2";

enum class Flavour { kCsv, kSemicolonCsv, kJsonLines };

template <Flavour kFlavour>
class FilesFixture : public conformance::ConnectorFixture {
 public:
  ~FilesFixture() override {
    if (!base_.empty()) {
      std::error_code ignored;
      fs::remove_all(base_, ignored);
    }
  }

  airlock::Result<conformance::ConformanceSetup> Prepare() override {
    char pattern[] = "/tmp/airlock-conformance-files-XXXXXX";
    if (::mkdtemp(pattern) == nullptr) return airlock::Status::Internal("mkdtemp failed");
    base_ = pattern;
    const fs::path root = fs::path(base_) / "root";
    fs::create_directories(root);
    Write(fs::path(base_) / "outside.csv", std::string("secret\n") + kOutsideSecret + "\n");

    const bool jsonl = kFlavour == Flavour::kJsonLines;
    const std::string ext = jsonl ? ".jsonl" : ".csv";
    const char delimiter = kFlavour == Flavour::kSemicolonCsv ? ';' : ',';
    const std::string d(1, delimiter);

    // The typed dataset: the kit's rows, types declared.
    Write(root / ("typed" + ext),
          jsonl ? conformance::TypedRowsJsonLines() : conformance::TypedRowsCsv(delimiter));
    // The empty dataset: a header only (CSV) or an empty file (JSON Lines).
    Write(root / ("empty" + ext), jsonl ? "" : "id" + d + "label\n");
    // The large dataset: id 1..N plus a text and a number column.
    std::string large = jsonl ? "" : "id" + d + "label" + d + "value\n";
    for (int64_t i = 1; i <= kLargeRows; ++i) {
      const std::string label = "row number " + std::to_string(i);
      const std::string value = std::to_string(i) + ".5";
      large += jsonl ? R"({"id":)" + std::to_string(i) + R"(,"label":")" + label + R"(","value":)" +
                           value + "}\n"
                     : std::to_string(i) + d + label + d + value + "\n";
    }
    Write(root / ("large" + ext), large);

    airlock::Json typed_columns = airlock::Json::array();
    for (const auto& field : conformance::TypedColumns()) {
      typed_columns.push_back({{"name", field.name},
                               {"type", field.type == airlock::arrow::Type::kTimestampMicros
                                            ? "timestamp"
                                            : airlock::arrow::TypeName(field.type)}});
    }
    auto dataset = [&](const std::string& name, airlock::Json columns) {
      airlock::Json j = {{"name", name}, {"file", name + ext}, {"columns", std::move(columns)}};
      if (!jsonl) j["delimiter"] = d;
      return j;
    };
    const airlock::Json config = {{"root", root.string()},
                                  {"batch_rows", kBatchRows},
                                  {"datasets",
                                   {dataset("typed", typed_columns),
                                    dataset("empty", {{{"name", "id"}, {"type", "int64"}},
                                                      {{"name", "label"}, {"type", "utf8"}}}),
                                    dataset("large", airlock::Json::array())}}};

    conformance::ConformanceSetup setup;
    setup.connector.plugin_path = kPluginPath;
    setup.config_json = config.dump();
    setup.typed = {"typed"};
    setup.empty = {"empty"};
    setup.empty_columns = {"id", "label"};
    setup.large = {"large"};
    setup.large_rows = kLargeRows;
    setup.max_batch_rows = kBatchRows;
    setup.max_batch_bytes = 1u << 20;
    setup.missing = {"missing", "missing" + ext};
    setup.bad_credentials_not_applicable =
        "the files connector reads a local directory and takes no credentials";
    // A path leaving the configured root is refused as permission_denied.
    setup.permission_denied = conformance::ErrorCase{{}, {"escape", "../outside.csv"}};
    setup.secret_values = {kOutsideSecret};
    return setup;
  }

 private:
  static void Write(const fs::path& path, const std::string& content) {
    std::ofstream(path, std::ios::binary) << content;
  }

  std::string base_;
};

}  // namespace

// Named classes at global scope, so test names read "FilesCsv.<Test><FilesCsv>".
class FilesCsv final : public FilesFixture<Flavour::kCsv> {};
class FilesSemicolonCsv final : public FilesFixture<Flavour::kSemicolonCsv> {};
class FilesJsonLines final : public FilesFixture<Flavour::kJsonLines> {};

AIRLOCK_CONNECTOR_CONFORMANCE_SUITE(FilesCsv, FilesCsv);
AIRLOCK_CONNECTOR_CONFORMANCE_SUITE(FilesSemicolonCsv, FilesSemicolonCsv);
AIRLOCK_CONNECTOR_CONFORMANCE_SUITE(FilesJsonLines, FilesJsonLines);
