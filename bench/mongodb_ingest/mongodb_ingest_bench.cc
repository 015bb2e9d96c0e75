// Pull of a MongoDB collection into the enclave's in-memory SQLite against a
// bare libmongoc cursor loop over the same collection, same server, same run.
//
//   ours: the mongodb connector loaded through the kernel's plugin host
//         (PluginLoader + ConnectorPlugin), pulled by the enclave's
//         Ingestion (kernel/enclave/ingestion.h) into in-memory SQLite,
//         staging tables published.
//   bare: mongoc_collection_find_with_opts({}, batchSize) and a loop that
//         reads every field of every document (bson_iter), nothing stored.
//
// The server is the wire-protocol test double of tests/support/mongodb,
// seeded directly with N documents of six fields (ObjectId, int64, string,
// double, bool, date). Each side runs `--repeat` times, alternating; the
// report gives the best and median of each and ours/bare as a throughput
// ratio (higher is better; 1.0 means ingestion costs nothing over reading).
//
// Usage: mongodb_ingest_bench [--documents N] [--repeat R] [--batch-rows B]
#include <bson/bson.h>
#include <mongoc/mongoc.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "airlock/c/airlock_plugin.h"
#include "kernel/enclave/ingestion.h"
#include "kernel/plugin_host/plugin_instances.h"
#include "kernel/plugin_host/plugin_loader.h"
#include "tests/support/mongodb/mongo_test_server.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  int64_t documents = 1000000;
  int repeat = 3;
  int64_t batch_rows = 8192;
};

Options ParseArgs(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string key = argv[i];
    const int64_t value = std::strtoll(argv[i + 1], nullptr, 10);
    if (key == "--documents") o.documents = value;
    if (key == "--repeat") o.repeat = static_cast<int>(value);
    if (key == "--batch-rows") o.batch_rows = value;
  }
  return o;
}

void Seed(airlock::testing::mongodb::MongoTestServer& server, int64_t n) {
  constexpr int64_t kChunk = 100000;
  for (int64_t start = 0; start < n; start += kChunk) {
    std::vector<bson_t*> docs;
    for (int64_t i = start; i < std::min(n, start + kChunk); ++i) {
      bson_t* doc = bson_new();
      bson_oid_t oid;
      bson_oid_init(&oid, nullptr);
      BSON_APPEND_OID(doc, "_id", &oid);
      BSON_APPEND_INT64(doc, "id", i);
      char name[32];
      std::snprintf(name, sizeof name, "customer-%07lld", static_cast<long long>(i));
      BSON_APPEND_UTF8(doc, "name", name);
      BSON_APPEND_DOUBLE(doc, "amount", static_cast<double>(i) * 0.25);
      BSON_APPEND_BOOL(doc, "active", i % 3 == 0);
      BSON_APPEND_DATE_TIME(doc, "created", 1700000000000 + i * 1000);
      docs.push_back(doc);
    }
    server.Insert("bench", "orders", std::vector<const bson_t*>(docs.begin(), docs.end()));
    for (bson_t* d : docs) bson_destroy(d);
  }
}

// Reads every field of every document; returns the number of documents.
// `same_pipeline`: aggregate with the $project the connector sends for a
// full pull (so the server does the same work); otherwise a plain find.
int64_t BareLoop(const std::string& uri, int64_t batch_rows, bool same_pipeline) {
  mongoc_client_t* client = mongoc_client_new(uri.c_str());
  mongoc_collection_t* coll = mongoc_client_get_collection(client, "bench", "orders");
  bson_t filter = BSON_INITIALIZER;
  bson_t* opts = BCON_NEW("batchSize", BCON_INT64(batch_rows));
  bson_t* pipeline = BCON_NEW("0", "{", "$project", "{", "_id", BCON_INT32(1), "id", BCON_INT32(1),
                              "name", BCON_INT32(1), "amount", BCON_INT32(1), "active",
                              BCON_INT32(1), "created", BCON_INT32(1), "}", "}");
  mongoc_cursor_t* cursor =
      same_pipeline ? mongoc_collection_aggregate(coll, MONGOC_QUERY_NONE, pipeline, opts, nullptr)
                    : mongoc_collection_find_with_opts(coll, &filter, opts, nullptr);
  bson_destroy(pipeline);
  const bson_t* doc = nullptr;
  int64_t count = 0;
  uint64_t checksum = 0;
  while (mongoc_cursor_next(cursor, &doc)) {
    bson_iter_t it;
    if (!bson_iter_init(&it, doc)) continue;
    while (bson_iter_next(&it)) {
      switch (bson_iter_type(&it)) {
        case BSON_TYPE_INT64:
          checksum += static_cast<uint64_t>(bson_iter_int64(&it));
          break;
        case BSON_TYPE_DOUBLE:
          checksum += static_cast<uint64_t>(bson_iter_double(&it));
          break;
        case BSON_TYPE_UTF8: {
          uint32_t len = 0;
          checksum += static_cast<unsigned char>(bson_iter_utf8(&it, &len)[0]) + len;
          break;
        }
        case BSON_TYPE_BOOL:
          checksum += bson_iter_bool(&it);
          break;
        case BSON_TYPE_DATE_TIME:
          checksum += static_cast<uint64_t>(bson_iter_date_time(&it));
          break;
        case BSON_TYPE_OID:
          checksum += bson_iter_oid(&it)->bytes[11];
          break;
        default:
          break;
      }
    }
    ++count;
  }
  bson_error_t error;
  if (mongoc_cursor_error(cursor, &error)) std::fprintf(stderr, "bare: %s\n", error.message);
  mongoc_cursor_destroy(cursor);
  bson_destroy(opts);
  mongoc_collection_destroy(coll);
  mongoc_client_destroy(client);
  if (checksum == 42) std::fprintf(stderr, " ");  // keeps the reads
  return count;
}

airlock_host_services QuietHost() {
  airlock_host_services host;
  std::memset(&host, 0, sizeof host);
  host.size = sizeof host;
  host.abi_major = AIRLOCK_ABI_MAJOR;
  host.abi_minor = AIRLOCK_ABI_MINOR;
  host.log = [](void*, int32_t, const char*, const char*, size_t) {};
  return host;
}

// The connector through the plugin host into the enclave's ingestion.
int64_t OurPull(airlock::plugin_host::PluginLoader& loader, const std::string& plugin,
                const std::string& uri, int64_t batch_rows, int run) {
  using namespace airlock;
  auto library = loader.Load(plugin, std::nullopt, AIRLOCK_KIND_CONNECTOR);
  if (!library.ok()) {
    std::fprintf(stderr, "load: %s\n", library.status().ToString().c_str());
    std::exit(1);
  }
  const Json config = {{"uri", uri},
                       {"database", "bench"},
                       {"batch_rows", batch_rows},
                       {"datasets", {{{"name", "orders"}}}}};
  PullSpec spec;
  spec.dataset = "orders";
  spec.object = "orders";
  enclave::IngestOptions options;
  options.max_memory_bytes = int64_t{4} << 30;
  enclave::Ingestion ingestion({"orders"}, "mongo-bench-" + std::to_string(run), options);
  Status status = ingestion.Run(
      [&](size_t, sdk::BatchConsumer& consumer) -> Status {
        AIRLOCK_ASSIGN_OR_RETURN(auto connector,
                                 plugin_host::ConnectorPlugin::Create(*library, config));
        return connector->Pull(spec, consumer);
      },
      [](const Json&) {});
  if (status.ok()) status = ingestion.PublishTables();
  if (!status.ok()) {
    std::fprintf(stderr, "ingestion: %s\n", status.ToString().c_str());
    std::exit(1);
  }
  const int64_t rows = static_cast<int64_t>(ingestion.tables().at(0).rows);
  ingestion.CloseWriters();
  return rows;
}

// The connector through the plugin host into a consumer that only counts:
// what the connector costs without SQLite.
int64_t PullOnly(airlock::plugin_host::PluginLoader& loader, const std::string& plugin,
                 const std::string& uri, int64_t batch_rows) {
  using namespace airlock;
  class Counter : public sdk::BatchConsumer {
   public:
    Status OnSchema(arrow::OwnedSchema) override { return Status::Ok(); }
    Status OnBatch(arrow::OwnedArray batch) override {
      rows += batch->length;
      return Status::Ok();
    }
    int64_t rows = 0;
  } counter;
  auto library = loader.Load(plugin, std::nullopt, AIRLOCK_KIND_CONNECTOR);
  const Json config = {{"uri", uri},
                       {"database", "bench"},
                       {"batch_rows", batch_rows},
                       {"datasets", {{{"name", "orders"}}}}};
  PullSpec spec;
  spec.dataset = spec.object = "orders";
  auto connector = plugin_host::ConnectorPlugin::Create(*library, config);
  Status status = connector.ok() ? (*connector)->Pull(spec, counter) : connector.status();
  if (!status.ok()) {
    std::fprintf(stderr, "pull: %s\n", status.ToString().c_str());
    std::exit(1);
  }
  return counter.rows;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = ParseArgs(argc, argv);
  mongoc_init();
  mongoc_log_set_handler([](mongoc_log_level_t, const char*, const char*, void*) {}, nullptr);
  std::string error;
  auto server = airlock::testing::mongodb::MongoTestServer::Start({}, &error);
  if (!server) {
    std::fprintf(stderr, "server: %s\n", error.c_str());
    return 1;
  }
  Seed(*server, o.documents);
  const std::string uri = server->uri();
  static const airlock_host_services host = QuietHost();
  airlock::plugin_host::PluginLoader loader(&host);
  const std::string plugin = AIRLOCK_PLUGIN_DIR "/airlock_connector_mongodb.so";

  std::vector<double> bare_s, bare_agg_s, ours_s, pull_s;
  for (int run = 0; run < o.repeat; ++run) {
    auto ta = Clock::now();
    const int64_t bare_agg_rows = BareLoop(uri, o.batch_rows, true);
    auto t0 = Clock::now();
    const int64_t bare_rows = BareLoop(uri, o.batch_rows, false);
    auto t1 = Clock::now();
    const int64_t our_rows = OurPull(loader, plugin, uri, o.batch_rows, run);
    auto t2 = Clock::now();
    const int64_t pulled_rows = PullOnly(loader, plugin, uri, o.batch_rows);
    auto t3 = Clock::now();
    if (bare_rows != o.documents || our_rows != o.documents || pulled_rows != o.documents ||
        bare_agg_rows != o.documents) {
      std::fprintf(stderr, "row counts differ: bare %lld, ours %lld, expected %lld\n",
                   static_cast<long long>(bare_rows), static_cast<long long>(our_rows),
                   static_cast<long long>(o.documents));
      return 1;
    }
    bare_s.push_back(std::chrono::duration<double>(t1 - t0).count());
    bare_agg_s.push_back(std::chrono::duration<double>(t0 - ta).count());
    ours_s.push_back(std::chrono::duration<double>(t2 - t1).count());
    pull_s.push_back(std::chrono::duration<double>(t3 - t2).count());
    std::printf(
        "run %d: bare find %.3f s, bare aggregate %.3f s, ours %.3f s (connector alone "
        "%.3f s)\n",
        run + 1, bare_s.back(), bare_agg_s.back(), ours_s.back(), pull_s.back());
  }
  const double n = static_cast<double>(o.documents);
  const double bare_best = *std::min_element(bare_s.begin(), bare_s.end());
  const double ours_best = *std::min_element(ours_s.begin(), ours_s.end());
  std::printf("documents: %lld, batch rows: %lld\n", static_cast<long long>(o.documents),
              static_cast<long long>(o.batch_rows));
  std::printf("bare libmongoc loop: best %.3f s (%.0f docs/s), median %.3f s\n", bare_best,
              n / bare_best, Median(bare_s));
  const double agg_best = *std::min_element(bare_agg_s.begin(), bare_agg_s.end());
  std::printf("bare libmongoc loop, same $project: best %.3f s (%.0f docs/s), median %.3f s\n",
              agg_best, n / agg_best, Median(bare_agg_s));
  std::printf("connector -> SQLite: best %.3f s (%.0f rows/s), median %.3f s\n", ours_best,
              n / ours_best, Median(ours_s));
  const double pull_best = *std::min_element(pull_s.begin(), pull_s.end());
  std::printf("connector alone (counting sink, no SQLite): best %.3f s (%.0f rows/s)\n", pull_best,
              n / pull_best);
  std::printf("ratio (ours/bare find throughput): best %.2fx, median %.2fx\n",
              bare_best / ours_best, Median(bare_s) / Median(ours_s));
  std::printf("ratio (ours/bare same-pipeline throughput): best %.2fx, median %.2fx\n",
              agg_best / ours_best, Median(bare_agg_s) / Median(ours_s));
  std::printf("ratio (connector alone/bare same-pipeline): best %.2fx\n", agg_best / pull_best);
  return 0;
}
