// The pgwire tunnel's translation of PostgreSQL text into the enclave's SQL
// (plugins/tunnels/pgwire/translator.h): PostgreSQL's own parser, then the
// translator over a grant of two tables. The bytes are one statement as a
// client sends it.
//
// Checked beyond the sanitizers, for every statement translated: the result
// is exactly one statement of the engine (identifiers and literals cannot
// end it early: a way to smuggle a second statement in); every $n it holds
// names a client parameter or a derived one; every parameter has a type.
// Catalog statements then run on the connection's catalog database. The
// date/time input functions are idempotent on their own output.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "plugins/tunnels/pgwire/catalog.h"
#include "plugins/tunnels/pgwire/pg_datetime.h"
#include "plugins/tunnels/pgwire/sql_text.h"
#include "plugins/tunnels/pgwire/translator.h"
#include "plugins/tunnels/pgwire/types.h"

namespace {

using namespace airlock::tunnels::pgwire;

[[noreturn]] void Fail(const char* what, std::string_view text) {
  std::fprintf(stderr, "pg translate: %s: %.*s\n", what, static_cast<int>(text.size()),
               text.data());
  std::abort();
}

const GrantSchema& Schema() {
  static const GrantSchema schema = [] {
    GrantSchema s;
    s.tables.push_back(TableSchema{"orders",
                                   10,
                                   {{"id", oid::kInt8},
                                    {"amount", oid::kFloat8},
                                    {"placed", oid::kDate},
                                    {"shipped_at", oid::kTimestamp},
                                    {"updated_at", oid::kTimestamptz},
                                    {"customer", oid::kText},
                                    {"paid", oid::kBool}}});
    s.tables.push_back(TableSchema{"customers", 3, {{"name", oid::kText}, {"tier", oid::kInt4}}});
    return s;
  }();
  return schema;
}

// Runs catalog statements for real: the catalog database's own functions
// (arrays, regular expressions, reg* lookups) get the fuzzer's values.
class Discard final : public airlock::sdk::BatchConsumer {
 public:
  airlock::Status OnSchema(airlock::arrow::OwnedSchema) override { return airlock::Status::Ok(); }
  airlock::Status OnBatch(airlock::arrow::OwnedArray) override { return airlock::Status::Ok(); }
};

CatalogDatabase& Catalog() {
  static std::unique_ptr<CatalogDatabase> db = [] {
    auto built = CatalogDatabase::Build(Schema(), SessionFacts{"req_1", "req_1", "fuzz"});
    if (!built.ok()) Fail("the catalog cannot be built", built.status().message());
    return std::move(built).value();
  }();
  return *db;
}

void CheckDateTime(std::string_view text) {
  if (auto d = CanonicalDate(text); d && CanonicalDate(*d) != d) Fail("date not idempotent", text);
  for (bool tz : {false, true}) {
    if (auto t = CanonicalTimestamp(text, tz); t && CanonicalTimestamp(*t, tz) != t) {
      Fail("timestamp not idempotent", text);
    }
  }
  if (auto t = CanonicalTime(text); t && CanonicalTime(*t) != t) Fail("time not idempotent", text);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;  // the parser's cost grows with the text, not its findings
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  CheckDateTime(text);
  (void)LikeToGlob(text, '\\');

  const SessionFacts facts{"req_1", "req_1", "fuzz"};
  auto result = Translate(text, Schema(), {}, facts);
  const auto* t = std::get_if<Translation>(&result);
  if (t == nullptr) return 0;
  if (t->sql.empty()) Fail("empty translation", text);
  if (SplitStatements(t->sql).size() != 1) Fail("not exactly one statement", t->sql);
  for (uint32_t type : t->parameter_types) {
    if (type == oid::kUnspecified) Fail("a parameter without a type", t->sql);
  }
  const std::string marker = "NULL";
  auto substituted = SubstituteParameters(t->sql, [&](int n) -> const std::string* {
    if (n >= kFirstDerivedParameter) {
      return static_cast<size_t>(n - kFirstDerivedParameter) < t->derived.size() ? &marker
                                                                                 : nullptr;
    }
    return static_cast<size_t>(n) <= t->parameter_types.size() ? &marker : nullptr;
  });
  if (!substituted.ok()) Fail("a $n that names no parameter", t->sql);
  if (t->catalog) {
    Discard discard;
    (void)Catalog().Query(*substituted, discard);
  }
  return 0;
}
