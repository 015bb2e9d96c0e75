// The translator's state while it walks one parse tree; shared by
// translator.cc (statements, FROM, WITH), translator_expr.cc (expressions)
// and translator_functions.cc (functions, casts, types).
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "translator.h"
#include "types.h"

namespace airlock::tunnels::pgwire::translate {

// Not a real type: a constant interval, usable only in date arithmetic.
inline constexpr uint32_t kIntervalOid = 1186;
inline constexpr int kDerivedBase = kFirstDerivedParameter;

// Ends a translation with the error the client gets.
struct Refusal {
  PgError error;
};

// One translated expression.
struct Expr {
  std::string sql;
  uint32_t type = oid::kUnknown;          // kUnknown: an untyped literal or unresolved
  int param = 0;                          // > 0: the expression is the bare parameter $param
  std::optional<std::string> text_value;  // a string constant's value
  std::vector<std::string> interval;      // kIntervalOid: SQLite date modifiers
  std::string name;                       // the column name PostgreSQL gives it
};

// The relations a FROM clause brings into scope, and the CTEs a WITH does.
struct Relation {
  std::string alias;
  std::vector<ColumnSchema> columns;
  bool columns_known = true;
};

struct Scope {
  const Scope* outer = nullptr;
  std::vector<Relation> relations;
  std::vector<Relation> ctes;

  const Relation* FindCte(std::string_view name) const;
};

struct SelectResult {
  std::string sql;
  std::vector<ColumnSchema> columns;
  bool columns_known = true;
};

class Translator {
 public:
  // `source`: the text the tree was parsed from (constants are re-read
  // from it, see Constant()).
  Translator(std::string_view source, const GrantSchema& schema,
             const std::vector<uint32_t>& declared, const SessionFacts& facts)
      : source_(source), schema_(schema), facts_(facts), types_(declared) {}

  Translation Run(const Json& raw_stmt);

  // --- statements (translator.cc) -------------------------------------------
  SelectResult Select(const Json& body, const Scope* outer);
  SelectResult SimpleSelect(const Json& body, const Scope* outer);
  SelectResult Values(const Json& body, const Scope* outer);
  std::string With(const Json& with, Scope& scope);
  std::string FromItem(const Json& node, Scope& scope);
  std::string OrderBy(const Json& sort_list, const Scope& scope);
  std::string WindowSpec(const Json& window_def, const Scope& scope);
  std::string LimitClause(const Json& body, const Scope& scope);
  Translation Copy(const Json& copy);
  Translation Cursor(std::string_view kind, const Json& body);

  // --- expressions (translator_expr.cc) -------------------------------------
  Expr Expression(const Json& node, const Scope& scope);
  Expr Column(const Json& body, const Scope& scope);
  Expr Constant(const Json& body);
  Expr Parameter(const Json& body);
  // The integer constant written at byte `location` of the source.
  int64_t IntegerAt(int64_t location) const;
  Expr Operator(const Json& body, const Scope& scope);
  Expr BinaryOperator(const std::string& op, Expr left, Expr right);
  Expr Like(const Json& body, const Scope& scope, bool case_insensitive, bool negated);
  Expr SubLink(const Json& body, const Scope& scope);
  std::vector<Expr> List(const Json& items, const Scope& scope);
  // A bare parameter without a type takes `other`'s type, as PostgreSQL
  // resolves an unknown operand against the other one.
  void Infer(Expr& maybe_param, const Expr& other);
  uint32_t ParameterType(int n) const;

  // --- functions, casts and types (translator_functions.cc) ------------------
  Expr Function(const Json& body, const Scope& scope);
  Expr ValueFunction(const Json& body);
  Expr Cast(const Json& body, const Scope& scope);
  Expr CastTo(Expr value, uint32_t type, const Json& type_mods);
  Expr DateArithmetic(const std::string& op, const Expr& left, const Expr& right);
  // Catalog statements only (catalog.h registers what these call).
  Expr CatalogCast(Expr value, const std::string& type_name);
  std::string CatalogFunctionInFrom(const Json& body, Scope& scope);

  [[noreturn]] static void Unsupported(const std::string& what);
  [[noreturn]] static void Fail(std::string_view sqlstate, std::string message);
  int Derive(int source);

  // Whether the statement reads the catalog (decided before translating:
  // catalog statements get the catalog database's functions).
  void ScanForCatalog(const Json& node);
  bool catalog_ = false;
  bool reads_grant_ = false;

  const std::string_view source_;
  const GrantSchema& schema_;
  const SessionFacts& facts_;
  std::vector<uint32_t> types_;  // per client parameter; 0 until resolved
  std::vector<DerivedParameter> derived_;
  int depth_ = 0;
};

// --- helpers over the parse tree's JSON --------------------------------------

// The one key of a node ({"SelectStmt": {...}}) and its body.
std::string_view NodeKind(const Json& node);
const Json& NodeBody(const Json& node);
// A field, or an empty JSON value when absent (absent means the default).
const Json& Field(const Json& body, std::string_view key);
std::string StringField(const Json& body, std::string_view key);
int64_t IntField(const Json& body, std::string_view key);
bool BoolField(const Json& body, std::string_view key);
// The strings of a list of {"String": {"sval": ...}} nodes.
std::vector<std::string> Names(const Json& list);

std::string QuoteIdentifier(std::string_view name);
bool IsInteger(uint32_t type);
bool IsNumber(uint32_t type);
bool IsText(uint32_t type);
bool IsDateTime(uint32_t type);  // date, timestamp, timestamptz
// PostgreSQL's name of a type OID ("int4", "timestamptz" ...).
std::string TypeNameOf(uint32_t type);

}  // namespace airlock::tunnels::pgwire::translate
