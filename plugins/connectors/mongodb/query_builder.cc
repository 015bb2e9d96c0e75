#include "query_builder.h"

#include <cstring>

namespace airlock::connectors::mongodb {
namespace {

std::string Key(size_t i) {
  return std::to_string(i);
}

// Appends `value` as the BSON literal a `kind` column compares with.
Status AppendLiteral(bson_t* parent, const char* key, const Json& value, const SourceColumn& column,
                     const std::string& where) {
  scope::detail::Literal lit;
  AIRLOCK_RETURN_IF_ERROR(
      scope::detail::ConvertLiteral(value, ArrowTypeOf(column.kind), where, &lit));
  switch (column.kind) {
    case Kind::kInt32:
    case Kind::kInt64:
    case Kind::kDouble:
      if (lit.domain == scope::detail::Domain::kInt) {
        bson_append_int64(parent, key, -1, lit.i);
      } else {
        bson_append_double(parent, key, -1, lit.d);
      }
      return Status::Ok();
    case Kind::kBool:
      bson_append_bool(parent, key, -1, lit.b);
      return Status::Ok();
    case Kind::kString:
      bson_append_utf8(parent, key, -1, lit.s.data(), static_cast<int>(lit.s.size()));
      return Status::Ok();
    case Kind::kObjectId: {
      if (!bson_oid_is_valid(lit.s.c_str(), lit.s.size()) || lit.s.size() != 24) {
        return Status::InvalidArgument(where +
                                       ": the column holds ObjectIds; the value must be "
                                       "24 hexadecimal digits");
      }
      bson_oid_t oid;
      bson_oid_init_from_string(&oid, lit.s.c_str());
      bson_append_oid(parent, key, -1, &oid);
      return Status::Ok();
    }
    case Kind::kDecimal: {
      bson_decimal128_t d;
      if (lit.s.find('\0') != std::string::npos ||
          !bson_decimal128_from_string(lit.s.c_str(), &d)) {
        return Status::InvalidArgument(where +
                                       ": the column holds decimals; the value must be a "
                                       "decimal number");
      }
      bson_append_decimal128(parent, key, -1, &d);
      return Status::Ok();
    }
    case Kind::kDate:
      if (lit.i % 1000 != 0) {
        return Status::InvalidArgument(where +
                                       ": MongoDB dates have millisecond precision; the value "
                                       "has a finer fraction");
      }
      bson_append_date_time(parent, key, -1, lit.i / 1000);
      return Status::Ok();
    case Kind::kBinary:
    case Kind::kJson:
    case Kind::kMixed:
      break;
  }
  return Status::InvalidArgument(where + ": a " + std::string(KindName(column.kind)) +
                                 " column can only be filtered with is_null or not_null");
}

const SourceColumn* FindColumn(const std::vector<SourceColumn>& columns, const std::string& name) {
  for (const auto& c : columns) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

// {<column>: {<operator>: ...}} as element `index` of the $and array.
Status AppendClause(bson_t* and_array, size_t index, const RowCondition& rc,
                    const SourceColumn& column) {
  const std::string where = "row_filter[" + Key(index) + "] (" + rc.column + ")";
  const std::string idx = Key(index);
  bson_t clause, ops;
  bson_append_document_begin(and_array, idx.c_str(), -1, &clause);
  bson_append_document_begin(&clause, column.name.c_str(), -1, &ops);
  Status status = Status::Ok();
  auto list = [&](const char* op, bool with_null) {
    bson_t array;
    bson_append_array_begin(&ops, op, -1, &array);
    size_t n = 0;
    for (const Json& v : rc.value) {
      status = AppendLiteral(&array, Key(n).c_str(), v, column, where + "[" + Key(n) + "]");
      if (!status.ok()) break;
      ++n;
    }
    if (with_null) bson_append_null(&array, Key(n).c_str(), -1);
    bson_append_array_end(&ops, &array);
  };
  const std::string& op = rc.op;
  if (op == "eq" || op == "lt" || op == "le" || op == "gt" || op == "ge") {
    const char* mongo_op = op == "eq"   ? "$eq"
                           : op == "lt" ? "$lt"
                           : op == "le" ? "$lte"
                           : op == "gt" ? "$gt"
                                        : "$gte";
    status = AppendLiteral(&ops, mongo_op, rc.value, column, where);
  } else if (op == "ne") {
    bson_t array;
    bson_append_array_begin(&ops, "$nin", -1, &array);
    status = AppendLiteral(&array, "0", rc.value, column, where);
    bson_append_null(&array, "1", -1);
    bson_append_array_end(&ops, &array);
  } else if (op == "in") {
    list("$in", false);
  } else if (op == "not_in") {
    list("$nin", true);
  } else if (op == "is_null") {
    bson_append_null(&ops, "$eq", -1);
  } else if (op == "not_null") {
    bson_append_null(&ops, "$ne", -1);
  } else if (op == "like") {
    if (column.kind != Kind::kString || !rc.value.is_string()) {
      status = Status::InvalidArgument(where + ": like needs a utf8 column and a string pattern");
    } else {
      const std::string regex = LikeToRegex(rc.value.get_ref<const std::string&>());
      bson_append_utf8(&ops, "$regex", -1, regex.data(), static_cast<int>(regex.size()));
    }
  } else {
    status = Status::InvalidArgument(where + ": unknown op '" + op + "'");
  }
  bson_append_document_end(&clause, &ops);
  bson_append_document_end(and_array, &clause);
  return status;
}

// "$<path>" as an aggregation field path.
std::string FieldPath(const std::string& name) {
  return "$" + name;
}

void AppendRedact(bson_t* project, const std::string& name) {
  const std::string path = FieldPath(name);
  bson_t expr, cond, eq, if_null, literal;
  bson_append_document_begin(project, name.c_str(), -1, &expr);
  bson_append_array_begin(&expr, "$cond", -1, &cond);
  bson_append_document_begin(&cond, "0", -1, &eq);
  bson_t eq_args;
  bson_append_array_begin(&eq, "$eq", -1, &eq_args);
  bson_append_document_begin(&eq_args, "0", -1, &if_null);
  bson_t if_null_args;
  bson_append_array_begin(&if_null, "$ifNull", -1, &if_null_args);
  bson_append_utf8(&if_null_args, "0", -1, path.c_str(), -1);
  bson_append_null(&if_null_args, "1", -1);
  bson_append_array_end(&if_null, &if_null_args);
  bson_append_document_end(&eq_args, &if_null);
  bson_append_null(&eq_args, "1", -1);
  bson_append_array_end(&eq, &eq_args);
  bson_append_document_end(&cond, &eq);
  bson_append_null(&cond, "1", -1);
  bson_append_document_begin(&cond, "2", -1, &literal);
  bson_append_utf8(&literal, "$literal", -1, "***", 3);
  bson_append_document_end(&cond, &literal);
  bson_append_array_end(&expr, &cond);
  bson_append_document_end(project, &expr);
}

// {$strLenCP: "$c"}
void AppendStrLen(bson_t* parent, const char* key, const std::string& path) {
  bson_t doc;
  bson_append_document_begin(parent, key, -1, &doc);
  bson_append_utf8(&doc, "$strLenCP", -1, path.c_str(), -1);
  bson_append_document_end(parent, &doc);
}

void AppendLast4(bson_t* project, const std::string& name) {
  const std::string path = FieldPath(name);
  bson_t expr, outer;
  bson_append_document_begin(project, name.c_str(), -1, &expr);
  bson_append_array_begin(&expr, "$cond", -1, &outer);
  {  // 0: {$eq: [{$type: "$c"}, "string"]}
    bson_t eq, args, type;
    bson_append_document_begin(&outer, "0", -1, &eq);
    bson_append_array_begin(&eq, "$eq", -1, &args);
    bson_append_document_begin(&args, "0", -1, &type);
    bson_append_utf8(&type, "$type", -1, path.c_str(), -1);
    bson_append_document_end(&args, &type);
    bson_append_utf8(&args, "1", -1, "string", -1);
    bson_append_array_end(&eq, &args);
    bson_append_document_end(&outer, &eq);
  }
  {  // 1: {$cond: [{$gt: [len, 4]}, {$concat: ["****", {$substrCP: ["$c", len - 4, 4]}]}, "****"]}
    bson_t inner_doc, inner;
    bson_append_document_begin(&outer, "1", -1, &inner_doc);
    bson_append_array_begin(&inner_doc, "$cond", -1, &inner);
    bson_t gt, gt_args;
    bson_append_document_begin(&inner, "0", -1, &gt);
    bson_append_array_begin(&gt, "$gt", -1, &gt_args);
    AppendStrLen(&gt_args, "0", path);
    bson_append_int32(&gt_args, "1", -1, 4);
    bson_append_array_end(&gt, &gt_args);
    bson_append_document_end(&inner, &gt);
    bson_t concat, concat_args, substr, substr_args, sub, sub_args;
    bson_append_document_begin(&inner, "1", -1, &concat);
    bson_append_array_begin(&concat, "$concat", -1, &concat_args);
    bson_append_utf8(&concat_args, "0", -1, "****", 4);
    bson_append_document_begin(&concat_args, "1", -1, &substr);
    bson_append_array_begin(&substr, "$substrCP", -1, &substr_args);
    bson_append_utf8(&substr_args, "0", -1, path.c_str(), -1);
    bson_append_document_begin(&substr_args, "1", -1, &sub);
    bson_append_array_begin(&sub, "$subtract", -1, &sub_args);
    AppendStrLen(&sub_args, "0", path);
    bson_append_int32(&sub_args, "1", -1, 4);
    bson_append_array_end(&sub, &sub_args);
    bson_append_document_end(&substr_args, &sub);
    bson_append_int32(&substr_args, "2", -1, 4);
    bson_append_array_end(&substr, &substr_args);
    bson_append_document_end(&concat_args, &substr);
    bson_append_array_end(&concat, &concat_args);
    bson_append_document_end(&inner, &concat);
    bson_t literal;
    bson_append_document_begin(&inner, "2", -1, &literal);
    bson_append_utf8(&literal, "$literal", -1, "****", 4);
    bson_append_document_end(&inner, &literal);
    bson_append_array_end(&inner_doc, &inner);
    bson_append_document_end(&outer, &inner_doc);
  }
  bson_append_utf8(&outer, "2", -1, path.c_str(), -1);  // not a string: as stored
  bson_append_array_end(&expr, &outer);
  bson_append_document_end(project, &expr);
}

}  // namespace

std::string LikeToRegex(std::string_view pattern) {
  std::string out = "^";
  for (size_t i = 0; i < pattern.size(); ++i) {
    char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      c = pattern[++i];
    } else if (c == '%') {
      if (!out.ends_with("[\\s\\S]*")) out.append("[\\s\\S]*");
      continue;
    } else if (c == '_') {
      out.append("[\\s\\S]");
      continue;
    }
    if (std::strchr("\\^$.|?*+()[]{}", c) != nullptr && c != '\0') out.push_back('\\');
    out.push_back(c);
  }
  out.append("\\z");
  return out;
}

Result<BsonPtr> ParsePipeline(const std::string& pipeline_json) {
  BsonPtr array(bson_new());
  if (pipeline_json.empty()) return array;
  const std::string wrapped = "{\"p\":" + pipeline_json + "}";
  bson_error_t error;
  BsonPtr doc(bson_new_from_json(reinterpret_cast<const uint8_t*>(wrapped.data()),
                                 static_cast<ssize_t>(wrapped.size()), &error));
  if (!doc) return Status::InvalidArgument("pipeline is not valid Extended JSON");
  bson_iter_t it;
  if (!bson_iter_init_find(&it, doc.get(), "p") || !BSON_ITER_HOLDS_ARRAY(&it)) {
    return Status::InvalidArgument("pipeline must be an array");
  }
  uint32_t len = 0;
  const uint8_t* data = nullptr;
  bson_iter_array(&it, &len, &data);
  BsonPtr out(bson_new_from_data(data, len));
  if (!out) return Status::InvalidArgument("pipeline is malformed");
  return out;
}

Result<BsonPtr> BuildPullPipeline(const std::string& pipeline_json,
                                  const std::vector<SourceColumn>& columns,
                                  const scope::ScopePlan& plan, const DatasetScope& scope) {
  AIRLOCK_ASSIGN_OR_RETURN(BsonPtr configured, ParsePipeline(pipeline_json));
  BsonPtr pipeline(bson_new());
  size_t stage = 0;
  bson_iter_t it;
  if (bson_iter_init(&it, configured.get())) {
    while (bson_iter_next(&it)) {
      bson_append_iter(pipeline.get(), Key(stage++).c_str(), -1, &it);
    }
  }
  if (!scope.row_filter.empty()) {
    bson_t match_stage, match, and_array;
    bson_append_document_begin(pipeline.get(), Key(stage++).c_str(), -1, &match_stage);
    bson_append_document_begin(&match_stage, "$match", -1, &match);
    bson_append_array_begin(&match, "$and", -1, &and_array);
    Status status = Status::Ok();
    for (size_t i = 0; i < scope.row_filter.size() && status.ok(); ++i) {
      const RowCondition& rc = scope.row_filter[i];
      const SourceColumn* column = FindColumn(columns, rc.column);
      if (column == nullptr) {
        status = Status::InvalidArgument("row_filter names column '" + rc.column +
                                         "' which the dataset does not have");
        break;
      }
      status = AppendClause(&and_array, i, rc, *column);
    }
    bson_append_array_end(&match, &and_array);
    bson_append_document_end(&match_stage, &match);
    bson_append_document_end(pipeline.get(), &match_stage);
    AIRLOCK_RETURN_IF_ERROR(status);
  }
  bson_t project_stage, project;
  bson_append_document_begin(pipeline.get(), Key(stage++).c_str(), -1, &project_stage);
  bson_append_document_begin(&project_stage, "$project", -1, &project);
  bool id_delivered = false;
  for (const scope::OutputColumn& out : plan.outputs()) {
    const std::string& name = columns[out.source].name;
    id_delivered = id_delivered || name == "_id";
    if (out.mask == scope::MaskFunction::kRedact) {
      AppendRedact(&project, name);
    } else if (out.mask == scope::MaskFunction::kLast4) {
      AppendLast4(&project, name);
    } else {
      bson_append_int32(&project, name.c_str(), -1, 1);
    }
  }
  if (!id_delivered) bson_append_int32(&project, "_id", -1, 0);
  if (plan.outputs().empty()) {
    // An exclusion of _id alone would return every other field.
    bson_t literal;
    bson_append_document_begin(&project, "_row", -1, &literal);
    bson_append_bool(&literal, "$literal", -1, true);
    bson_append_document_end(&project, &literal);
  }
  bson_append_document_end(&project_stage, &project);
  bson_append_document_end(pipeline.get(), &project_stage);
  return pipeline;
}

}  // namespace airlock::connectors::mongodb
