#include "tests/plugins/connectors/postgres/pg_test_env.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "airlock/cpp/abi_util.hpp"

namespace airlock::pgtest {
namespace {

constexpr char kPluginPath[] = AIRLOCK_PLUGIN_DIR "/airlock_connector_postgres.so";

// Roles, types and tables every test reads. Values are chosen for edges:
// extremes, NULL in every column, empty and non-ASCII text, infinities.
constexpr char kSetupSql[] = R"SQL(
CREATE ROLE reader LOGIN PASSWORD 'reader-Pw-7f3a9c';
CREATE ROLE norights LOGIN PASSWORD 'norights-Pw-2b8e41';
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN positive_int AS int4 CHECK (VALUE > 0);
CREATE TABLE all_types (
  id int4 PRIMARY KEY,
  c_int2 int2, c_int4 int4, c_int8 int8, c_numeric numeric, c_float4 float4, c_float8 float8,
  c_bool bool, c_text text, c_varchar varchar(20), c_char char(5), c_date date, c_time time,
  c_timestamp timestamp, c_timestamptz timestamptz, c_interval interval, c_uuid uuid,
  c_json json, c_jsonb jsonb, c_bytea bytea, c_int_array int4[], c_text_array text[],
  c_enum mood, c_domain positive_int);
INSERT INTO all_types VALUES
 (1, 12, 1234, 1234567890123, '12.50', 1.5, 2.25, true, 'plain', 'vc', 'ab',
  '2024-02-29', '12:34:56.5', '2024-02-29 12:34:56.123456', '2024-02-29 12:34:56+02',
  '1 year 2 months 3 days 04:05:06', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
  '{"a": [1, 2, {"b": null}]}', '{"z": 1, "a": "x"}', '\x00ff10', '{1,2,3}',
  '{"x","y z",NULL,"q\"uote"}', 'happy', 7),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (3, -32768, -2147483648, -9223372036854775808, '-123456789012345678901234567890.123456789',
  -0.1, -1e-300, false, '', '', '', 'infinity', '00:00:00', '-infinity',
  '1999-12-31 23:59:59.999999+05:30', '-1 years -2 mons +3 days -04:05:06.789',
  '00000000-0000-0000-0000-000000000000', '[]', '{}', '', '{{1,2},{3,4}}', '{}', 'sad', 1),
 (4, 32767, 2147483647, 9223372036854775807,
  '100000000000000000000000000000000000000000000000000.000000000000000000001', 'Infinity',
  'NaN', true, 'ünïcødé ☃ 🎉 "q" \ back', 'ß', 'é', '-infinity', '24:00:00', 'infinity',
  'infinity', '0 seconds', 'FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF', '"only a string"', 'null',
  '\x', '{-1,NULL}', '{"ü"}', 'ok', 2147483647),
 (5, 0, 0, 0, 'NaN', '-Infinity', '1.7976931348623157e308', false, E'tab\tnew\nline',
  'x', 'abcde', '0001-01-01', '23:59:59.999999', '1970-01-01 00:00:00',
  '1970-01-01 00:00:00.000001+00', '-178000000 years', 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11',
  '{"nested": {"k": [true, false]}}', '[1, "two", 3.0]', '\xdeadbeef', '{}', '{""}', 'sad', 42);

CREATE TABLE people (id int4, name text, ssn text, balance numeric, born date,
                     seen timestamptz, score float8, "odd "" name" text);
INSERT INTO people VALUES
 (1, 'Ada Lovelace', '123-45-6789', 100.50, '1815-12-10', '2024-01-01 10:00:00+00', 1.5, 'a'),
 (2, 'Bob', '987-65-4321', -20, '1990-06-01', '2024-06-01 12:30:00.25+00', NULL, 'b'),
 (3, 'Chloé', NULL, 0, NULL, NULL, 'NaN', NULL),
 (4, NULL, '555-00-1111', 1e6, '2000-01-01', '1999-12-31 23:00:00-01', -3, 'd'),
 (5, 'x'' OR ''1''=''1', '000-00-0000', 7, '2010-10-10', '2010-10-10 10:10:10+00', 10, 'e');

CREATE TABLE pointy (id int4, p point);
INSERT INTO pointy VALUES (1, '(1,2)'), (2, NULL);

CREATE TABLE big (id int8, label text, value float8);
INSERT INTO big SELECT g, 'row-' || g, g * 0.5 FROM generate_series(1, 50000) g;

CREATE TABLE secret_stuff (id int4, payload text);
INSERT INTO secret_stuff VALUES (1, 'hidden');

-- A composite primary key in an order other than the columns'.
CREATE TABLE keyed (region text, note text, id int8, PRIMARY KEY (id, region));
INSERT INTO keyed VALUES ('eu', 'a', 1), ('us', 'b', 1), ('eu', NULL, 2);
CREATE VIEW keyed_view AS SELECT * FROM keyed;

GRANT SELECT ON all_types, people, pointy, big, keyed, keyed_view TO reader;
ANALYZE;
)SQL";

void SetUp(Env& env) {
  test::PgClusterOptions options;
  options.log_statements = true;
  env.cluster = test::PgCluster::Start(options);
  env.cluster->Exec(kSetupSql);
  ::setenv(kReaderPasswordEnv, kReaderPassword, 1);
  ::setenv(kNoRightsPasswordEnv, kNoRightsPassword, 1);
  ::setenv(kWrongPasswordEnv, kWrongPassword, 1);
  std::string error;
  env.plugin = testing::DlPlugin::Load(kPluginPath, env.host.services(), &error);
  if (!env.plugin) throw std::runtime_error("loading the postgres connector: " + error);
}

struct HeldSecret {
  std::string bytes;
  SecretHost* host;
};

}  // namespace

SecretHost::SecretHost() {
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
  services_.now_unix_micros = [](void*) -> int64_t { return 0; };
  services_.secret_resolve = [](void* self, const char* reference, size_t length,
                                airlock_type_secret* secret,
                                airlock_type_error* error) -> airlock_type_status {
    auto* host = static_cast<SecretHost*>(self);
    const std::string ref(reference, length);
    if (!ref.starts_with("env:")) {
      abi::FillError(error, "only env: references in this test host");
      return AIRLOCK_ERR_INVALID_ARGUMENT;
    }
    const char* value = std::getenv(ref.substr(4).c_str());
    if (value == nullptr) {
      abi::FillError(error, "secret " + ref + " is not set");
      return AIRLOCK_ERR_NOT_FOUND;
    }
    auto held = std::make_unique<HeldSecret>(HeldSecret{value, host});
    secret->data = reinterpret_cast<const uint8_t*>(held->bytes.data());
    secret->length = held->bytes.size();
    secret->private_data = held.release();  // taken back by release below
    secret->release = [](airlock_type_secret* s) {
      std::unique_ptr<HeldSecret> owned(static_cast<HeldSecret*>(s->private_data));
      std::memset(owned->bytes.data(), 0, owned->bytes.size());
      owned->host->released_.fetch_add(1);
      s->data = nullptr;
      s->length = 0;
      s->release = nullptr;
      s->private_data = nullptr;
    };
    host->resolved_.fetch_add(1);
    return AIRLOCK_OK;
  };
}

std::vector<std::string> SecretHost::logs() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return logs_;
}

Env& Shared() {
  // Destroyed at exit: the plugin is unloaded, then the cluster stopped.
  static std::once_flag once;
  static std::unique_ptr<Env> env;
  std::call_once(once, [] {
    env = std::make_unique<Env>();
    SetUp(*env);
  });
  return *env;
}

Json Config(const Json& datasets, const Json& overrides) {
  Env& env = Shared();
  Json config = {{"host", "127.0.0.1"},
                 {"port", env.cluster->port()},
                 {"database", "postgres"},
                 {"user", "reader"},
                 {"password", std::string("env:") + kReaderPasswordEnv},
                 {"sslmode", "verify-full"},
                 {"ca_file", env.cluster->ca_file()},
                 {"datasets", datasets}};
  for (const auto& [key, value] : overrides.items()) config[key] = value;
  return config;
}

Status Collector::OnSchema(arrow::OwnedSchema schema) {
  if (schema_.valid()) return Status::Internal("schema sent twice");
  schema_ = std::move(schema);
  auto key = arrow::FindMetadata(*schema_.get(), sdk::kKeyColumnsMetadata);
  if (!key.ok()) return key.status();
  key_metadata = *key;
  for (int64_t i = 0; i < schema_->n_children; ++i) {
    auto field = arrow::ParseField(*schema_->children[i]);
    if (!field.ok()) return field.status();
    fields.push_back(*field);
  }
  return Status::Ok();
}

Status Collector::OnBatch(arrow::OwnedArray batch) {
  if (!schema_.valid()) return Status::Internal("batch before schema");
  auto view = arrow::BatchView::Make(*schema_.get(), *batch.get());
  if (!view.ok()) return view.status();
  batch_rows.push_back(view->num_rows());
  for (size_t r = 0; r < view->num_rows(); ++r) {
    std::vector<Json> row;
    for (size_t c = 0; c < view->num_columns(); ++c) {
      if (view->IsNull(c, r)) {
        row.emplace_back(nullptr);
        continue;
      }
      switch (view->field(c).type) {
        case arrow::Type::kBool:
          row.emplace_back(view->GetBool(c, r));
          break;
        case arrow::Type::kInt32:
          row.emplace_back(view->GetInt32(c, r));
          break;
        case arrow::Type::kInt64:
          row.emplace_back(view->GetInt64(c, r));
          break;
        case arrow::Type::kFloat64: {
          const double d = view->GetDouble(c, r);
          if (std::isnan(d)) {
            row.emplace_back("nan");
          } else if (std::isinf(d)) {
            row.emplace_back(d > 0 ? "inf" : "-inf");
          } else {
            row.emplace_back(d);
          }
          break;
        }
        case arrow::Type::kDate32:
          row.emplace_back(view->GetDate32(c, r));
          break;
        case arrow::Type::kTimestampMicros:
          row.emplace_back(view->GetTimestamp(c, r));
          break;
        case arrow::Type::kTime64Micros:
          row.emplace_back(view->GetTime(c, r));
          break;
        case arrow::Type::kBinary: {
          static constexpr char kHex[] = "0123456789abcdef";
          std::string hex = "\\x";
          for (unsigned char b : view->GetString(c, r)) {
            hex.push_back(kHex[b >> 4]);
            hex.push_back(kHex[b & 0xF]);
          }
          row.emplace_back(hex);
          break;
        }
        default:
          row.emplace_back(std::string(view->GetString(c, r)));
          break;
      }
    }
    rows.push_back(std::move(row));
  }
  return Status::Ok();
}

size_t Collector::Column(const std::string& name) const {
  for (size_t i = 0; i < fields.size(); ++i) {
    if (fields[i].name == name) return i;
  }
  throw std::runtime_error("no delivered column " + name);
}

PullOutcome Pull(const Json& config, const Json& pull, Collector& collector) {
  Env& env = Shared();
  const auto& table = env.plugin->vtable<airlock_type_connector_vtable>();
  const std::string config_text = config.dump();
  testing::DlInstance<airlock_type_connector_vtable> instance(table, config_text);
  PullOutcome outcome;
  if (!instance.ok()) {
    outcome.status = instance.status();
    outcome.message = instance.error();
    return outcome;
  }
  airlock_type_batch_sink sink = sdk::MakeBatchSink(collector);
  abi::ErrorHolder error;
  const std::string pull_text = pull.dump();
  outcome.status =
      table.pull(instance.get(), pull_text.data(), pull_text.size(), &sink, error.get());
  outcome.message = error.message();
  return outcome;
}

PullOutcome Describe(const Json& config, Json* catalog) {
  Env& env = Shared();
  const auto& table = env.plugin->vtable<airlock_type_connector_vtable>();
  const std::string config_text = config.dump();
  testing::DlInstance<airlock_type_connector_vtable> instance(table, config_text);
  PullOutcome outcome;
  if (!instance.ok()) {
    outcome.status = instance.status();
    outcome.message = instance.error();
    return outcome;
  }
  abi::BufferHolder buffer;
  abi::ErrorHolder error;
  outcome.status = table.describe(instance.get(), buffer.get(), error.get());
  outcome.message = error.message();
  if (outcome.status == AIRLOCK_OK) *catalog = Json::parse(buffer.view());
  return outcome;
}

}  // namespace airlock::pgtest
