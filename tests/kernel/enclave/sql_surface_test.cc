// The enclave's SQL surface (kernel/enclave/sql_surface.h) against the SQLite
// the enclave runs on: every function and module this build registers is
// decided (allowed or refused on purpose), every allowed function runs in a
// sealed enclave, and every other one is refused at prepare time with a
// message naming it — through the enclave runtime and its control channel.
//
// The registered functions are listed on a separate connection of the same
// library (the enclave's query connections refuse PRAGMA). The enclave adds
// no SQL function of its own: its only extension, the batch_feed module,
// lives on the writer connections that are closed before sealing.
#include "kernel/enclave/sql_surface.h"

#include <sqlite3.h>

#include <cctype>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "kernel/enclave/sqlite_util.h"
#include "tests/kernel/enclave/enclave_test_support.h"

namespace airlock::enclave {
namespace {

using namespace test_support;  // NOLINT
using ::testing::HasSubstr;

struct RegisteredFunction {
  std::string name;
  std::string type;  // s(calar), a(ggregate), w(indow)
  int narg = 0;      // -1: variadic
};

// Rows of `sql` (one text column) on a fresh in-memory connection of the
// library the enclave links.
std::vector<std::vector<std::string>> ListOnFreshConnection(const std::string& sql,
                                                            bool internal_functions = false) {
  std::vector<std::vector<std::string>> rows;
  auto db = OpenDatabase("file:sql-surface-list?mode=memory",
                         SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, "a listing connection");
  EXPECT_TRUE(db.ok()) << db.status().ToString();
  if (!db.ok()) return rows;
  // SQLite's internal functions are listed (and callable) only when this
  // test control is on; an enclave query still reaches the authorizer with
  // them, so they are decided too.
  if (internal_functions) sqlite3_test_control(SQLITE_TESTCTRL_INTERNAL_FUNCTIONS, db->get());
  auto stmt = Prepare(db->get(), sql);
  EXPECT_TRUE(stmt.ok()) << stmt.status().ToString();
  if (!stmt.ok()) return rows;
  while (sqlite3_step(stmt->get()) == SQLITE_ROW) {
    std::vector<std::string> row;
    for (int c = 0; c < sqlite3_column_count(stmt->get()); ++c) {
      const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt->get(), c));
      row.emplace_back(text != nullptr ? text : "");
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

std::vector<RegisteredFunction> RegisteredFunctions() {
  std::vector<RegisteredFunction> out;
  for (const auto& row : ListOnFreshConnection(
           "SELECT DISTINCT name, type, narg FROM pragma_function_list ORDER BY name, narg",
           /*internal_functions=*/true)) {
    out.push_back({row[0], row[1], std::stoi(row[2])});
  }
  return out;
}

std::set<std::string> RegisteredModules() {
  std::set<std::string> out;
  for (const auto& row : ListOnFreshConnection("SELECT name FROM pragma_module_list")) {
    out.insert(row[0]);
  }
  return out;
}

bool ListsName(std::span<const std::string_view> list, const std::string& name) {
  for (std::string_view entry : list) {
    if (entry == name) return true;
  }
  return false;
}

bool ListsName(std::span<const RefusedSqlName> list, const std::string& name) {
  for (const RefusedSqlName& entry : list) {
    if (entry.name == name) return true;
    if (entry.name == "pragma_*" && name.rfind("pragma_", 0) == 0) return true;
  }
  return false;
}

// A call of `f` that resolves (right arity) and, for an allowed function,
// runs without error. Most functions take 1 for every argument; these need
// particular arguments or syntax.
std::string CallOf(const RegisteredFunction& f) {
  static const std::map<std::string, std::string> kCalls = {
      {"->/2", R"('{"a":1}' -> '$.a')"},
      {"->>/2", R"('{"a":1}' ->> '$.a')"},
      {"current_date/0", "current_date"},
      {"current_time/0", "current_time"},
      {"current_timestamp/0", "current_timestamp"},
      {"likelihood/2", "likelihood(1, 0.5)"},
      {"json_array_length/2", "json_array_length('[1]', '$')"},
      {"json_extract/-1", R"(json_extract('{"a":1}', '$.a'))"},
      {"json_insert/-1", "json_insert('{}', '$.a', 1)"},
      {"json_object/-1", "json_object('a', 1)"},
      {"json_remove/-1", R"(json_remove('{"a":1}', '$.a'))"},
      {"json_replace/-1", R"(json_replace('{"a":1}', '$.a', 2))"},
      {"json_set/-1", "json_set('{}', '$.a', 1)"},
      {"json_type/2", R"(json_type('{"a":1}', '$.a'))"},
  };
  std::string call;
  if (auto it = kCalls.find(f.name + "/" + std::to_string(f.narg)); it != kCalls.end()) {
    call = it->second;
  } else {
    call = QuoteIdentifier(f.name) + "(";
    const int args = f.narg < 0 ? 2 : f.narg;
    for (int i = 0; i < args; ++i) call += i == 0 ? "1" : ", 1";
    call += ")";
  }
  if (f.type == "w") call += " OVER ()";
  return "SELECT " + call;
}

// A sealed in-process enclave holding table t (id, value, name; 10 rows).
class SqlSurfaceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    enclave_ = std::make_unique<InProcessEnclave>();
    enclave_->StartClient(log_.Events());
    ASSERT_TRUE(
        enclave_->client->SendSpec(MakeSpec({GenDataset("t", {{"rows", 10}, {"shape", "narrow"}})}))
            .ok());
    const Json outcome = log_.WaitForOutcome();
    ASSERT_EQ(outcome.value("state", ""), "sealed") << outcome.dump();
  }

  Status Run(const std::string& sql) {
    CollectingConsumer out;
    return enclave_->client->Query(sql, out, 20s);
  }

  EventLog log_;
  std::unique_ptr<InProcessEnclave> enclave_;
};

TEST(SqlSurfaceLists, EveryRegisteredFunctionIsDecided) {
  const auto registered = RegisteredFunctions();
  std::set<std::string> names;
  for (const auto& f : registered) names.insert(f.name);
  // The build this runs on registers the functions the surface exists for.
  ASSERT_GT(names.size(), 100u);
  EXPECT_TRUE(names.count("load_extension"));
  EXPECT_TRUE(names.count("sqlite_rename_table")) << "internal functions are listed too";

  std::vector<std::string> undecided, both;
  for (const std::string& name : names) {
    const bool allowed = ListsName(AllowedSqlFunctions(), name);
    const bool refused = ListsName(RefusedSqlFunctions(), name);
    if (!allowed && !refused) undecided.push_back(name);
    if (allowed && refused) both.push_back(name);
    EXPECT_EQ(IsAllowedSqlFunction(name), allowed) << name;
  }
  EXPECT_TRUE(undecided.empty())
      << "SQLite registers functions nobody decided on; add each to the allowed or the refused "
         "list in kernel/enclave/sql_surface.cc (and docs/enclaves.md): "
      << ::testing::PrintToString(undecided);
  EXPECT_TRUE(both.empty()) << ::testing::PrintToString(both);
}

TEST(SqlSurfaceLists, ListsAreWellFormed) {
  std::set<std::string_view> seen;
  for (std::string_view name : AllowedSqlFunctions()) {
    EXPECT_TRUE(seen.insert(name).second) << "listed twice: " << name;
    for (char c : name) EXPECT_FALSE(c >= 'A' && c <= 'Z') << name;
  }
  for (const RefusedSqlName& r : RefusedSqlFunctions()) {
    EXPECT_TRUE(seen.insert(r.name).second) << "listed twice: " << r.name;
    EXPECT_FALSE(r.reason.empty()) << r.name;
  }
  for (const RefusedSqlName& r : RefusedTableFunctions()) EXPECT_FALSE(r.reason.empty()) << r.name;
  EXPECT_TRUE(IsAllowedSqlFunction("JSON_EXTRACT")) << "SQL names are case-insensitive";
  EXPECT_FALSE(IsAllowedSqlFunction("fts3_tokenizer"));
  EXPECT_FALSE(IsAllowedSqlFunction("load_extension"));
  EXPECT_FALSE(IsAllowedSqlFunction(""));
  EXPECT_EQ(FunctionRefusal("fts3_tokenizer"),
            "function fts3_tokenizer is not allowed in an enclave query");
}

TEST(SqlSurfaceLists, EveryRegisteredModuleIsDecided) {
  std::vector<std::string> undecided;
  for (const std::string& name : RegisteredModules()) {
    if (!ListsName(AllowedTableFunctions(), name) && !ListsName(RefusedTableFunctions(), name)) {
      undecided.push_back(name);
    }
  }
  EXPECT_TRUE(undecided.empty())
      << "SQLite registers virtual table modules nobody decided on; add each to the allowed or "
         "the refused table list in kernel/enclave/sql_surface.cc: "
      << ::testing::PrintToString(undecided);
}

// Each registered function, called in a sealed enclave: allowed ones run,
// the others are refused by name before anything executes.
TEST_F(SqlSurfaceTest, AllowedFunctionsRunAndEveryOtherIsRefusedByName) {
  const auto registered = RegisteredFunctions();
  ASSERT_FALSE(registered.empty());
  int allowed = 0, refused = 0;
  for (const auto& f : registered) {
    const std::string sql = CallOf(f);
    const Status status = Run(sql);
    if (IsAllowedSqlFunction(f.name)) {
      ++allowed;
      EXPECT_TRUE(status.ok()) << sql << " -> " << status.ToString();
    } else {
      ++refused;
      EXPECT_EQ(status.code(), StatusCode::kPermissionDenied) << sql << " -> " << status.ToString();
      EXPECT_EQ(status.message(), FunctionRefusal(f.name)) << sql;
    }
  }
  EXPECT_GT(allowed, 90);
  EXPECT_GT(refused, 20);
}

TEST_F(SqlSurfaceTest, PointerAndExtensionFunctionsAreRefusedWhereverTheyAppear) {
  const std::vector<std::pair<std::string, std::string>> refused = {
      {"SELECT fts3_tokenizer('simple')", "fts3_tokenizer"},
      {"SELECT hex(fts3_tokenizer('simple'))", "fts3_tokenizer"},
      {"SELECT FTS3_Tokenizer('simple')", "fts3_tokenizer"},
      {"SELECT fts3_tokenizer('evil', x'4141414141414141')", "fts3_tokenizer"},
      {"SELECT load_extension('/tmp/evil.so')", "load_extension"},
      {"SELECT load_extension('/tmp/evil.so', 'entry')", "load_extension"},
      {"SELECT fts5(NULL)", "fts5"},
      {"SELECT sqlite_compileoption_get(0)", "sqlite_compileoption_get"},
      {"SELECT id FROM t WHERE id IN (SELECT length(fts3_tokenizer('simple')))", "fts3_tokenizer"},
      {"WITH x AS (SELECT load_extension('a') AS v) SELECT * FROM x", "load_extension"},
      {"SELECT id FROM t ORDER BY fts3_tokenizer('simple')", "fts3_tokenizer"},
      {"SELECT CASE WHEN 0 THEN fts3_tokenizer('simple') END", "fts3_tokenizer"},
      {"SELECT value FROM json_each(json_array(fts3_tokenizer('simple')))", "fts3_tokenizer"},
      {"SELECT count(*) OVER (ORDER BY fts3_tokenizer('simple')) FROM t", "fts3_tokenizer"},
      {"EXPLAIN SELECT fts3_tokenizer('simple')", "fts3_tokenizer"},
      {"SELECT zeroblob(1000000)", "zeroblob"},
  };
  for (const auto& [sql, name] : refused) {
    const Status status = Run(sql);
    EXPECT_EQ(status.code(), StatusCode::kPermissionDenied) << sql << " -> " << status.ToString();
    EXPECT_EQ(status.message(), FunctionRefusal(name)) << sql;
  }
  // The enclave still answers.
  CollectingConsumer count;
  ASSERT_TRUE(enclave_->client->Query("SELECT count(*) FROM t", count, 20s).ok());
  EXPECT_EQ(count.ScalarInt(), 10);
}

// SQLite reads an unknown "name" as a string unless told not to: a misspelt
// quoted column would silently become a constant in every row.
TEST_F(SqlSurfaceTest, DoubleQuotedNamesAreIdentifiersOnly) {
  EXPECT_TRUE(Run("SELECT \"id\" FROM t").ok());
  const Status status = Run("SELECT \"no_such_column\" FROM t");
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("no such column"), std::string::npos) << status.ToString();
}

TEST_F(SqlSurfaceTest, OnlyTheEnclavesTablesAndAllowedTableFunctionsAreReadable) {
  for (const std::string sql : {
           "SELECT count(*) FROM t",
           "SELECT count(*) FROM main.t",
           "SELECT count(*) FROM json_each('[1, 2, 3]')",
           "SELECT count(*) FROM json_tree('{\"a\": [1, 2]}')",
           "SELECT t.id, j.value FROM t, json_each(json_array(t.id, t.name)) j",
           "SELECT name FROM sqlite_schema",
           "SELECT name FROM sqlite_master",
           "SELECT name FROM sqlite_temp_master",
           // Tables referenced without reading a column, as written.
           "SELECT count(*) FROM T",
           "SELECT count(*) FROM MAIN.t",
           "WITH c AS (SELECT 1) SELECT count(*) FROM c",
           "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 5) "
           "SELECT count(*) FROM c",
           "SELECT count(*) FROM (SELECT 1)",
           "SELECT count(*) FROM json_each('[1]')",
       }) {
    EXPECT_TRUE(Run(sql).ok()) << sql << " -> " << Run(sql).ToString();
  }
  for (const std::string name : {"dbstat", "sqlite_stmt", "DBSTAT"}) {
    for (const std::string& sql : std::vector<std::string>{
             "SELECT * FROM " + name, "SELECT count(*) FROM " + name, "SELECT 1 FROM t, " + name}) {
      const Status status = Run(sql);
      EXPECT_EQ(status.code(), StatusCode::kPermissionDenied) << sql << " -> " << status.ToString();
      // Named as defined or as written.
      std::string message = status.message();
      for (char& c : message) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      EXPECT_EQ(message, TableFunctionRefusal(name == "DBSTAT" ? "dbstat" : name)) << sql;
    }
  }
  // PRAGMA functions are refused like PRAGMA statements.
  for (const std::string name :
       {"pragma_function_list", "pragma_table_info('t')", "pragma_compile_options"}) {
    const Status status = Run("SELECT * FROM " + name);
    EXPECT_EQ(status.code(), StatusCode::kPermissionDenied) << name << " -> " << status.ToString();
  }
  // Every module is either allowed and readable, or yields nothing.
  for (const std::string& name : RegisteredModules()) {
    const Status status = Run("SELECT * FROM " + QuoteIdentifier(name));
    EXPECT_EQ(status.ok(), IsAllowedTableFunction(name)) << name << " -> " << status.ToString();
  }
}

}  // namespace
}  // namespace airlock::enclave
