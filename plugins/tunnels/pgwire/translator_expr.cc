// Expressions: columns, constants, parameters, operators, subqueries.
#include <strings.h>

#include <cctype>
#include <charconv>

#include "errors.h"
#include "sql_text.h"
#include "translator_internal.h"

namespace airlock::tunnels::pgwire::translate {
namespace {

bool SameName(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

const ColumnSchema* FindColumn(const Relation& relation, std::string_view name) {
  for (const ColumnSchema& c : relation.columns) {
    if (SameName(c.name, name)) return &c;
  }
  return nullptr;
}

// The result type of arithmetic on `a` and `b`, as PostgreSQL promotes.
uint32_t ArithmeticType(uint32_t a, uint32_t b) {
  if (a == oid::kUnknown) return b;
  if (b == oid::kUnknown) return a;
  if (a == oid::kFloat8 || b == oid::kFloat8 || a == oid::kFloat4 || b == oid::kFloat4) {
    return oid::kFloat8;
  }
  if (a == oid::kNumeric || b == oid::kNumeric) return oid::kNumeric;
  if (a == oid::kInt8 || b == oid::kInt8) return oid::kInt8;
  if (IsInteger(a) && IsInteger(b)) return oid::kInt4;
  return oid::kUnknown;
}

}  // namespace

bool IsDateTime(uint32_t type) {
  return type == oid::kDate || type == oid::kTimestamp || type == oid::kTimestamptz;
}

bool IsInteger(uint32_t type) {
  return type == oid::kInt2 || type == oid::kInt4 || type == oid::kInt8 || type == oid::kOid;
}

bool IsNumber(uint32_t type) {
  return IsInteger(type) || type == oid::kFloat4 || type == oid::kFloat8 || type == oid::kNumeric;
}

bool IsText(uint32_t type) {
  return type == oid::kText || type == oid::kVarchar || type == oid::kBpchar || type == oid::kName;
}

uint32_t Translator::ParameterType(int n) const {
  return static_cast<size_t>(n) <= types_.size() ? types_[static_cast<size_t>(n) - 1] : 0;
}

void Translator::Infer(Expr& maybe_param, const Expr& other) {
  if (maybe_param.param <= 0) return;
  uint32_t& type = types_[static_cast<size_t>(maybe_param.param) - 1];
  if (type != oid::kUnspecified && type != oid::kUnknown) return;
  if (other.type == oid::kUnknown || other.type == oid::kUnspecified ||
      other.type == kIntervalOid) {
    return;
  }
  type = other.type;
  maybe_param.type = other.type;
}

std::vector<Expr> Translator::List(const Json& items, const Scope& scope) {
  std::vector<Expr> out;
  if (!items.is_array()) return out;
  for (const Json& item : items) out.push_back(Expression(item, scope));
  return out;
}

Expr Translator::Expression(const Json& node, const Scope& scope) {
  if (++depth_ > 256) Fail(sqlstate::kProgramLimitExceeded, "expression nested too deeply");
  struct Leave {
    int& depth;
    ~Leave() { --depth; }
  } leave{depth_};

  const std::string_view kind = NodeKind(node);
  const Json& body = NodeBody(node);
  if (kind == "ColumnRef") return Column(body, scope);
  if (kind == "A_Const") return Constant(body);
  if (kind == "ParamRef") return Parameter(body);
  if (kind == "A_Expr") return Operator(body, scope);
  if (kind == "TypeCast") return Cast(body, scope);
  if (kind == "FuncCall") return Function(body, scope);
  if (kind == "SQLValueFunction") return ValueFunction(body);
  if (kind == "SubLink") return SubLink(body, scope);
  if (kind == "BoolExpr") {
    const std::string op = StringField(body, "boolop");
    std::vector<Expr> args = List(Field(body, "args"), scope);
    Expr e;
    e.type = oid::kBool;
    e.name = "?column?";
    if (op == "NOT_EXPR") {
      if (args.size() != 1) Fail(sqlstate::kSyntaxError, "NOT takes one argument");
      e.sql = "(NOT " + args[0].sql + ")";
      return e;
    }
    const char* word = op == "AND_EXPR" ? " AND " : " OR ";
    e.sql = "(";
    for (size_t i = 0; i < args.size(); ++i) e.sql += (i > 0 ? word : "") + args[i].sql;
    e.sql += ")";
    return e;
  }
  if (kind == "NullTest") {
    Expr arg = Expression(Field(body, "arg"), scope);
    Expr e;
    e.type = oid::kBool;
    e.name = "?column?";
    const bool is_null = StringField(body, "nulltesttype") != "IS_NOT_NULL";
    e.sql = "(" + arg.sql + (is_null ? " IS NULL)" : " IS NOT NULL)");
    return e;
  }
  if (kind == "BooleanTest") {
    Expr arg = Expression(Field(body, "arg"), scope);
    Expr as_bool;
    as_bool.type = oid::kBool;
    Infer(arg, as_bool);
    const std::string test = StringField(body, "booltesttype");
    const char* suffix = test == "IS_TRUE"        ? " IS TRUE"
                         : test == "IS_NOT_TRUE"  ? " IS NOT TRUE"
                         : test == "IS_FALSE"     ? " IS FALSE"
                         : test == "IS_NOT_FALSE" ? " IS NOT FALSE"
                         : test == "IS_UNKNOWN"   ? " IS NULL"
                                                  : " IS NOT NULL";
    Expr e;
    e.type = oid::kBool;
    e.name = "?column?";
    e.sql = "(" + arg.sql + suffix + ")";
    return e;
  }
  if (kind == "CaseExpr") {
    std::optional<Expr> arg;
    if (const Json& a = Field(body, "arg"); !a.is_null()) arg = Expression(a, scope);
    Expr e;
    e.name = "case";
    e.sql = "CASE";
    if (arg) e.sql += " " + arg->sql;
    std::vector<Expr> results;
    for (const Json& when_node : Field(body, "args")) {
      const Json& when = NodeBody(when_node);
      Expr condition = Expression(Field(when, "expr"), scope);
      if (arg) {
        Infer(condition, *arg);
        Infer(*arg, condition);
      }
      results.push_back(Expression(Field(when, "result"), scope));
      e.sql += " WHEN " + condition.sql + " THEN " + results.back().sql;
    }
    if (const Json& d = Field(body, "defresult"); !d.is_null()) {
      results.push_back(Expression(d, scope));
      e.sql += " ELSE " + results.back().sql;
    }
    e.sql += " END";
    for (const Expr& r : results) {
      if (r.type != oid::kUnknown) {
        e.type = r.type;
        break;
      }
    }
    for (Expr& r : results) Infer(r, e);
    return e;
  }
  if (kind == "CoalesceExpr" || kind == "MinMaxExpr") {
    std::vector<Expr> args = List(Field(body, "args"), scope);
    Expr e;
    for (const Expr& a : args) {
      if (a.type != oid::kUnknown) {
        e.type = a.type;
        break;
      }
    }
    for (Expr& a : args) Infer(a, e);
    if (kind == "CoalesceExpr") {
      e.name = "coalesce";
      e.sql = "coalesce(";
      for (size_t i = 0; i < args.size(); ++i) e.sql += (i > 0 ? ", " : "") + args[i].sql;
      e.sql += args.size() == 1 ? ", NULL)" : ")";
      return e;
    }
    // greatest/least ignore NULLs (the engine's max/min do not): compare the
    // first non-NULL value from each position on.
    const bool greatest = StringField(body, "op") == "IS_GREATEST";
    e.name = greatest ? "greatest" : "least";
    if (args.size() == 1) {
      e.sql = "coalesce(" + args[0].sql + ", NULL)";
      return e;
    }
    e.sql = greatest ? "max(" : "min(";
    for (size_t i = 0; i < args.size(); ++i) {
      e.sql += i > 0 ? ", coalesce(" : "coalesce(";
      for (size_t j = 0; j < args.size(); ++j) {
        e.sql += (j > 0 ? ", " : "") + args[(i + j) % args.size()].sql;
      }
      e.sql += ")";
    }
    e.sql += ")";
    return e;
  }
  if (kind == "RowExpr") {
    std::vector<Expr> args = List(Field(body, "args"), scope);
    Expr e;
    e.name = "row";
    e.sql = "(";
    for (size_t i = 0; i < args.size(); ++i) e.sql += (i > 0 ? ", " : "") + args[i].sql;
    e.sql += ")";
    return e;
  }
  if (kind == "CollateClause") {
    Expr arg = Expression(Field(body, "arg"), scope);
    const std::vector<std::string> names = Names(Field(body, "collname"));
    const std::string collation = names.empty() ? "" : names.back();
    if (collation != "C" && collation != "POSIX" && collation != "default" &&
        collation != "ucs_basic") {
      Unsupported("the collation \"" + collation + "\" (only \"C\" ordering is available)");
    }
    arg.sql = "(" + arg.sql + " COLLATE BINARY)";
    return arg;
  }
  if (kind == "A_ArrayExpr") Unsupported("ARRAY[...]");
  if (kind == "A_Indirection") {
    const Json& indirection = Field(body, "indirection");
    if (!catalog_ || !indirection.is_array() || indirection.size() != 1 ||
        NodeKind(indirection[0]) != "A_Indices" ||
        BoolField(NodeBody(indirection[0]), "is_slice")) {
      Unsupported("subscripts and field selection");
    }
    const Expr array = Expression(Field(body, "arg"), scope);
    const Expr index = Expression(Field(NodeBody(indirection[0]), "uidx"), scope);
    Expr e;
    e.type = oid::kText;
    e.name = array.name;
    e.sql = "pg_array_element(" + array.sql + ", " + index.sql + ")";
    return e;
  }
  if (kind == "GroupingFunc") Unsupported("GROUPING()");
  if (kind == "SetToDefault") Unsupported("DEFAULT");
  if (kind == "XmlExpr" || kind == "XmlSerialize") Unsupported("XML functions");
  if (kind.empty()) Fail(sqlstate::kSyntaxError, "empty expression");
  Unsupported("the expression " + std::string(kind));
}

Expr Translator::Column(const Json& body, const Scope& scope) {
  const Json& fields = Field(body, "fields");
  if (!fields.is_array() || fields.empty()) Fail(sqlstate::kSyntaxError, "empty column name");
  if (NodeKind(fields.back()) == "A_Star") {
    Expr e;
    const std::vector<std::string> names = Names(fields);
    e.sql = names.empty() ? "*" : QuoteIdentifier(names.back()) + ".*";
    return e;
  }
  std::vector<std::string> names = Names(fields);
  if (names.size() != fields.size()) Unsupported("this column reference");
  if (names.size() == 4 || (names.size() == 3 && names[0] != "public")) {
    Unsupported("a column reference with a schema or database other than public");
  }
  if (names.size() == 3) names.erase(names.begin());
  Expr e;
  e.name = names.back();
  if (names.size() == 1) {
    e.sql = QuoteIdentifier(names[0]);
    for (const Scope* s = &scope; s != nullptr; s = s->outer) {
      const ColumnSchema* found = nullptr;
      int matches = 0;
      for (const Relation& r : s->relations) {
        if (const ColumnSchema* c = FindColumn(r, names[0])) {
          found = c;
          ++matches;
        }
      }
      if (matches == 1) e.type = found->type;
      if (matches > 0) break;
    }
    return e;
  }
  e.sql = QuoteIdentifier(names[0]) + "." + QuoteIdentifier(names[1]);
  for (const Scope* s = &scope; s != nullptr; s = s->outer) {
    for (const Relation& r : s->relations) {
      if (!SameName(r.alias, names[0])) continue;
      if (const ColumnSchema* c = FindColumn(r, names[1])) e.type = c->type;
      return e;
    }
  }
  return e;
}

Expr Translator::Constant(const Json& body) {
  Expr e;
  e.name = "?column?";
  if (BoolField(body, "isnull")) {
    e.sql = "NULL";
    return e;
  }
  if (const Json& ival = Field(body, "ival"); !ival.is_null()) {
    int64_t v = IntField(ival, "ival");
    // The parser's JSON leaves out a negative integer constant (and zero):
    // its value is read back from the text at the constant's location.
    if (!Field(ival, "ival").is_number_integer()) v = IntegerAt(IntField(body, "location"));
    e.sql = std::to_string(v);
    e.type = oid::kInt4;
    return e;
  }
  if (const Json& fval = Field(body, "fval"); !fval.is_null()) {
    e.sql = StringField(fval, "fval");
    if (e.sql.find_first_not_of("0123456789.eE+-") != std::string::npos) {
      Fail(sqlstate::kSyntaxError, "unreadable numeric constant");
    }
    const bool integral = e.sql.find_first_of(".eE") == std::string::npos;
    e.type = integral ? oid::kInt8 : oid::kNumeric;
    if (e.sql.empty()) Fail(sqlstate::kSyntaxError, "empty numeric constant");
    return e;
  }
  if (const Json& sval = Field(body, "sval"); !sval.is_null()) {
    e.text_value = StringField(sval, "sval");
    e.sql = QuoteLiteral(*e.text_value);
    return e;
  }
  if (const Json& boolval = Field(body, "boolval"); !boolval.is_null()) {
    e.sql = BoolField(boolval, "boolval") ? "TRUE" : "FALSE";
    e.type = oid::kBool;
    e.name = "bool";
    return e;
  }
  if (const Json& bsval = Field(body, "bsval"); !bsval.is_null()) {
    // X'...' is a bit string in PostgreSQL; whole bytes of it are the
    // engine's blob literal, which is what a client writing it means here.
    const std::string bits = StringField(bsval, "bsval");
    if (bits.size() < 1 || (bits[0] != 'x' && bits[0] != 'X') || bits.size() % 2 != 1 ||
        bits.find_first_not_of("0123456789abcdefABCDEF", 1) != std::string::npos) {
      Unsupported("bit-string constants other than whole bytes in hex (X'...')");
    }
    e.sql = "X'" + bits.substr(1) + "'";
    e.type = oid::kBytea;
    return e;
  }
  Fail(sqlstate::kSyntaxError, "unreadable constant");
}

int64_t Translator::IntegerAt(int64_t location) const {
  if (location < 0 || static_cast<size_t>(location) >= source_.size()) {
    Fail(sqlstate::kInternalError, "an integer constant without a location");
  }
  std::string_view rest = source_.substr(static_cast<size_t>(location));
  bool negative = false;
  if (!rest.empty() && rest.front() == '-') {
    negative = true;
    rest.remove_prefix(1);
    // "- 3" is folded into one constant too; comments cannot come between.
    while (!rest.empty() && std::isspace(static_cast<unsigned char>(rest.front()))) {
      rest.remove_prefix(1);
    }
  }
  int64_t magnitude = 0;
  const auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), magnitude);
  if (ec != std::errc() || end == rest.data()) {
    Fail(sqlstate::kInternalError, "an integer constant the tunnel cannot read back");
  }
  return negative ? -magnitude : magnitude;
}

Expr Translator::Parameter(const Json& body) {
  const int64_t n = IntField(body, "number");
  if (n < 1 || n > 65535) {
    Fail(sqlstate::kUndefinedParameter, "there is no parameter $" + std::to_string(n));
  }
  if (static_cast<size_t>(n) > types_.size()) types_.resize(static_cast<size_t>(n), 0);
  Expr e;
  e.param = static_cast<int>(n);
  e.sql = "$" + std::to_string(n);
  e.name = "?column?";
  const uint32_t t = ParameterType(e.param);
  e.type = t == oid::kUnspecified ? oid::kUnknown : t;
  return e;
}

Expr Translator::Operator(const Json& body, const Scope& scope) {
  const std::string kind = StringField(body, "kind");
  const std::vector<std::string> names = Names(Field(body, "name"));
  const std::string op = names.empty() ? "" : names.back();
  if (names.size() == 2 && names[0] != "pg_catalog") Unsupported("OPERATOR(" + names[0] + ".)");

  if (kind == "AEXPR_LIKE" || kind == "AEXPR_ILIKE") {
    return Like(body, scope, kind == "AEXPR_ILIKE", op.starts_with("!"));
  }
  if (kind == "AEXPR_SIMILAR") Unsupported("SIMILAR TO");
  if (kind == "AEXPR_OP_ANY" || kind == "AEXPR_OP_ALL") {
    // The catalog's arrays are text ({a,b}); the catalog database tests them.
    if (catalog_ && ((kind == "AEXPR_OP_ANY" && op == "=") ||
                     (kind == "AEXPR_OP_ALL" && (op == "<>" || op == "!=")))) {
      const Expr value = Expression(Field(body, "lexpr"), scope);
      const Expr array = Expression(Field(body, "rexpr"), scope);
      Expr e;
      e.type = oid::kBool;
      e.name = "?column?";
      e.sql = std::string(kind == "AEXPR_OP_ALL" ? "(NOT " : "(") + "pg_array_contains(" +
              array.sql + ", " + value.sql + "))";
      return e;
    }
    Unsupported(std::string(kind == "AEXPR_OP_ANY" ? "ANY" : "ALL") + " over an array");
  }
  if (kind == "AEXPR_BETWEEN_SYM" || kind == "AEXPR_NOT_BETWEEN_SYM") {
    Unsupported("BETWEEN SYMMETRIC");
  }

  Expr left;
  const Json& lexpr = Field(body, "lexpr");
  if (!lexpr.is_null()) left = Expression(lexpr, scope);
  Expr e;
  e.name = "?column?";

  if (kind == "AEXPR_IN") {
    std::vector<Expr> items = List(Field(NodeBody(Field(body, "rexpr")), "items"), scope);
    for (Expr& item : items) {
      Infer(item, left);
      Infer(left, item);
    }
    e.type = oid::kBool;
    e.sql = "(" + left.sql + (op == "<>" ? " NOT IN (" : " IN (");
    for (size_t i = 0; i < items.size(); ++i) e.sql += (i > 0 ? ", " : "") + items[i].sql;
    e.sql += "))";
    return e;
  }
  if (kind == "AEXPR_BETWEEN" || kind == "AEXPR_NOT_BETWEEN") {
    std::vector<Expr> bounds = List(Field(NodeBody(Field(body, "rexpr")), "items"), scope);
    if (bounds.size() != 2) Fail(sqlstate::kSyntaxError, "BETWEEN takes two bounds");
    for (Expr& b : bounds) {
      Infer(b, left);
      Infer(left, b);
    }
    e.type = oid::kBool;
    e.sql = "(" + left.sql + (kind == "AEXPR_NOT_BETWEEN" ? " NOT BETWEEN " : " BETWEEN ") +
            bounds[0].sql + " AND " + bounds[1].sql + ")";
    return e;
  }

  Expr right = Expression(Field(body, "rexpr"), scope);
  if (kind == "AEXPR_DISTINCT" || kind == "AEXPR_NOT_DISTINCT" || kind == "AEXPR_NULLIF") {
    Infer(left, right);
    Infer(right, left);
    if (kind == "AEXPR_NULLIF") {
      e.type = left.type;
      e.name = "nullif";
      e.sql = "nullif(" + left.sql + ", " + right.sql + ")";
      return e;
    }
    e.type = oid::kBool;
    e.sql = "(" + left.sql + (kind == "AEXPR_DISTINCT" ? " IS NOT " : " IS ") + right.sql + ")";
    return e;
  }
  if (kind != "AEXPR_OP") Unsupported("the operator kind " + kind);
  if (lexpr.is_null()) {  // prefix operators
    if (op == "-" || op == "+") {
      e.type = right.type;
      e.sql = "(" + op + right.sql + ")";
      return e;
    }
    if (op == "~") {
      e.type = right.type;
      e.sql = "(~" + right.sql + ")";
      return e;
    }
    if (op == "|/" || op == "@") {
      e.type = op == "@" ? right.type : oid::kFloat8;
      e.sql = (op == "@" ? "abs(" : "sqrt(") + right.sql + ")";
      return e;
    }
    Unsupported("the prefix operator " + op);
  }
  return BinaryOperator(op, std::move(left), std::move(right));
}

Expr Translator::BinaryOperator(const std::string& op, Expr left, Expr right) {
  Expr e;
  e.name = "?column?";
  static constexpr std::string_view kComparisons[] = {"=", "<>", "!=", "<", ">", "<=", ">="};
  for (std::string_view c : kComparisons) {
    if (op != c) continue;
    Infer(left, right);
    Infer(right, left);
    if (left.type == kIntervalOid || right.type == kIntervalOid) {
      Unsupported("comparing interval values");
    }
    e.type = oid::kBool;
    e.sql = "(" + left.sql + " " + (op == "!=" ? "<>" : op) + " " + right.sql + ")";
    return e;
  }
  if (op == "+" || op == "-") {
    if (left.type == kIntervalOid || right.type == kIntervalOid ||
        (IsDateTime(left.type) && (IsInteger(right.type) || IsDateTime(right.type))) ||
        (op == "+" && IsInteger(left.type) && IsDateTime(right.type))) {
      return DateArithmetic(op, left, right);
    }
  }
  if (op == "+" || op == "-" || op == "*" || op == "/" || op == "%") {
    Infer(left, right);
    Infer(right, left);
    e.type = ArithmeticType(left.type, right.type);
    e.sql = "(" + left.sql + " " + op + " " + right.sql + ")";
    return e;
  }
  if (op == "^") {
    e.type = oid::kFloat8;
    e.sql = "power(" + left.sql + ", " + right.sql + ")";
    return e;
  }
  if (op == "||") {
    Expr text;
    text.type = oid::kText;
    Infer(left, text);
    Infer(right, text);
    e.type = oid::kText;
    e.sql = "(" + left.sql + " || " + right.sql + ")";
    return e;
  }
  if (op == "&" || op == "|" || op == "<<" || op == ">>") {
    Infer(left, right);
    Infer(right, left);
    e.type = ArithmeticType(left.type, right.type);
    e.sql = "(" + left.sql + " " + op + " " + right.sql + ")";
    return e;
  }
  if (op == "->" || op == "->>") {
    e.type = oid::kText;
    e.sql = "(" + left.sql + " " + op + " " + right.sql + ")";
    return e;
  }
  if (op == "~" || op == "~*" || op == "!~" || op == "!~*") {
    if (!catalog_) Unsupported("regular-expression matching (" + op + ")");
    e.type = oid::kBool;
    e.sql = std::string(op[0] == '!' ? "(NOT " : "(") + "pg_regex_match(" + left.sql + ", " +
            right.sql + ", " + (op.back() == '*' ? "1" : "0") + "))";
    return e;
  }
  Unsupported("the operator " + op);
}

Expr Translator::Like(const Json& body, const Scope& scope, bool case_insensitive, bool negated) {
  Expr subject = Expression(Field(body, "lexpr"), scope);
  const Json& rexpr = Field(body, "rexpr");
  char escape = '\\';
  const Json* pattern_node = &rexpr;
  // x LIKE p ESCAPE e arrives as like_escape(p, e).
  if (NodeKind(rexpr) == "FuncCall") {
    const std::vector<std::string> f = Names(Field(NodeBody(rexpr), "funcname"));
    if (!f.empty() && f.back() == "like_escape") {
      const Json& args = Field(NodeBody(rexpr), "args");
      if (!args.is_array() || args.size() != 2) Fail(sqlstate::kSyntaxError, "bad ESCAPE");
      Expr esc = Expression(args[1], scope);
      if (!esc.text_value.has_value()) Unsupported("an ESCAPE that is not a constant");
      if (esc.text_value->size() > 1) {
        Fail("22019", "invalid escape string");
      }
      escape = esc.text_value->empty() ? 0 : (*esc.text_value)[0];
      pattern_node = &args[0];
    }
  }
  Expr pattern = Expression(*pattern_node, scope);
  Expr text;
  text.type = oid::kText;
  Infer(subject, text);
  Infer(pattern, text);
  Expr e;
  e.type = oid::kBool;
  e.name = "?column?";
  const char* not_word = negated ? "NOT " : "";
  if (case_insensitive) {
    // The engine's LIKE folds ASCII letters; PostgreSQL's ILIKE folds all.
    std::string esc = escape == 0 ? "" : " ESCAPE " + QuoteLiteral(std::string(1, escape));
    e.sql = "(" + subject.sql + " " + not_word + "LIKE " + pattern.sql + esc + ")";
    return e;
  }
  // LIKE is case-sensitive in PostgreSQL and not in the engine: the
  // pattern becomes a GLOB pattern, now for a constant, at Bind for $n.
  std::string glob;
  if (pattern.text_value.has_value()) {
    auto converted = LikeToGlob(*pattern.text_value, escape);
    if (auto* error = std::get_if<PgError>(&converted)) throw Refusal{*error};
    glob = QuoteLiteral(std::get<std::string>(converted));
  } else if (pattern.param > 0 && escape == '\\') {
    glob = "$" + std::to_string(Derive(pattern.param));
  } else {
    Unsupported(
        "LIKE with a pattern that is neither a constant nor a parameter (use ILIKE, "
        "which ignores ASCII case)");
  }
  e.sql = "(" + std::string(negated ? "NOT " : "") + "(" + subject.sql + " GLOB " + glob + "))";
  return e;
}

Expr Translator::SubLink(const Json& body, const Scope& scope) {
  const std::string type = StringField(body, "subLinkType");
  SelectResult sub = Select(NodeBody(Field(body, "subselect")), &scope);
  Expr e;
  e.name = "?column?";
  if (type == "EXISTS_SUBLINK") {
    e.type = oid::kBool;
    e.name = "exists";
    e.sql = "EXISTS (" + sub.sql + ")";
    return e;
  }
  if (type == "EXPR_SUBLINK") {
    if (!sub.columns.empty()) {
      e.type = sub.columns[0].type;
      e.name = sub.columns[0].name;
    }
    e.sql = "(" + sub.sql + ")";
    return e;
  }
  if (type == "ANY_SUBLINK" || type == "ALL_SUBLINK") {
    const std::vector<std::string> names = Names(Field(body, "operName"));
    const std::string op = names.empty() ? "=" : names.back();
    Expr test = Expression(Field(body, "testexpr"), scope);
    if (!sub.columns.empty()) {
      Expr column;
      column.type = sub.columns[0].type;
      Infer(test, column);
    }
    e.type = oid::kBool;
    if (type == "ANY_SUBLINK" && op == "=") {
      e.sql = "(" + test.sql + " IN (" + sub.sql + "))";
      return e;
    }
    if (type == "ALL_SUBLINK" && op == "<>") {
      e.sql = "(" + test.sql + " NOT IN (" + sub.sql + "))";
      return e;
    }
    Unsupported(std::string(type == "ANY_SUBLINK" ? "ANY" : "ALL") + " with " + op);
  }
  if (type == "ARRAY_SUBLINK") {
    if (!catalog_ || sub.columns.size() != 1) Unsupported("ARRAY(subquery)");
    e.type = oid::kText;
    e.name = "array";
    e.sql = "(SELECT '{' || coalesce(group_concat(" + QuoteIdentifier(sub.columns[0].name) +
            ", ','), '') || '}' FROM (" + sub.sql + "))";
    return e;
  }
  Unsupported("this kind of subquery");
}

}  // namespace airlock::tunnels::pgwire::translate
