// Runs the SDK's connector conformance kit against the sequence connector:
// the kit's typed and empty datasets are tables in the configuration, the
// generated sequence is the large dataset.
#include <airlock/testing/connector_conformance.hpp>

namespace {

namespace conformance = airlock::conformance;

class SequenceFixture : public conformance::ConnectorFixture {
 public:
  airlock::Result<conformance::ConformanceSetup> Prepare() override {
    airlock::Json typed_columns = airlock::Json::array();
    for (const auto& field : conformance::TypedColumns()) {
      const bool timestamp = field.type == airlock::arrow::Type::kTimestampMicros;
      typed_columns.push_back(
          {{"name", field.name},
           {"type", timestamp ? "timestamp" : airlock::arrow::TypeName(field.type)}});
    }
    const airlock::Json config = {
        {"rows", 20000},
        {"batch_rows", 1000},
        {"tables",
         {{{"name", "typed"},
           {"columns", typed_columns},
           {"rows", airlock::Json::parse(conformance::TypedRowsAsJson().dump())}},
          {{"name", "empty"},
           {"columns", {{{"name", "id"}, {"type", "int64"}}}},
           {"rows", airlock::Json::array()}}}}};

    conformance::ConformanceSetup setup;
    setup.connector.plugin_path = SEQUENCE_PLUGIN_PATH;
    setup.config_json = config.dump();
    setup.typed.dataset = "typed";
    setup.empty.dataset = "empty";
    setup.empty_columns = {"id"};
    setup.large.dataset = "sequence";
    setup.large_rows = 20000;
    setup.large_id_column = "n";
    setup.max_batch_rows = 1000;
    setup.max_batch_bytes = 1 << 20;
    setup.missing.dataset = "no_such_dataset";
    setup.bad_credentials_not_applicable = "the sequence connector has no credentials";
    setup.permission_denied_not_applicable = "the sequence connector has no access control";
    return setup;
  }
};

}  // namespace

AIRLOCK_CONNECTOR_CONFORMANCE_SUITE(Sequence, SequenceFixture);
