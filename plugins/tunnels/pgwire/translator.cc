#include "translator.h"

#include <strings.h>

#include "catalog.h"
#include "errors.h"
#include "pg_parser.h"
#include "sql_text.h"
#include "translator_internal.h"

namespace airlock::tunnels::pgwire {
namespace translate {
namespace {

const Json& EmptyJson() {
  static const Json empty;
  return empty;
}

bool SameName(std::string_view a, std::string_view b) {
  return a.size() == b.size() && ::strncasecmp(a.data(), b.data(), a.size()) == 0;
}

// What a statement node is called in a refusal: "CREATE TABLE", "EXPLAIN" ...
std::string StatementName(std::string_view kind) {
  struct Entry {
    std::string_view kind, name;
  };
  static constexpr Entry kNames[] = {
      {"ExplainStmt", "EXPLAIN"},
      {"InsertStmt", "INSERT"},
      {"UpdateStmt", "UPDATE"},
      {"DeleteStmt", "DELETE"},
      {"CreateStmt", "CREATE TABLE"},
      {"ListenStmt", "LISTEN"},
      {"NotifyStmt", "NOTIFY"},
      {"PrepareStmt", "PREPARE"},
      {"ExecuteStmt", "EXECUTE"},
      {"DeclareCursorStmt", "DECLARE"},
      {"FetchStmt", "FETCH"},
      {"ClosePortalStmt", "CLOSE"},
      {"CreateTableAsStmt", "CREATE TABLE AS"},
      {"CopyStmt", "COPY"},
  };
  for (const Entry& e : kNames) {
    if (e.kind == kind) return std::string(e.name);
  }
  std::string name(kind);
  if (name.ends_with("Stmt")) name.resize(name.size() - 4);
  return name;
}

// Translation::column_types of a SELECT: empty when its columns are not known.
std::vector<uint32_t> ColumnTypes(const SelectResult& result) {
  std::vector<uint32_t> types;
  if (!result.columns_known) return types;
  for (const ColumnSchema& c : result.columns) {
    types.push_back(c.type == oid::kUnknown ? 0 : c.type);
  }
  return types;
}

}  // namespace

const Relation* Scope::FindCte(std::string_view name) const {
  for (const Scope* s = this; s != nullptr; s = s->outer) {
    for (auto it = s->ctes.rbegin(); it != s->ctes.rend(); ++it) {
      if (SameName(it->alias, name)) return &*it;
    }
  }
  return nullptr;
}

std::string_view NodeKind(const Json& node) {
  if (!node.is_object() || node.size() != 1) return {};
  return node.begin().key();
}

const Json& NodeBody(const Json& node) {
  if (!node.is_object() || node.size() != 1) return EmptyJson();
  return node.begin().value();
}

const Json& Field(const Json& body, std::string_view key) {
  if (!body.is_object()) return EmptyJson();
  const auto it = body.find(key);
  return it == body.end() ? EmptyJson() : *it;
}

std::string StringField(const Json& body, std::string_view key) {
  const Json& v = Field(body, key);
  return v.is_string() ? v.get<std::string>() : std::string();
}

int64_t IntField(const Json& body, std::string_view key) {
  const Json& v = Field(body, key);
  return v.is_number_integer() ? v.get<int64_t>() : 0;
}

bool BoolField(const Json& body, std::string_view key) {
  const Json& v = Field(body, key);
  return v.is_boolean() && v.get<bool>();
}

std::vector<std::string> Names(const Json& list) {
  std::vector<std::string> names;
  if (!list.is_array()) return names;
  for (const Json& item : list) {
    if (NodeKind(item) == "String") names.push_back(StringField(NodeBody(item), "sval"));
  }
  return names;
}

std::string QuoteIdentifier(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

void Translator::Unsupported(const std::string& what) {
  throw Refusal{MakeError(sqlstate::kFeatureNotSupported,
                          what + " is not supported by the Airlock PostgreSQL tunnel")};
}

void Translator::Fail(std::string_view state, std::string message) {
  throw Refusal{MakeError(state, std::move(message))};
}

int Translator::Derive(int source) {
  derived_.push_back(DerivedParameter{source, DerivedParameter::Rewrite::kLikeToGlob});
  return kDerivedBase + static_cast<int>(derived_.size()) - 1;
}

void Translator::ScanForCatalog(const Json& node) {
  if (node.is_array()) {
    for (const Json& item : node) ScanForCatalog(item);
    return;
  }
  if (!node.is_object()) return;
  for (const auto& [key, value] : node.items()) {
    if (key == "RangeVar") {
      const std::string schema = StringField(value, "schemaname");
      const std::string name = StringField(value, "relname");
      if (schema == "pg_catalog" || schema == "information_schema" ||
          (schema.empty() && schema_.Find(name) == nullptr && !CatalogTableFor("", name).empty())) {
        catalog_ = true;
      } else {
        reads_grant_ = true;
      }
    } else if (key == "FuncCall") {
      const std::vector<std::string> names = Names(Field(value, "funcname"));
      if (!names.empty() && IsCatalogFunction(names.back())) catalog_ = true;
    } else if (key == "TypeCast") {
      const std::vector<std::string> names = Names(Field(Field(value, "typeName"), "names"));
      if (!names.empty() && names.back().rfind("reg", 0) == 0) catalog_ = true;
    }
    ScanForCatalog(value);
  }
}

Translation Translator::Run(const Json& raw_stmt) {
  const Json& stmt = Field(raw_stmt, "stmt");
  const std::string_view kind = NodeKind(stmt);
  ScanForCatalog(stmt);
  if (catalog_ && reads_grant_) {
    Unsupported("a statement that reads both catalog relations and the grant's tables");
  }
  if (catalog_ && kind != "SelectStmt") Unsupported("COPY or a cursor over catalog relations");
  Translation out;
  if (kind == "SelectStmt") {
    SelectResult result = Select(NodeBody(stmt), nullptr);
    out.sql = std::move(result.sql);
    out.column_types = ColumnTypes(result);
  } else if (kind == "CopyStmt") {
    out = Copy(NodeBody(stmt));
  } else if (kind == "DeclareCursorStmt" || kind == "FetchStmt" || kind == "ClosePortalStmt") {
    out = Cursor(kind, NodeBody(stmt));
  } else if (kind.empty()) {
    Fail(sqlstate::kSyntaxError, "empty statement");
  } else {
    Unsupported("the " + StatementName(kind) + " statement");
  }
  out.parameter_types = types_;
  for (uint32_t& type : out.parameter_types) {
    if (type == oid::kUnspecified || type == oid::kUnknown) type = oid::kText;
  }
  out.derived = derived_;
  out.catalog = catalog_;
  return out;
}

// --- SELECT ------------------------------------------------------------------

SelectResult Translator::Select(const Json& body, const Scope* outer) {
  if (++depth_ > 64) Fail(sqlstate::kProgramLimitExceeded, "statement nested too deeply");
  struct Leave {
    int& depth;
    ~Leave() { --depth; }
  } leave{depth_};

  if (!Field(body, "intoClause").is_null()) Unsupported("SELECT INTO");
  if (!Field(body, "lockingClause").is_null()) Unsupported("FOR UPDATE/SHARE");
  const std::string op = StringField(body, "op");
  if (op.empty() || op == "SETOP_NONE") {
    if (!Field(body, "valuesLists").is_null()) return Values(body, outer);
    return SimpleSelect(body, outer);
  }

  // A set operation: WITH ... larg UNION [ALL] rarg ORDER BY ... LIMIT ...
  Scope scope;
  scope.outer = outer;
  std::string sql;
  if (const Json& with = Field(body, "withClause"); !with.is_null()) sql += With(with, scope);
  // The engine's compound members cannot carry ORDER BY, LIMIT or WITH, and
  // its operators have equal precedence: such members, and a right member
  // that is itself compound, are wrapped as subqueries.
  const auto member = [&](const Json& side, bool right) {
    SelectResult part = Select(side, &scope);
    const std::string side_op = StringField(side, "op");
    const bool compound = !side_op.empty() && side_op != "SETOP_NONE";
    const bool wrap = !Field(side, "sortClause").is_null() ||
                      !Field(side, "limitCount").is_null() ||
                      !Field(side, "limitOffset").is_null() ||
                      !Field(side, "withClause").is_null() || (right && compound);
    if (wrap) part.sql = "SELECT * FROM (" + part.sql + ")";
    return part;
  };
  SelectResult left = member(Field(body, "larg"), false);
  SelectResult right = member(Field(body, "rarg"), true);
  const char* word = op == "SETOP_UNION"       ? " UNION "
                     : op == "SETOP_INTERSECT" ? " INTERSECT "
                                               : " EXCEPT ";
  if (BoolField(body, "all") && op != "SETOP_UNION") Unsupported(std::string(word + 1) + "ALL");
  sql += left.sql + word + (BoolField(body, "all") ? "ALL " : "") + right.sql;
  if (const Json& sort = Field(body, "sortClause"); !sort.is_null()) {
    Scope result_scope;
    result_scope.outer = &scope;
    sql += " ORDER BY " + OrderBy(sort, result_scope);
  }
  sql += LimitClause(body, scope);
  left.sql = std::move(sql);
  return left;
}

SelectResult Translator::SimpleSelect(const Json& body, const Scope* outer) {
  Scope scope;
  scope.outer = outer;
  SelectResult result;
  std::string sql;
  if (const Json& with = Field(body, "withClause"); !with.is_null()) sql += With(with, scope);
  sql += "SELECT ";
  if (const Json& distinct = Field(body, "distinctClause"); !distinct.is_null()) {
    const bool plain = distinct.is_array() && distinct.size() == 1 && distinct[0].is_object() &&
                       distinct[0].empty();
    if (!plain) Unsupported("DISTINCT ON");
    sql += "DISTINCT ";
  }
  // FROM first: the target list and the clauses see its relations.
  std::string from;
  if (const Json& items = Field(body, "fromClause"); items.is_array()) {
    for (const Json& item : items) {
      if (!from.empty()) from += ", ";
      from += FromItem(item, scope);
    }
  }
  std::string targets;
  const Json& target_list = Field(body, "targetList");
  if (!target_list.is_array() || target_list.empty()) {
    Unsupported("a SELECT without columns");
  }
  for (const Json& target : target_list) {
    const Json& res = NodeBody(target);
    const Json& val = Field(res, "val");
    if (!targets.empty()) targets += ", ";
    if (NodeKind(val) == "ColumnRef") {
      const std::vector<std::string> fields = Names(Field(NodeBody(val), "fields"));
      const Json& last = Field(NodeBody(val), "fields").back();
      if (NodeKind(last) == "A_Star") {
        // * and t.*: the engine names the columns as PostgreSQL does.
        targets += fields.empty() ? "*" : QuoteIdentifier(fields.back()) + ".*";
        for (const Relation& r : scope.relations) {
          if (!fields.empty() &&
              !(r.alias.size() == fields.back().size() &&
                ::strncasecmp(r.alias.data(), fields.back().data(), r.alias.size()) == 0)) {
            continue;
          }
          if (!r.columns_known) result.columns_known = false;
          result.columns.insert(result.columns.end(), r.columns.begin(), r.columns.end());
        }
        continue;
      }
    }
    Expr e = Expression(val, scope);
    std::string name = StringField(res, "name");
    if (name.empty()) name = e.name.empty() ? "?column?" : e.name;
    if (e.type == kIntervalOid) Unsupported("an interval value as a result");
    targets += e.sql + " AS " + QuoteIdentifier(name);
    result.columns.push_back(ColumnSchema{name, e.type});
  }
  sql += targets;
  if (!from.empty()) sql += " FROM " + from;
  if (const Json& where = Field(body, "whereClause"); !where.is_null()) {
    sql += " WHERE " + Expression(where, scope).sql;
  }
  if (const Json& group = Field(body, "groupClause"); group.is_array()) {
    std::string list;
    for (const Json& item : group) {
      const std::string_view kind = NodeKind(item);
      if (kind == "GroupingSet") Unsupported("GROUPING SETS, ROLLUP and CUBE");
      if (!list.empty()) list += ", ";
      list += Expression(item, scope).sql;
    }
    sql += " GROUP BY " + list;
  }
  if (const Json& having = Field(body, "havingClause"); !having.is_null()) {
    sql += " HAVING " + Expression(having, scope).sql;
  }
  if (const Json& windows = Field(body, "windowClause"); windows.is_array()) {
    std::string list;
    for (const Json& w : windows) {
      const Json& def = NodeBody(w);
      if (!list.empty()) list += ", ";
      list += QuoteIdentifier(StringField(def, "name")) + " AS (" + WindowSpec(def, scope) + ")";
    }
    sql += " WINDOW " + list;
  }
  if (const Json& sort = Field(body, "sortClause"); !sort.is_null()) {
    sql += " ORDER BY " + OrderBy(sort, scope);
  }
  sql += LimitClause(body, scope);
  result.sql = std::move(sql);
  return result;
}

SelectResult Translator::Values(const Json& body, const Scope* outer) {
  Scope scope;
  scope.outer = outer;
  SelectResult result;
  std::string sql = "VALUES ";
  bool first_row = true;
  for (const Json& row : Field(body, "valuesLists")) {
    const std::vector<Expr> items = List(Field(NodeBody(row), "items"), scope);
    if (!first_row) sql += ", ";
    sql += "(";
    for (size_t i = 0; i < items.size(); ++i) {
      if (i > 0) sql += ", ";
      sql += items[i].sql;
      if (first_row) {
        result.columns.push_back(ColumnSchema{"column" + std::to_string(i + 1), items[i].type});
      }
    }
    sql += ")";
    first_row = false;
  }
  if (!Field(body, "sortClause").is_null() || !Field(body, "limitCount").is_null() ||
      !Field(body, "limitOffset").is_null()) {
    sql = "SELECT * FROM (" + sql + ")";
    if (const Json& sort = Field(body, "sortClause"); !sort.is_null()) {
      sql += " ORDER BY " + OrderBy(sort, scope);
    }
    sql += LimitClause(body, scope);
  }
  result.sql = std::move(sql);
  return result;
}

std::string Translator::With(const Json& with, Scope& scope) {
  const Json& w = with;  // the WithClause's fields, not a wrapped node
  const bool recursive = BoolField(w, "recursive");
  std::string sql = recursive ? "WITH RECURSIVE " : "WITH ";
  bool first = true;
  for (const Json& node : Field(w, "ctes")) {
    const Json& cte = NodeBody(node);
    const std::string name = StringField(cte, "ctename");
    const std::vector<std::string> aliases = Names(Field(cte, "aliascolnames"));
    const Json& query = Field(cte, "ctequery");
    if (NodeKind(query) != "SelectStmt") Unsupported("a data-modifying statement in WITH");
    if (recursive) {
      // The query refers to itself: its columns are in scope, types unknown.
      Relation self{name, {}, !aliases.empty()};
      for (const std::string& a : aliases) self.columns.push_back(ColumnSchema{a, oid::kUnknown});
      scope.ctes.push_back(std::move(self));
    }
    SelectResult body = Select(NodeBody(query), &scope);
    Relation relation{name, body.columns, body.columns_known};
    for (size_t i = 0; i < aliases.size() && i < relation.columns.size(); ++i) {
      relation.columns[i].name = aliases[i];
    }
    if (recursive) scope.ctes.pop_back();
    scope.ctes.push_back(std::move(relation));

    if (!first) sql += ", ";
    first = false;
    sql += QuoteIdentifier(name);
    if (!aliases.empty()) {
      sql += "(";
      for (size_t i = 0; i < aliases.size(); ++i) {
        sql += (i > 0 ? ", " : "") + QuoteIdentifier(aliases[i]);
      }
      sql += ")";
    }
    sql += " AS ";
    const std::string materialized = StringField(cte, "ctematerialized");
    if (materialized == "CTEMaterializeAlways") sql += "MATERIALIZED ";
    if (materialized == "CTEMaterializeNever") sql += "NOT MATERIALIZED ";
    sql += "(" + body.sql + ")";
  }
  return sql + " ";
}

std::string Translator::FromItem(const Json& node, Scope& scope) {
  const std::string_view kind = NodeKind(node);
  const Json& body = NodeBody(node);
  const Json& alias_node = Field(body, "alias");  // an Alias's fields, not a wrapped node
  const std::string alias = StringField(alias_node, "aliasname");
  const std::vector<std::string> column_aliases = Names(Field(alias_node, "colnames"));

  // Renames a relation's columns as "alias(a, b)" asks; the engine has no
  // such syntax, so the relation becomes a subquery.
  const auto renamed = [&](const std::string& source, Relation relation) {
    if (column_aliases.empty()) {
      scope.relations.push_back(std::move(relation));
      return source + (alias.empty() ? "" : " AS " + QuoteIdentifier(alias));
    }
    if (!relation.columns_known || column_aliases.size() > relation.columns.size()) {
      Fail(sqlstate::kSyntaxError,
           "table \"" + relation.alias + "\" has " + std::to_string(relation.columns.size()) +
               " columns available but " + std::to_string(column_aliases.size()) +
               " columns specified");
    }
    std::string select = "(SELECT ";
    for (size_t i = 0; i < relation.columns.size(); ++i) {
      if (i > 0) select += ", ";
      select += QuoteIdentifier(relation.columns[i].name);
      if (i < column_aliases.size()) {
        select += " AS " + QuoteIdentifier(column_aliases[i]);
        relation.columns[i].name = column_aliases[i];
      }
    }
    select += " FROM " + source + ")";
    scope.relations.push_back(std::move(relation));
    return select + " AS " + QuoteIdentifier(scope.relations.back().alias);
  };

  if (kind == "RangeVar") {
    const std::string schema_name = StringField(body, "schemaname");
    const std::string name = StringField(body, "relname");
    if (!StringField(body, "catalogname").empty()) Unsupported("a database-qualified table name");
    if (catalog_ && !(schema_name.empty() && scope.FindCte(name) != nullptr)) {
      const std::string table = CatalogTableFor(schema_name, name);
      if (table.empty()) {
        Unsupported("the catalog relation " + (schema_name.empty() ? "" : schema_name + ".") +
                    name);
      }
      Relation relation{alias.empty() ? name : alias, {}, true};
      relation.columns = CatalogRelations().Find(table)->columns;
      return renamed(QuoteIdentifier(table) + (alias.empty() ? " AS " + QuoteIdentifier(name) : ""),
                     std::move(relation));
    }
    if (schema_name == "pg_catalog" || schema_name == "information_schema") {
      Unsupported("the catalog relation " + schema_name + "." + name);
    }
    if (!schema_name.empty() && schema_name != "public") {
      Fail(sqlstate::kUndefinedTable,
           "relation \"" + schema_name + "." + name + "\" does not exist");
    }
    Relation relation{alias.empty() ? name : alias, {}, false};
    if (const Relation* cte = schema_name.empty() ? scope.FindCte(name) : nullptr) {
      relation.columns = cte->columns;
      relation.columns_known = cte->columns_known;
    } else if (const TableSchema* table = schema_.Find(name)) {
      relation.columns = table->columns;
      relation.columns_known = true;
    }
    return renamed(QuoteIdentifier(name), std::move(relation));
  }
  if (kind == "RangeSubselect") {
    if (BoolField(body, "lateral")) Unsupported("LATERAL");
    Scope* outer = const_cast<Scope*>(scope.outer);
    // A subquery in FROM sees the outer query and the CTEs, not its siblings.
    Scope sibling_free;
    sibling_free.outer = outer;
    sibling_free.ctes = scope.ctes;
    SelectResult sub = Select(NodeBody(Field(body, "subquery")), &sibling_free);
    Relation relation{alias.empty() ? "subquery" : alias, sub.columns, sub.columns_known};
    if (alias.empty()) {
      Fail(sqlstate::kSyntaxError, "subquery in FROM must have an alias");
    }
    return renamed("(" + sub.sql + ")", std::move(relation));
  }
  if (kind == "JoinExpr") {
    if (!Field(body, "alias").is_null()) Unsupported("an alias for a JOIN");
    std::string left = FromItem(Field(body, "larg"), scope);
    const bool right_is_join = NodeKind(Field(body, "rarg")) == "JoinExpr";
    std::string right = FromItem(Field(body, "rarg"), scope);
    if (right_is_join) right = "(" + right + ")";
    const std::string type = StringField(body, "jointype");
    std::string join = BoolField(body, "isNatural") ? " NATURAL" : "";
    if (type == "JOIN_LEFT") {
      join += " LEFT JOIN ";
    } else if (type == "JOIN_RIGHT") {
      join += " RIGHT JOIN ";
    } else if (type == "JOIN_FULL") {
      join += " FULL JOIN ";
    } else if (type == "JOIN_INNER" || type.empty()) {
      join += " JOIN ";
    } else {
      Unsupported("the join type " + type);
    }
    std::string sql = left + join + right;
    if (const Json& using_list = Field(body, "usingClause"); using_list.is_array()) {
      std::string columns;
      for (const std::string& c : Names(using_list)) {
        columns += (columns.empty() ? "" : ", ") + QuoteIdentifier(c);
      }
      sql += " USING (" + columns + ")";
    } else if (const Json& quals = Field(body, "quals"); !quals.is_null()) {
      sql += " ON " + Expression(quals, scope).sql;
    }
    return sql;
  }
  if (kind == "RangeFunction") {
    if (catalog_) return CatalogFunctionInFrom(body, scope);
    Unsupported("a function in FROM (such as generate_series)");
  }
  if (kind == "RangeTableSample") Unsupported("TABLESAMPLE");
  Unsupported("the FROM item " + std::string(kind));
}

std::string Translator::OrderBy(const Json& sort_list, const Scope& scope) {
  std::string sql;
  for (const Json& item : sort_list) {
    const Json& sort = NodeBody(item);
    if (!Field(sort, "useOp").is_null()) Unsupported("ORDER BY ... USING");
    if (!sql.empty()) sql += ", ";
    sql += Expression(Field(sort, "node"), scope).sql;
    const std::string dir = StringField(sort, "sortby_dir");
    const std::string nulls = StringField(sort, "sortby_nulls");
    const bool desc = dir == "SORTBY_DESC";
    sql += desc ? " DESC" : " ASC";
    // PostgreSQL sorts NULL as larger than any value; the engine as smaller.
    bool nulls_first = desc;
    if (nulls == "SORTBY_NULLS_FIRST") nulls_first = true;
    if (nulls == "SORTBY_NULLS_LAST") nulls_first = false;
    sql += nulls_first ? " NULLS FIRST" : " NULLS LAST";
  }
  return sql;
}

std::string Translator::WindowSpec(const Json& def, const Scope& scope) {
  std::string sql;
  if (const std::string ref = StringField(def, "refname"); !ref.empty()) {
    sql += QuoteIdentifier(ref);
  }
  if (const Json& partition = Field(def, "partitionClause"); partition.is_array()) {
    std::string list;
    for (const Expr& e : List(partition, scope)) list += (list.empty() ? "" : ", ") + e.sql;
    sql += (sql.empty() ? "" : " ") + std::string("PARTITION BY ") + list;
  }
  if (const Json& order = Field(def, "orderClause"); order.is_array()) {
    sql += (sql.empty() ? "" : " ") + std::string("ORDER BY ") + OrderBy(order, scope);
  }
  // Frame options, as PostgreSQL's FRAMEOPTION_* bits.
  const int64_t options = IntField(def, "frameOptions");
  constexpr int64_t kNonDefault = 0x1, kRange = 0x2, kRows = 0x4, kGroups = 0x8, kBetween = 0x10,
                    kStartUnboundedPreceding = 0x20, kEndUnboundedFollowing = 0x100,
                    kStartCurrentRow = 0x200, kEndCurrentRow = 0x400, kStartOffsetPreceding = 0x800,
                    kEndOffsetPreceding = 0x1000, kStartOffsetFollowing = 0x2000,
                    kEndOffsetFollowing = 0x4000, kExcludeCurrentRow = 0x8000,
                    kExcludeGroup = 0x10000, kExcludeTies = 0x20000;
  if ((options & kNonDefault) == 0) return sql;
  std::string frame = (options & kRows) ? "ROWS" : (options & kGroups) ? "GROUPS" : "RANGE";
  (void)kRange;
  const auto bound = [&](bool start) -> std::string {
    if (start ? (options & kStartUnboundedPreceding) : false) return "UNBOUNDED PRECEDING";
    if (!start && (options & kEndUnboundedFollowing)) return "UNBOUNDED FOLLOWING";
    if (options & (start ? kStartCurrentRow : kEndCurrentRow)) return "CURRENT ROW";
    const Json& offset = Field(def, start ? "startOffset" : "endOffset");
    const std::string value = Expression(offset, scope).sql;
    if (options & (start ? kStartOffsetPreceding : kEndOffsetPreceding)) {
      return value + " PRECEDING";
    }
    if (options & (start ? kStartOffsetFollowing : kEndOffsetFollowing)) {
      return value + " FOLLOWING";
    }
    Unsupported("this window frame");
  };
  if (options & kBetween) {
    frame += " BETWEEN " + bound(true) + " AND " + bound(false);
  } else {
    frame += " " + bound(true);
  }
  if (options & kExcludeCurrentRow) frame += " EXCLUDE CURRENT ROW";
  if (options & kExcludeGroup) frame += " EXCLUDE GROUP";
  if (options & kExcludeTies) frame += " EXCLUDE TIES";
  return sql + (sql.empty() ? "" : " ") + frame;
}

std::string Translator::LimitClause(const Json& body, const Scope& scope) {
  if (StringField(body, "limitOption") == "LIMIT_OPTION_WITH_TIES") Unsupported("WITH TIES");
  const auto bound = [&](const Json& node) -> std::optional<std::string> {
    if (node.is_null()) return std::nullopt;
    if (NodeKind(node) == "A_Const" && BoolField(NodeBody(node), "isnull")) return std::nullopt;
    Expr e = Expression(node, scope);
    Expr int8;
    int8.type = oid::kInt8;
    Infer(e, int8);
    return e.sql;
  };
  const auto count = bound(Field(body, "limitCount"));
  const auto offset = bound(Field(body, "limitOffset"));
  std::string sql;
  if (count.has_value() || offset.has_value()) sql += " LIMIT " + count.value_or("-1");
  if (offset.has_value()) sql += " OFFSET " + *offset;
  return sql;
}

// --- cursors -----------------------------------------------------------------

Translation Translator::Cursor(std::string_view kind, const Json& body) {
  Translation out;
  out.cursor.name = StringField(body, "portalname");
  if (kind == "DeclareCursorStmt") {
    // PostgreSQL's CURSOR_OPT_* bits.
    constexpr int64_t kBinary = 0x1, kScroll = 0x2, kHold = 0x20;
    const int64_t options = IntField(body, "options");
    if (options & kBinary) Unsupported("BINARY cursors");
    if (options & kScroll) Unsupported("SCROLL cursors (cursors fetch forward only)");
    const Json& query = Field(body, "query");
    if (NodeKind(query) != "SelectStmt")
      Unsupported("a cursor over a statement that is not a query");
    SelectResult result = Select(NodeBody(query), nullptr);
    out.kind = StatementKind::kDeclareCursor;
    out.sql = std::move(result.sql);
    out.cursor.hold = (options & kHold) != 0;
    out.column_types = ColumnTypes(result);
    return out;
  }
  if (kind == "ClosePortalStmt") {
    out.kind = StatementKind::kCloseCursor;
    return out;
  }
  const std::string direction = StringField(body, "direction");
  if (!direction.empty() && direction != "FETCH_FORWARD") {
    Unsupported("FETCH " + direction.substr(6) + " (cursors fetch forward only)");
  }
  // FETCH ALL is the largest count; the JSON leaves a count of 0 out.
  const int64_t how_many = IntField(body, "howMany");
  if (how_many <= 0) Unsupported("FETCH 0 (fetching the current row again)");
  out.kind = StatementKind::kFetch;
  out.cursor.count = how_many == INT64_MAX ? 0 : static_cast<uint64_t>(how_many);
  out.cursor.move = BoolField(body, "ismove");
  return out;
}

// --- COPY --------------------------------------------------------------------

Translation Translator::Copy(const Json& copy) {
  if (BoolField(copy, "is_from")) Unsupported("COPY FROM (the enclave is read-only)");
  if (!StringField(copy, "filename").empty() || BoolField(copy, "is_program")) {
    Unsupported("COPY to a file or program on the server; use COPY ... TO STDOUT or \\copy");
  }
  Translation out;
  out.kind = StatementKind::kCopyOut;
  if (const Json& query = Field(copy, "query"); !query.is_null()) {
    if (NodeKind(query) != "SelectStmt") Unsupported("COPY of a statement that is not a query");
    SelectResult result = Select(NodeBody(query), nullptr);
    out.sql = std::move(result.sql);
    out.column_types = ColumnTypes(result);
  } else {
    // COPY table [(columns)] TO STDOUT
    const Json& relation = Field(copy, "relation");
    std::string columns = "*";
    if (const Json& attlist = Field(copy, "attlist"); attlist.is_array()) {
      columns.clear();
      for (const std::string& c : Names(attlist)) {
        columns += (columns.empty() ? "" : ", ") + QuoteIdentifier(c);
      }
    }
    Scope scope;
    out.sql = "SELECT " + columns + " FROM " + FromItem(Json{{"RangeVar", relation}}, scope);
  }
  std::string format = "text";
  for (const Json& option : Field(copy, "options")) {
    const Json& def = NodeBody(option);
    const std::string name = StringField(def, "defname");
    const Json& arg = Field(def, "arg");
    std::string value;
    if (NodeKind(arg) == "String") value = StringField(NodeBody(arg), "sval");
    if (NodeKind(arg) == "Boolean") value = BoolField(NodeBody(arg), "boolval") ? "true" : "false";
    if (NodeKind(arg) == "Integer") value = std::to_string(IntField(NodeBody(arg), "ival"));
    const auto on = [&] {
      return arg.is_null() || value == "true" || value == "on" || value == "1";
    };
    if (name == "format") {
      format = value;
    } else if (name == "header") {
      out.copy.header = on();
    } else if (name == "delimiter") {
      if (value.size() != 1)
        Fail(sqlstate::kFeatureNotSupported, "COPY delimiter must be a single one-byte character");
      out.copy.delimiter = value[0];
    } else if (name == "null") {
      out.copy.null_text = value;
    } else if (name == "quote") {
      if (value.size() != 1)
        Fail(sqlstate::kFeatureNotSupported, "COPY quote must be a single one-byte character");
      out.copy.quote = value[0];
    } else if (name == "encoding") {
      if (!SameName(value, "utf8") && !SameName(value, "utf-8")) {
        Unsupported("COPY in an encoding other than UTF8");
      }
    } else {
      Unsupported("the COPY option " + name);
    }
  }
  if (format == "csv") {
    out.copy.csv = true;
    bool delimiter_given = false, null_given = false;
    for (const Json& option : Field(copy, "options")) {
      const std::string name = StringField(NodeBody(option), "defname");
      delimiter_given |= name == "delimiter";
      null_given |= name == "null";
    }
    if (!delimiter_given) out.copy.delimiter = ',';
    if (!null_given) out.copy.null_text.clear();
  } else if (format == "binary") {
    Unsupported("COPY in binary format");
  } else if (format != "text") {
    Fail(sqlstate::kFeatureNotSupported, "COPY format \"" + format + "\" not recognized");
  } else if (out.copy.header) {
    Unsupported("COPY HEADER in text format (PostgreSQL 15 allows it with CSV only)");
  }
  return out;
}

}  // namespace translate

std::variant<Translation, PgError> TranslateParsed(std::string_view source, const Json& raw_stmt,
                                                   const GrantSchema& schema,
                                                   const std::vector<uint32_t>& declared,
                                                   const SessionFacts& facts) {
  try {
    translate::Translator translator(source, schema, declared, facts);
    return translator.Run(raw_stmt);
  } catch (const translate::Refusal& refusal) {
    return refusal.error;
  }
}

std::variant<Translation, PgError> Translate(std::string_view sql, const GrantSchema& schema,
                                             const std::vector<uint32_t>& declared,
                                             const SessionFacts& facts) {
  auto parsed = ParsePostgres(sql);
  if (auto* error = std::get_if<PgError>(&parsed)) return std::move(*error);
  const Json& tree = std::get<Json>(parsed);
  const Json& stmts = translate::Field(tree, "stmts");
  if (!stmts.is_array() || stmts.empty()) {
    return MakeError(sqlstate::kSyntaxError, "empty statement");
  }
  if (stmts.size() > 1) {
    return MakeError(sqlstate::kSyntaxError,
                     "cannot insert multiple commands into a prepared statement");
  }
  return TranslateParsed(sql, stmts[0], schema, declared, facts);
}

std::string VersionString() {
  return "PostgreSQL 15.0 (airlock) on x86_64-pc-linux-gnu, compiled by airlock, 64-bit";
}

std::variant<std::string, PgError> LikeToGlob(std::string_view pattern, char escape) {
  std::string glob;
  glob.reserve(pattern.size() + 8);
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (escape != 0 && c == escape) {
      if (i + 1 == pattern.size()) {
        return MakeError("22025", "LIKE pattern must not end with escape character");
      }
      const char next = pattern[++i];
      if (next == '*' || next == '?' || next == '[') {
        glob += std::string("[") + next + "]";
      } else {
        glob.push_back(next);
      }
      continue;
    }
    switch (c) {
      case '%':
        glob.push_back('*');
        break;
      case '_':
        glob.push_back('?');
        break;
      case '*':
      case '?':
      case '[':
        glob += std::string("[") + c + "]";
        break;
      default:
        glob.push_back(c);
    }
  }
  return glob;
}

}  // namespace airlock::tunnels::pgwire
