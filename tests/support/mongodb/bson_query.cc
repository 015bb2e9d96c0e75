#include "tests/support/mongodb/bson_query.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <regex>

namespace airlock::testing::mongodb {
namespace {

BsonView Sub(const bson_value_t& v) {
  return BsonView(v.value.v_doc.data, v.value.v_doc.data_len);
}

int Rank(bson_type_t t) {
  switch (t) {
    case BSON_TYPE_MINKEY:
      return 1;
    case BSON_TYPE_NULL:
    case BSON_TYPE_UNDEFINED:
      return 2;
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
    case BSON_TYPE_DOUBLE:
    case BSON_TYPE_DECIMAL128:
      return 3;
    case BSON_TYPE_UTF8:
    case BSON_TYPE_SYMBOL:
      return 4;
    case BSON_TYPE_DOCUMENT:
      return 5;
    case BSON_TYPE_ARRAY:
      return 6;
    case BSON_TYPE_BINARY:
      return 7;
    case BSON_TYPE_OID:
      return 8;
    case BSON_TYPE_BOOL:
      return 9;
    case BSON_TYPE_DATE_TIME:
      return 10;
    case BSON_TYPE_TIMESTAMP:
      return 11;
    case BSON_TYPE_REGEX:
      return 12;
    case BSON_TYPE_MAXKEY:
      return 100;
    default:
      return 50;
  }
}

bool IsNumber(const bson_value_t& v) {
  return Rank(v.value_type) == 3;
}

long double AsNumber(const bson_value_t& v) {
  switch (v.value_type) {
    case BSON_TYPE_INT32:
      return v.value.v_int32;
    case BSON_TYPE_INT64:
      return static_cast<long double>(v.value.v_int64);
    case BSON_TYPE_DOUBLE:
      return v.value.v_double;
    case BSON_TYPE_DECIMAL128: {
      char text[BSON_DECIMAL128_STRING];
      bson_decimal128_to_string(&v.value.v_decimal128, text);
      return std::strtold(text, nullptr);
    }
    default:
      return 0;
  }
}

std::string_view Str(const bson_value_t& v) {
  return {v.value.v_utf8.str, v.value.v_utf8.len};
}

bool IsNullish(const bson_value_t& v) {
  return v.value_type == BSON_TYPE_NULL || v.value_type == BSON_TYPE_UNDEFINED;
}

template <typename T>
int Cmp(T a, T b) {
  return a < b ? -1 : (b < a ? 1 : 0);
}

int CompareBytes(const uint8_t* a, size_t na, const uint8_t* b, size_t nb) {
  const int c = std::memcmp(a, b, std::min(na, nb));
  if (c != 0) return c < 0 ? -1 : 1;
  return Cmp(na, nb);
}

// Every value reachable at `path` (sub-documents and arrays of documents are
// descended). Values borrow from `doc`.
void CollectPath(const bson_t* doc, std::string_view path, std::vector<bson_value_t>& out) {
  const size_t dot = path.find('.');
  const std::string head(path.substr(0, dot));
  bson_iter_t it;
  if (!bson_iter_init_find(&it, doc, head.c_str())) return;
  const bson_value_t v = *bson_iter_value(&it);
  if (dot == std::string_view::npos) {
    out.push_back(v);
    return;
  }
  const std::string_view rest = path.substr(dot + 1);
  if (v.value_type == BSON_TYPE_DOCUMENT) {
    BsonView sub = Sub(v);
    CollectPath(sub.get(), rest, out);
  } else if (v.value_type == BSON_TYPE_ARRAY) {
    BsonView arr = Sub(v);
    bson_iter_t e;
    if (!bson_iter_init(&e, arr.get())) return;
    while (bson_iter_next(&e)) {
      const bson_value_t* ev = bson_iter_value(&e);
      if (ev->value_type == BSON_TYPE_DOCUMENT) {
        BsonView sub = Sub(*ev);
        CollectPath(sub.get(), rest, out);
      }
    }
  }
}

// The values a condition looks at: each value, and each element of an array.
std::vector<bson_value_t> Candidates(const std::vector<bson_value_t>& values) {
  std::vector<bson_value_t> out;
  for (const bson_value_t& v : values) {
    out.push_back(v);
    if (v.value_type == BSON_TYPE_ARRAY) {
      BsonView arr = Sub(v);
      bson_iter_t e;
      if (!bson_iter_init(&e, arr.get())) continue;
      while (bson_iter_next(&e)) out.push_back(*bson_iter_value(&e));
    }
  }
  return out;
}

std::regex CompileRegex(std::string pattern, std::string_view options) {
  auto flags = std::regex::ECMAScript;
  for (char o : options) {
    if (o == 'i') {
      flags |= std::regex::icase;
    } else {
      BadValue(std::string("unsupported regex option '") + o + "'");
    }
  }
  for (auto [from, to] : {std::pair{"\\A", "^"}, std::pair{"\\z", "$"}, std::pair{"\\Z", "$"}}) {
    for (size_t p = pattern.find(from); p != std::string::npos; p = pattern.find(from, p)) {
      pattern.replace(p, 2, to);
    }
  }
  try {
    return std::regex(pattern, flags);
  } catch (const std::regex_error&) {
    BadValue("invalid regular expression");
  }
}

bool RegexMatchesAny(const std::regex& re, const std::vector<bson_value_t>& candidates) {
  for (const bson_value_t& c : candidates) {
    if (c.value_type != BSON_TYPE_UTF8) continue;
    const std::string_view s = Str(c);
    if (std::regex_search(s.begin(), s.end(), re)) return true;
  }
  return false;
}

bool EqualsAny(const std::vector<bson_value_t>& values, const bson_value_t& x) {
  if (IsNullish(x)) {
    if (values.empty()) return true;
    for (const auto& c : Candidates(values)) {
      if (IsNullish(c)) return true;
    }
    return false;
  }
  if (x.value_type == BSON_TYPE_REGEX) {
    const std::regex re = CompileRegex(x.value.v_regex.regex, x.value.v_regex.options);
    return RegexMatchesAny(re, Candidates(values));
  }
  for (const auto& c : Candidates(values)) {
    if (Rank(c.value_type) == Rank(x.value_type) && CompareValues(c, x) == 0) return true;
  }
  return false;
}

bool OrderedAny(const std::vector<bson_value_t>& values, const bson_value_t& x, bool (*ok)(int)) {
  if (IsNullish(x)) return ok(0) && EqualsAny(values, x);  // $gte/$lte null behave as $eq null
  for (const auto& c : Candidates(values)) {
    if (Rank(c.value_type) != Rank(x.value_type)) continue;  // type bracketing
    if (IsNumber(c) && (std::isnan(AsNumber(c)) || std::isnan(AsNumber(x)))) continue;
    if (ok(CompareValues(c, x))) return true;
  }
  return false;
}

bool MatchOperators(const std::vector<bson_value_t>& values, const bson_t* ops);

bool MatchCondition(const bson_t* doc, std::string_view path, const bson_value_t& cond) {
  std::vector<bson_value_t> values;
  CollectPath(doc, path, values);
  if (cond.value_type == BSON_TYPE_DOCUMENT) {
    BsonView ops = Sub(cond);
    bson_iter_t it;
    if (bson_iter_init(&it, ops.get()) && bson_iter_next(&it) && bson_iter_key(&it)[0] == '$') {
      return MatchOperators(values, ops.get());
    }
  }
  return EqualsAny(values, cond);
}

bool InList(const std::vector<bson_value_t>& values, const bson_value_t& list) {
  if (list.value_type != BSON_TYPE_ARRAY) BadValue("$in/$nin needs an array");
  BsonView arr = Sub(list);
  bson_iter_t e;
  if (!bson_iter_init(&e, arr.get())) return false;
  while (bson_iter_next(&e)) {
    if (EqualsAny(values, *bson_iter_value(&e))) return true;
  }
  return false;
}

bool MatchOperators(const std::vector<bson_value_t>& values, const bson_t* ops) {
  bson_iter_t it;
  if (!bson_iter_init(&it, ops)) BadValue("malformed operator document");
  std::string options;
  {
    bson_iter_t o;
    if (bson_iter_init_find(&o, ops, "$options") && BSON_ITER_HOLDS_UTF8(&o)) {
      options = bson_iter_utf8(&o, nullptr);
    }
  }
  while (bson_iter_next(&it)) {
    const std::string_view op = bson_iter_key(&it);
    const bson_value_t& arg = *bson_iter_value(&it);
    bool ok = false;
    if (op == "$eq") {
      ok = EqualsAny(values, arg);
    } else if (op == "$ne") {
      ok = !EqualsAny(values, arg);
    } else if (op == "$gt") {
      ok = OrderedAny(values, arg, [](int c) { return c > 0; });
    } else if (op == "$gte") {
      ok = OrderedAny(values, arg, [](int c) { return c >= 0; });
    } else if (op == "$lt") {
      ok = OrderedAny(values, arg, [](int c) { return c < 0; });
    } else if (op == "$lte") {
      ok = OrderedAny(values, arg, [](int c) { return c <= 0; });
    } else if (op == "$in") {
      ok = InList(values, arg);
    } else if (op == "$nin") {
      ok = !InList(values, arg);
    } else if (op == "$exists") {
      ok = bson_iter_as_bool(&it) == !values.empty();
    } else if (op == "$regex") {
      std::string pattern;
      std::string opts = options;
      if (arg.value_type == BSON_TYPE_UTF8) {
        pattern = std::string(Str(arg));
      } else if (arg.value_type == BSON_TYPE_REGEX) {
        pattern = arg.value.v_regex.regex;
        opts += arg.value.v_regex.options;
      } else {
        BadValue("$regex has to be a string");
      }
      ok = RegexMatchesAny(CompileRegex(pattern, opts), Candidates(values));
    } else if (op == "$options") {
      ok = true;
    } else if (op == "$not") {
      if (arg.value_type == BSON_TYPE_DOCUMENT) {
        BsonView sub = Sub(arg);
        ok = !MatchOperators(values, sub.get());
      } else if (arg.value_type == BSON_TYPE_REGEX) {
        ok = !EqualsAny(values, arg);
      } else {
        BadValue("$not needs a regex or a document");
      }
    } else {
      BadValue("unknown operator: " + std::string(op));
    }
    if (!ok) return false;
  }
  return true;
}

void ValidateOperators(const bson_t* ops) {
  static const char* const kKnown[] = {"$eq", "$ne",  "$gt",     "$gte",   "$lt",      "$lte",
                                       "$in", "$nin", "$exists", "$regex", "$options", "$not"};
  bson_iter_t it;
  if (!bson_iter_init(&it, ops)) BadValue("malformed operator document");
  while (bson_iter_next(&it)) {
    const std::string_view op = bson_iter_key(&it);
    if (std::none_of(std::begin(kKnown), std::end(kKnown),
                     [&](const char* k) { return op == k; })) {
      BadValue("unknown operator: " + std::string(op));
    }
  }
}

// --- expressions -------------------------------------------------------------

// An expression result: one element "v" of an owned document, or missing.
struct Val {
  std::shared_ptr<bson_t> holder;
  bool missing() const { return holder == nullptr; }
  bson_value_t value() const {
    bson_iter_t it;
    bson_iter_init(&it, holder.get());
    bson_iter_next(&it);
    return *bson_iter_value(&it);
  }
};

std::shared_ptr<bson_t> NewHolder() {
  return std::shared_ptr<bson_t>(bson_new(), [](bson_t* b) { bson_destroy(b); });
}
Val FromValue(const bson_value_t& v) {
  Val out{NewHolder()};
  bson_append_value(out.holder.get(), "v", 1, &v);
  return out;
}
Val FromString(std::string_view s) {
  Val out{NewHolder()};
  bson_append_utf8(out.holder.get(), "v", 1, s.data(), static_cast<int>(s.size()));
  return out;
}
Val FromNull() {
  Val out{NewHolder()};
  bson_append_null(out.holder.get(), "v", 1);
  return out;
}
Val FromBool(bool b) {
  Val out{NewHolder()};
  bson_append_bool(out.holder.get(), "v", 1, b);
  return out;
}
Val FromInt64(int64_t i) {
  Val out{NewHolder()};
  bson_append_int64(out.holder.get(), "v", 1, i);
  return out;
}
Val FromDouble(double d) {
  Val out{NewHolder()};
  bson_append_double(out.holder.get(), "v", 1, d);
  return out;
}

Val Eval(const bson_value_t& expr, const bson_t* root);

std::vector<Val> Args(const bson_value_t& arg, const bson_t* root) {
  std::vector<Val> out;
  if (arg.value_type == BSON_TYPE_ARRAY) {
    BsonView arr = Sub(arg);
    bson_iter_t e;
    if (bson_iter_init(&e, arr.get())) {
      while (bson_iter_next(&e)) out.push_back(Eval(*bson_iter_value(&e), root));
    }
  } else {
    out.push_back(Eval(arg, root));
  }
  return out;
}

bool Truthy(const Val& v) {
  if (v.missing()) return false;
  const bson_value_t x = v.value();
  if (IsNullish(x)) return false;
  if (x.value_type == BSON_TYPE_BOOL) return x.value.v_bool;
  if (IsNumber(x)) return AsNumber(x) != 0;
  return true;
}

// Aggregation comparison: missing sorts below everything, then MongoDB order.
int CompareVals(const Val& a, const Val& b) {
  if (a.missing() || b.missing()) return Cmp(!a.missing(), !b.missing());
  return CompareValues(a.value(), b.value());
}

const char* TypeName(const Val& v) {
  if (v.missing()) return "missing";
  switch (v.value().value_type) {
    case BSON_TYPE_DOUBLE:
      return "double";
    case BSON_TYPE_UTF8:
      return "string";
    case BSON_TYPE_DOCUMENT:
      return "object";
    case BSON_TYPE_ARRAY:
      return "array";
    case BSON_TYPE_BINARY:
      return "binData";
    case BSON_TYPE_OID:
      return "objectId";
    case BSON_TYPE_BOOL:
      return "bool";
    case BSON_TYPE_DATE_TIME:
      return "date";
    case BSON_TYPE_NULL:
      return "null";
    case BSON_TYPE_REGEX:
      return "regex";
    case BSON_TYPE_INT32:
      return "int";
    case BSON_TYPE_TIMESTAMP:
      return "timestamp";
    case BSON_TYPE_INT64:
      return "long";
    case BSON_TYPE_DECIMAL128:
      return "decimal";
    default:
      return "other";
  }
}

size_t CodePoints(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

size_t ByteOfCodePoint(std::string_view s, size_t cp) {
  size_t seen = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (seen == cp) return i;
      ++seen;
    }
  }
  return s.size();
}

int64_t IntArg(const Val& v, const char* op) {
  if (v.missing() || !IsNumber(v.value())) BadValue(std::string(op) + " needs numeric arguments");
  return static_cast<int64_t>(AsNumber(v.value()));
}

Val Arithmetic(const std::vector<Val>& args, bool subtract) {
  bool any_double = false;
  bool all_int32 = true;
  for (const Val& a : args) {
    if (a.missing() || IsNullish(a.value())) return FromNull();
    const bson_value_t x = a.value();
    if (!IsNumber(x) || x.value_type == BSON_TYPE_DECIMAL128) BadValue("arithmetic on non-numbers");
    any_double = any_double || x.value_type == BSON_TYPE_DOUBLE;
    all_int32 = all_int32 && x.value_type == BSON_TYPE_INT32;
  }
  if (subtract && args.size() != 2) BadValue("$subtract takes two arguments");
  if (any_double) {
    double r = static_cast<double>(AsNumber(args[0].value()));
    for (size_t i = 1; i < args.size(); ++i) {
      const double x = static_cast<double>(AsNumber(args[i].value()));
      r = subtract ? r - x : r + x;
    }
    return FromDouble(r);
  }
  int64_t r = static_cast<int64_t>(AsNumber(args[0].value()));
  for (size_t i = 1; i < args.size(); ++i) {
    const int64_t x = static_cast<int64_t>(AsNumber(args[i].value()));
    r = subtract ? r - x : r + x;
  }
  if (all_int32 && r >= INT32_MIN && r <= INT32_MAX) {
    Val out{NewHolder()};
    bson_append_int32(out.holder.get(), "v", 1, static_cast<int32_t>(r));
    return out;
  }
  return FromInt64(r);
}

Val ToStringVal(const Val& v) {
  if (v.missing() || IsNullish(v.value())) return FromNull();
  const bson_value_t x = v.value();
  char buf[64];
  switch (x.value_type) {
    case BSON_TYPE_UTF8:
      return v;
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64: {
      auto [p, ec] = std::to_chars(buf, buf + sizeof buf, static_cast<int64_t>(AsNumber(x)));
      return FromString(std::string_view(buf, static_cast<size_t>(p - buf)));
    }
    case BSON_TYPE_DOUBLE: {
      auto [p, ec] = std::to_chars(buf, buf + sizeof buf, x.value.v_double);
      return FromString(std::string_view(buf, static_cast<size_t>(p - buf)));
    }
    case BSON_TYPE_DECIMAL128:
      bson_decimal128_to_string(&x.value.v_decimal128, buf);
      return FromString(buf);
    case BSON_TYPE_BOOL:
      return FromString(x.value.v_bool ? "true" : "false");
    case BSON_TYPE_OID:
      bson_oid_to_string(&x.value.v_oid, buf);
      return FromString(buf);
    default:
      BadValue("$toString: unsupported input type");
  }
}

Val Operator(std::string_view op, const bson_value_t& arg, const bson_t* root) {
  if (op == "$literal") return FromValue(arg);
  if (op == "$cond") {
    if (arg.value_type == BSON_TYPE_DOCUMENT) {
      BsonView d = Sub(arg);
      bson_iter_t i_if, i_then, i_else;
      if (!bson_iter_init_find(&i_if, d.get(), "if") ||
          !bson_iter_init_find(&i_then, d.get(), "then") ||
          !bson_iter_init_find(&i_else, d.get(), "else")) {
        BadValue("$cond needs if, then and else");
      }
      return Truthy(Eval(*bson_iter_value(&i_if), root)) ? Eval(*bson_iter_value(&i_then), root)
                                                         : Eval(*bson_iter_value(&i_else), root);
    }
    // Only the chosen branch is evaluated, as on the server.
    if (arg.value_type != BSON_TYPE_ARRAY) BadValue("$cond takes three arguments");
    BsonView arr = Sub(arg);
    std::vector<bson_value_t> parts;
    bson_iter_t e;
    if (bson_iter_init(&e, arr.get())) {
      while (bson_iter_next(&e)) parts.push_back(*bson_iter_value(&e));
    }
    if (parts.size() != 3) BadValue("$cond takes three arguments");
    return Truthy(Eval(parts[0], root)) ? Eval(parts[1], root) : Eval(parts[2], root);
  }
  std::vector<Val> a = Args(arg, root);
  auto want = [&](size_t n) {
    if (a.size() != n) BadValue(std::string(op) + " takes " + std::to_string(n) + " argument(s)");
  };
  if (op == "$ifNull") {
    if (a.size() < 2) BadValue("$ifNull takes at least two arguments");
    for (size_t i = 0; i + 1 < a.size(); ++i) {
      if (!a[i].missing() && !IsNullish(a[i].value())) return a[i];
    }
    return a.back();
  }
  if (op == "$eq" || op == "$ne" || op == "$gt" || op == "$gte" || op == "$lt" || op == "$lte") {
    want(2);
    const int c = CompareVals(a[0], a[1]);
    if (op == "$eq") return FromBool(c == 0);
    if (op == "$ne") return FromBool(c != 0);
    if (op == "$gt") return FromBool(c > 0);
    if (op == "$gte") return FromBool(c >= 0);
    if (op == "$lt") return FromBool(c < 0);
    return FromBool(c <= 0);
  }
  if (op == "$type") {
    want(1);
    return FromString(TypeName(a[0]));
  }
  if (op == "$strLenCP") {
    want(1);
    if (a[0].missing() || a[0].value().value_type != BSON_TYPE_UTF8) {
      throw CommandError(34471, "Location34471", "$strLenCP requires a string argument");
    }
    return FromInt64(static_cast<int64_t>(CodePoints(Str(a[0].value()))));
  }
  if (op == "$substrCP") {
    want(3);
    std::string_view s;
    if (!a[0].missing() && a[0].value().value_type == BSON_TYPE_UTF8) {
      s = Str(a[0].value());
    } else if (!a[0].missing() && !IsNullish(a[0].value())) {
      throw CommandError(34450, "Location34450", "$substrCP: string argument expected");
    }
    const int64_t start = IntArg(a[1], "$substrCP");
    const int64_t count = IntArg(a[2], "$substrCP");
    if (start < 0 || count < 0) BadValue("$substrCP: negative arguments");
    const size_t from = ByteOfCodePoint(s, static_cast<size_t>(start));
    const size_t to = ByteOfCodePoint(s, static_cast<size_t>(start + count));
    return FromString(s.substr(from, to - from));
  }
  if (op == "$concat") {
    std::string out;
    for (const Val& v : a) {
      if (v.missing() || IsNullish(v.value())) return FromNull();
      if (v.value().value_type != BSON_TYPE_UTF8) {
        throw CommandError(16702, "Location16702", "$concat only supports strings");
      }
      out.append(Str(v.value()));
    }
    return FromString(out);
  }
  if (op == "$add") return Arithmetic(a, false);
  if (op == "$subtract") return Arithmetic(a, true);
  if (op == "$toString") {
    want(1);
    return ToStringVal(a[0]);
  }
  throw CommandError(168, "InvalidPipelineOperator",
                     "Unrecognized expression '" + std::string(op) + "'");
}

Val Eval(const bson_value_t& expr, const bson_t* root) {
  if (expr.value_type == BSON_TYPE_UTF8 && expr.value.v_utf8.len > 0 &&
      expr.value.v_utf8.str[0] == '$') {
    const std::string_view path = Str(expr).substr(1);
    if (!path.empty() && path[0] == '$') BadValue("variables are not supported");
    std::vector<bson_value_t> values;
    CollectPath(root, path, values);
    if (values.empty()) return {};
    return FromValue(values.front());
  }
  if (expr.value_type == BSON_TYPE_DOCUMENT) {
    BsonView d = Sub(expr);
    bson_iter_t it;
    if (bson_iter_init(&it, d.get()) && bson_iter_next(&it) && bson_iter_key(&it)[0] == '$') {
      const std::string op = bson_iter_key(&it);
      const bson_value_t arg = *bson_iter_value(&it);
      if (bson_iter_next(&it)) BadValue("an expression object takes exactly one operator");
      return Operator(op, arg, root);
    }
    // An object of expressions.
    Val out{NewHolder()};
    bson_t child;
    bson_append_document_begin(out.holder.get(), "v", 1, &child);
    if (bson_iter_init(&it, d.get())) {
      while (bson_iter_next(&it)) {
        Val v = Eval(*bson_iter_value(&it), root);
        if (!v.missing()) {
          const bson_value_t x = v.value();
          bson_append_value(&child, bson_iter_key(&it), -1, &x);
        }
      }
    }
    bson_append_document_end(out.holder.get(), &child);
    return out;
  }
  return FromValue(expr);
}

// --- projection ---------------------------------------------------------------

struct ProjNode {
  enum Kind { kInclude, kExclude, kExpr, kTree } kind = kTree;
  bson_value_t expr{};
  std::vector<std::pair<std::string, std::unique_ptr<ProjNode>>> children;

  ProjNode* Child(std::string_view key) {
    for (auto& [k, n] : children) {
      if (k == key) return n.get();
    }
    return nullptr;
  }
  bool HasExpr() const {
    if (kind == kExpr) return true;
    for (const auto& [k, n] : children) {
      if (n->HasExpr()) return true;
    }
    return false;
  }
};

struct Projection {
  ProjNode root;
  bool inclusion = false;
  bool id_excluded = false;
};

Projection ParseProjection(const bson_t* spec) {
  Projection p;
  bool any_exclusion = false;
  bson_iter_t it;
  if (!bson_iter_init(&it, spec)) BadValue("malformed projection");
  while (bson_iter_next(&it)) {
    const std::string key = bson_iter_key(&it);
    if (key.empty() || key[0] == '$') BadValue("projection field names must not start with '$'");
    const bson_value_t v = *bson_iter_value(&it);
    ProjNode::Kind kind = ProjNode::kExpr;
    if (IsNumber(v) || v.value_type == BSON_TYPE_BOOL) {
      kind = bson_iter_as_bool(&it) ? ProjNode::kInclude : ProjNode::kExclude;
    }
    if (key == "_id" && kind == ProjNode::kExclude) {
      p.id_excluded = true;
      continue;
    }
    if (kind == ProjNode::kExclude) {
      any_exclusion = true;
    } else {
      p.inclusion = true;
    }
    ProjNode* node = &p.root;
    size_t start = 0;
    for (;;) {
      const size_t dot = key.find('.', start);
      const std::string seg = key.substr(start, dot - start);
      ProjNode* child = node->Child(seg);
      if (child == nullptr) {
        node->children.emplace_back(seg, std::make_unique<ProjNode>());
        child = node->children.back().second.get();
      } else if (child->kind != ProjNode::kTree || dot == std::string::npos) {
        throw CommandError(31250, "Location31250", "Path collision at " + key);
      }
      if (dot == std::string::npos) {
        child->kind = kind;
        child->expr = v;
        break;
      }
      node = child;
      start = dot + 1;
    }
  }
  if (p.inclusion && any_exclusion) {
    throw CommandError(31254, "Location31254",
                       "Cannot do exclusion on a field in an inclusion projection");
  }
  return p;
}

void Include(const bson_t* doc, const ProjNode& node, const bson_t* root, bson_t* out, bool top,
             bool id_excluded);

void AppendProjectedArray(const bson_value_t& v, const ProjNode& node, const bson_t* root,
                          bson_t* out, const char* key) {
  BsonView arr = Sub(v);
  bson_t dst;
  bson_append_array_begin(out, key, -1, &dst);
  bson_iter_t e;
  uint32_t index = 0;
  if (bson_iter_init(&e, arr.get())) {
    while (bson_iter_next(&e)) {
      const bson_value_t* ev = bson_iter_value(&e);
      if (ev->value_type != BSON_TYPE_DOCUMENT) continue;  // scalars drop out of sub-paths
      BsonView sub = Sub(*ev);
      bson_t child;
      char idx[16];
      const char* k = nullptr;
      bson_uint32_to_string(index++, &k, idx, sizeof idx);
      bson_append_document_begin(&dst, k, -1, &child);
      Include(sub.get(), node, root, &child, false, false);
      bson_append_document_end(&dst, &child);
    }
  }
  bson_append_array_end(out, &dst);
}

void Include(const bson_t* doc, const ProjNode& node, const bson_t* root, bson_t* out, bool top,
             bool id_excluded) {
  std::vector<const ProjNode*> done;
  bson_iter_t it;
  if (top && !id_excluded &&
      node.children.end() == std::find_if(node.children.begin(), node.children.end(),
                                          [](const auto& c) { return c.first == "_id"; })) {
    if (bson_iter_init_find(&it, doc, "_id")) bson_append_iter(out, "_id", 3, &it);
  }
  if (bson_iter_init(&it, doc)) {
    while (bson_iter_next(&it)) {
      const char* key = bson_iter_key(&it);
      const ProjNode* child = const_cast<ProjNode&>(node).Child(key);
      if (child == nullptr) continue;
      if (child->kind == ProjNode::kInclude) {
        bson_append_iter(out, key, -1, &it);
      } else if (child->kind == ProjNode::kTree) {
        const bson_value_t v = *bson_iter_value(&it);
        if (v.value_type == BSON_TYPE_DOCUMENT) {
          BsonView sub = Sub(v);
          bson_t dst;
          bson_append_document_begin(out, key, -1, &dst);
          Include(sub.get(), *child, root, &dst, false, false);
          bson_append_document_end(out, &dst);
          done.push_back(child);
        } else if (v.value_type == BSON_TYPE_ARRAY) {
          AppendProjectedArray(v, *child, root, out, key);
          done.push_back(child);
        }
      }
    }
  }
  for (const auto& [key, child] : node.children) {
    if (child->kind == ProjNode::kExpr) {
      Val v = Eval(child->expr, root);
      if (!v.missing()) {
        const bson_value_t x = v.value();
        bson_append_value(out, key.c_str(), -1, &x);
      }
    } else if (child->kind == ProjNode::kTree && child->HasExpr() &&
               std::find(done.begin(), done.end(), child.get()) == done.end()) {
      bson_t empty = BSON_INITIALIZER;
      bson_t dst;
      bson_append_document_begin(out, key.c_str(), -1, &dst);
      Include(&empty, *child, root, &dst, false, false);
      bson_append_document_end(out, &dst);
      bson_destroy(&empty);
    }
  }
}

void Exclude(const bson_t* doc, const ProjNode& node, bson_t* out, bool top, bool id_excluded) {
  bson_iter_t it;
  if (!bson_iter_init(&it, doc)) return;
  while (bson_iter_next(&it)) {
    const char* key = bson_iter_key(&it);
    if (top && id_excluded && std::strcmp(key, "_id") == 0) continue;
    const ProjNode* child = const_cast<ProjNode&>(node).Child(key);
    if (child == nullptr) {
      bson_append_iter(out, key, -1, &it);
    } else if (child->kind == ProjNode::kTree &&
               bson_iter_value(&it)->value_type == BSON_TYPE_DOCUMENT) {
      BsonView sub = Sub(*bson_iter_value(&it));
      bson_t dst;
      bson_append_document_begin(out, key, -1, &dst);
      Exclude(sub.get(), *child, &dst, false, false);
      bson_append_document_end(out, &dst);
    } else if (child->kind == ProjNode::kTree) {
      bson_append_iter(out, key, -1, &it);
    }
  }
}

}  // namespace

void BadValue(const std::string& message) {
  throw CommandError(2, "BadValue", message);
}

int CompareValues(const bson_value_t& a, const bson_value_t& b) {
  const int ra = Rank(a.value_type);
  const int rb = Rank(b.value_type);
  if (ra != rb) return Cmp(ra, rb);
  switch (ra) {
    case 3: {
      const long double x = AsNumber(a), y = AsNumber(b);
      if (std::isnan(x) || std::isnan(y)) return Cmp(!std::isnan(x), !std::isnan(y));
      return Cmp(x, y);
    }
    case 4:
      return CompareBytes(reinterpret_cast<const uint8_t*>(a.value.v_utf8.str), a.value.v_utf8.len,
                          reinterpret_cast<const uint8_t*>(b.value.v_utf8.str), b.value.v_utf8.len);
    case 5:
    case 6:
      return CompareBytes(a.value.v_doc.data, a.value.v_doc.data_len, b.value.v_doc.data,
                          b.value.v_doc.data_len);
    case 7:
      if (a.value.v_binary.data_len != b.value.v_binary.data_len) {
        return Cmp(a.value.v_binary.data_len, b.value.v_binary.data_len);
      }
      if (a.value.v_binary.subtype != b.value.v_binary.subtype) {
        return Cmp(a.value.v_binary.subtype, b.value.v_binary.subtype);
      }
      return CompareBytes(a.value.v_binary.data, a.value.v_binary.data_len, b.value.v_binary.data,
                          b.value.v_binary.data_len);
    case 8: {
      const int c = bson_oid_compare(&a.value.v_oid, &b.value.v_oid);
      return c < 0 ? -1 : (c > 0 ? 1 : 0);
    }
    case 9:
      return Cmp(a.value.v_bool, b.value.v_bool);
    case 10:
      return Cmp(a.value.v_datetime, b.value.v_datetime);
    case 11:
      if (a.value.v_timestamp.timestamp != b.value.v_timestamp.timestamp) {
        return Cmp(a.value.v_timestamp.timestamp, b.value.v_timestamp.timestamp);
      }
      return Cmp(a.value.v_timestamp.increment, b.value.v_timestamp.increment);
    case 12: {
      const int c = std::strcmp(a.value.v_regex.regex, b.value.v_regex.regex);
      return c < 0 ? -1 : (c > 0 ? 1 : 0);
    }
    default:
      return 0;
  }
}

void ValidateFilter(const bson_t* filter) {
  bson_iter_t it;
  if (!bson_iter_init(&it, filter)) BadValue("malformed filter");
  while (bson_iter_next(&it)) {
    const std::string_view key = bson_iter_key(&it);
    const bson_value_t v = *bson_iter_value(&it);
    if (key == "$and" || key == "$or" || key == "$nor") {
      if (v.value_type != BSON_TYPE_ARRAY) BadValue(std::string(key) + " must be an array");
      BsonView arr = Sub(v);
      bson_iter_t e;
      if (!bson_iter_init(&e, arr.get())) BadValue("malformed array");
      while (bson_iter_next(&e)) {
        if (!BSON_ITER_HOLDS_DOCUMENT(&e)) BadValue(std::string(key) + " entries must be objects");
        BsonView sub = Sub(*bson_iter_value(&e));
        ValidateFilter(sub.get());
      }
    } else if (!key.empty() && key[0] == '$') {
      BadValue("unknown top level operator: " + std::string(key));
    } else if (v.value_type == BSON_TYPE_DOCUMENT) {
      BsonView ops = Sub(v);
      bson_iter_t o;
      if (bson_iter_init(&o, ops.get()) && bson_iter_next(&o) && bson_iter_key(&o)[0] == '$') {
        ValidateOperators(ops.get());
      }
    }
  }
}

bool Matches(const bson_t* doc, const bson_t* filter) {
  bson_iter_t it;
  if (!bson_iter_init(&it, filter)) BadValue("malformed filter");
  while (bson_iter_next(&it)) {
    const std::string_view key = bson_iter_key(&it);
    const bson_value_t v = *bson_iter_value(&it);
    if (key == "$and" || key == "$or" || key == "$nor") {
      BsonView arr = Sub(v);
      bson_iter_t e;
      bool any = false, all = true;
      if (bson_iter_init(&e, arr.get())) {
        while (bson_iter_next(&e)) {
          BsonView sub = Sub(*bson_iter_value(&e));
          const bool m = Matches(doc, sub.get());
          any = any || m;
          all = all && m;
        }
      }
      const bool ok = key == "$and" ? all : (key == "$or" ? any : !any);
      if (!ok) return false;
    } else if (!key.empty() && key[0] == '$') {
      BadValue("unknown top level operator: " + std::string(key));
    } else if (!MatchCondition(doc, key, v)) {
      return false;
    }
  }
  return true;
}

struct Projector::Impl {
  Doc spec;  // owns the bytes the parsed projection points into
  Projection projection;
};

Projector::Projector(const bson_t* spec) {
  auto impl = std::make_shared<Impl>();
  impl->spec = ToDoc(spec);
  BsonView view = View(impl->spec);
  impl->projection = ParseProjection(view.get());
  impl_ = std::move(impl);
}

Doc Projector::Apply(const bson_t* doc) const {
  const Projection& p = impl_->projection;
  bson_t out = BSON_INITIALIZER;
  if (p.inclusion) {
    Include(doc, p.root, doc, &out, true, p.id_excluded);
  } else {
    Exclude(doc, p.root, &out, true, p.id_excluded);
  }
  Doc result = ToDoc(&out);
  bson_destroy(&out);
  return result;
}

Doc Project(const bson_t* doc, const bson_t* spec) {
  const Projection p = ParseProjection(spec);
  bson_t out = BSON_INITIALIZER;
  if (p.inclusion) {
    Include(doc, p.root, doc, &out, true, p.id_excluded);
  } else {
    Exclude(doc, p.root, &out, true, p.id_excluded);
  }
  Doc result = ToDoc(&out);
  bson_destroy(&out);
  return result;
}

Doc AddFields(const bson_t* doc, const bson_t* spec) {
  bson_t out = BSON_INITIALIZER;
  bson_iter_t it;
  if (bson_iter_init(&it, doc)) {
    while (bson_iter_next(&it)) {
      bson_iter_t s;
      if (!bson_iter_init_find(&s, spec, bson_iter_key(&it))) {
        bson_append_iter(&out, bson_iter_key(&it), -1, &it);
      }
    }
  }
  if (bson_iter_init(&it, spec)) {
    while (bson_iter_next(&it)) {
      const char* key = bson_iter_key(&it);
      if (key[0] == '$' || std::strchr(key, '.') != nullptr) {
        bson_destroy(&out);
        BadValue("$addFields supports top-level field names only");
      }
      Val v = Eval(*bson_iter_value(&it), doc);
      if (!v.missing()) {
        const bson_value_t x = v.value();
        bson_append_value(&out, key, -1, &x);
      }
    }
  }
  Doc result = ToDoc(&out);
  bson_destroy(&out);
  return result;
}

void SortDocs(std::vector<Doc>& docs, const bson_t* sort) {
  std::vector<std::pair<std::string, int>> keys;
  bson_iter_t it;
  if (!bson_iter_init(&it, sort)) BadValue("malformed sort");
  while (bson_iter_next(&it)) {
    const int64_t dir = bson_iter_as_int64(&it);
    if (dir != 1 && dir != -1) BadValue("sort direction must be 1 or -1");
    keys.emplace_back(bson_iter_key(&it), static_cast<int>(dir));
  }
  bson_value_t null_value{};
  null_value.value_type = BSON_TYPE_NULL;
  std::stable_sort(docs.begin(), docs.end(), [&](const Doc& a, const Doc& b) {
    BsonView da = View(a), db = View(b);
    for (const auto& [path, dir] : keys) {
      std::vector<bson_value_t> va, vb;
      CollectPath(da.get(), path, va);
      CollectPath(db.get(), path, vb);
      const int c =
          CompareValues(va.empty() ? null_value : va.front(), vb.empty() ? null_value : vb.front());
      if (c != 0) return dir * c < 0;
    }
    return false;
  });
}

}  // namespace airlock::testing::mongodb
