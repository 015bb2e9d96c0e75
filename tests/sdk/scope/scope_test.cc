#include "airlock/cpp/scope.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace airlock::scope {
namespace {

using arrow::Field;
using arrow::Type;

std::vector<Field> Columns() {
  return {{"id", Type::kInt64},      {"name", Type::kUtf8},
          {"score", Type::kFloat64}, {"active", Type::kBool},
          {"born", Type::kDate32},   {"seen", Type::kTimestampMicros, "UTC"},
          {"small", Type::kInt32},   {"at", Type::kTime64Micros}};
}

RowCondition Cond(std::string column, std::string op, Json value = Json()) {
  return RowCondition{std::move(column), std::move(op), std::move(value)};
}

// Evaluates one condition against a row whose other cells are NULL.
bool Eval(const RowCondition& c, size_t col, Value v) {
  std::vector<Value> row(Columns().size());
  row[col] = v;
  auto result = RowMatches({c}, Columns(), row);
  EXPECT_TRUE(result.ok()) << result.status().ToString();
  return result.ok() && *result;
}

TEST(ParseTest, Dates) {
  EXPECT_EQ(ParseDate32("1970-01-01"), 0);
  EXPECT_EQ(ParseDate32("2000-03-01"), 11017);
  EXPECT_EQ(ParseDate32("1969-12-31"), -1);
  EXPECT_EQ(ParseDate32("2024-02-29"), 19782);
  EXPECT_FALSE(ParseDate32("2023-02-29"));
  EXPECT_FALSE(ParseDate32("2023-13-01"));
  EXPECT_FALSE(ParseDate32("2023-1-01"));
  EXPECT_FALSE(ParseDate32("2023-01-01 "));
}

TEST(ParseTest, Timestamps) {
  EXPECT_EQ(ParseTimestampMicros("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(ParseTimestampMicros("1970-01-01T00:00:01.5Z"), 1500000);
  EXPECT_EQ(ParseTimestampMicros("1970-01-01t01:00:00+01:00"), 0);
  EXPECT_EQ(ParseTimestampMicros("1969-12-31T23:00:00-01:00"), 0);
  EXPECT_EQ(ParseTimestampMicros("1970-01-02"), 86400LL * 1000000);
  EXPECT_EQ(ParseTimestampMicros("1970-01-01 00:00:00.000001"), 1);
  EXPECT_EQ(ParseTimestampMicros("1970-01-01T00:00:00.1234569Z"), 123456);
  EXPECT_FALSE(ParseTimestampMicros("1970-01-01T00:00:00", /*require_offset=*/true));
  EXPECT_FALSE(ParseTimestampMicros("1970-01-01", /*require_offset=*/true));
  EXPECT_FALSE(ParseTimestampMicros("1970-01-01T24:00:00Z"));
  EXPECT_FALSE(ParseTimestampMicros("1970-01-01T00:00:00+0100"));
  EXPECT_FALSE(ParseTimestampMicros("1970-01-01T00:00:00Zjunk"));
  EXPECT_FALSE(ParseTimestampMicros("1970-01-01T00:00:00."));
}

TEST(ParseTest, Numbers) {
  EXPECT_EQ(ParseInt64("-42"), -42);
  EXPECT_FALSE(ParseInt64("+42"));
  EXPECT_FALSE(ParseInt64("42 "));
  EXPECT_FALSE(ParseInt64("99999999999999999999"));
  EXPECT_EQ(ParseFloat64("1.5e3"), 1500.0);
  EXPECT_EQ(ParseFloat64(".5"), 0.5);
  EXPECT_FALSE(ParseFloat64("nan"));
  EXPECT_FALSE(ParseFloat64("inf"));
  EXPECT_FALSE(ParseFloat64("1.5x"));
  EXPECT_EQ(ParseBool("TRUE"), true);
  EXPECT_EQ(ParseBool("false"), false);
  EXPECT_FALSE(ParseBool("yes"));
}

TEST(RowFilterTest, ComparisonsOnEveryType) {
  EXPECT_TRUE(Eval(Cond("id", "eq", 7), 0, Value::Int64(7)));
  EXPECT_FALSE(Eval(Cond("id", "eq", 7), 0, Value::Int64(8)));
  EXPECT_TRUE(Eval(Cond("id", "ne", 7), 0, Value::Int64(8)));
  EXPECT_TRUE(Eval(Cond("id", "lt", 7), 0, Value::Int64(6)));
  EXPECT_FALSE(Eval(Cond("id", "lt", 7), 0, Value::Int64(7)));
  EXPECT_TRUE(Eval(Cond("id", "le", 7), 0, Value::Int64(7)));
  EXPECT_TRUE(Eval(Cond("id", "gt", 7), 0, Value::Int64(8)));
  EXPECT_TRUE(Eval(Cond("id", "ge", 7), 0, Value::Int64(7)));
  EXPECT_TRUE(Eval(Cond("id", "gt", 6.5), 0, Value::Int64(7)));
  EXPECT_FALSE(Eval(Cond("id", "eq", 6.5), 0, Value::Int64(6)));
  EXPECT_TRUE(Eval(Cond("id", "eq", "7"), 0, Value::Int64(7)));
  EXPECT_TRUE(Eval(Cond("small", "eq", 3), 6, Value::Int64(3)));

  EXPECT_TRUE(Eval(Cond("score", "ge", 2), 2, Value::Float64(2.0)));
  EXPECT_FALSE(Eval(Cond("score", "gt", 2.5), 2, Value::Float64(2.25)));

  EXPECT_TRUE(Eval(Cond("name", "eq", "bob"), 1, Value::String("bob")));
  EXPECT_TRUE(Eval(Cond("name", "lt", "bob"), 1, Value::String("alice")));
  EXPECT_FALSE(Eval(Cond("name", "eq", "Bob"), 1, Value::String("bob")));

  EXPECT_TRUE(Eval(Cond("active", "eq", true), 3, Value::Bool(true)));
  EXPECT_FALSE(Eval(Cond("active", "eq", true), 3, Value::Bool(false)));

  EXPECT_TRUE(Eval(Cond("born", "ge", "2000-01-01"), 4, Value::Date32(*ParseDate32("2001-05-05"))));
  EXPECT_FALSE(
      Eval(Cond("born", "ge", "2000-01-01"), 4, Value::Date32(*ParseDate32("1999-05-05"))));

  const int64_t t = *ParseTimestampMicros("2024-06-01T12:00:00Z");
  EXPECT_TRUE(Eval(Cond("seen", "lt", "2024-06-01T13:00:00+00:00"), 5, Value::Timestamp(t)));
  EXPECT_TRUE(Eval(Cond("seen", "eq", "2024-06-01T14:00:00+02:00"), 5, Value::Timestamp(t)));
  EXPECT_TRUE(Eval(Cond("at", "gt", "08:30:00"), 7, Value::Time64(9LL * 3600 * 1000000)));
}

TEST(RowFilterTest, InAndNotIn) {
  EXPECT_TRUE(Eval(Cond("id", "in", Json::array({3, 1, 2})), 0, Value::Int64(2)));
  EXPECT_FALSE(Eval(Cond("id", "in", Json::array({3, 1, 2})), 0, Value::Int64(4)));
  EXPECT_TRUE(Eval(Cond("id", "not_in", Json::array({3, 1, 2})), 0, Value::Int64(4)));
  EXPECT_TRUE(Eval(Cond("id", "in", Json::array({1.5, 2})), 0, Value::Int64(2)));
  EXPECT_TRUE(Eval(Cond("name", "in", Json::array({"x", "bob"})), 1, Value::String("bob")));
  EXPECT_FALSE(Eval(Cond("name", "not_in", Json::array({"x", "bob"})), 1, Value::String("bob")));
  EXPECT_TRUE(Eval(Cond("active", "in", Json::array({false})), 3, Value::Bool(false)));
  EXPECT_FALSE(Eval(Cond("active", "in", Json::array({false})), 3, Value::Bool(true)));
  EXPECT_TRUE(Eval(Cond("score", "in", Json::array({0.5, 1})), 2, Value::Float64(1.0)));
}

TEST(RowFilterTest, NullFollowsSql) {
  for (const char* op : {"eq", "ne", "lt", "le", "gt", "ge"}) {
    EXPECT_FALSE(Eval(Cond("id", op, 1), 0, Value::Null())) << op;
  }
  EXPECT_FALSE(Eval(Cond("id", "not_in", Json::array({1})), 0, Value::Null()));
  EXPECT_FALSE(Eval(Cond("name", "like", "%"), 1, Value::Null()));
  EXPECT_TRUE(Eval(Cond("id", "is_null"), 0, Value::Null()));
  EXPECT_FALSE(Eval(Cond("id", "is_null"), 0, Value::Int64(1)));
  EXPECT_TRUE(Eval(Cond("id", "not_null"), 0, Value::Int64(1)));
  EXPECT_FALSE(Eval(Cond("id", "not_null"), 0, Value::Null()));
}

TEST(RowFilterTest, Like) {
  auto like = [](const char* pattern, const char* text) {
    return Eval(Cond("name", "like", pattern), 1, Value::String(text));
  };
  EXPECT_TRUE(like("%@example.com", "bob@example.com"));
  EXPECT_FALSE(like("%@example.com", "bob@example.org"));
  EXPECT_TRUE(like("b_b", "bob"));
  EXPECT_FALSE(like("b_b", "boob"));
  EXPECT_TRUE(like("%o%o%", "foo boo"));
  EXPECT_TRUE(like("a%b%c", "aXXbYYbZZc"));
  EXPECT_FALSE(like("a%b%c", "aXXbYYbZZ"));
  EXPECT_TRUE(like("_", "\xC3\xA9"));  // one two-byte character
  EXPECT_FALSE(like("__", "\xC3\xA9"));
  EXPECT_TRUE(like("100\\%", "100%"));
  EXPECT_FALSE(like("100\\%", "1000"));
  EXPECT_TRUE(like("", ""));
  EXPECT_FALSE(like("", "x"));
  EXPECT_FALSE(like("Bob", "bob"));
}

TEST(RowFilterTest, AllConditionsMustHold) {
  auto filter = RowFilter::Compile({Cond("id", "gt", 1), Cond("name", "eq", "bob")}, Columns());
  ASSERT_TRUE(filter.ok());
  std::vector<Value> row(Columns().size());
  row[0] = Value::Int64(2);
  row[1] = Value::String("bob");
  EXPECT_TRUE(filter->Matches(row));
  row[1] = Value::String("eve");
  EXPECT_FALSE(filter->Matches(row));
  EXPECT_EQ(filter->columns(), (std::vector<size_t>{0, 1}));
}

TEST(RowFilterTest, MisTypedCellFailsClosed) {
  // A connector handing a string for an int64 column gets "no match", even for ne.
  EXPECT_FALSE(Eval(Cond("id", "ne", 1), 0, Value::String("1")));
}

TEST(RowFilterTest, CompileErrorsNameTheCondition) {
  auto expect_error = [](const RowCondition& c, const std::string& fragment) {
    auto compiled = RowFilter::Compile({Cond("id", "is_null"), c}, Columns());
    ASSERT_FALSE(compiled.ok());
    EXPECT_EQ(compiled.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(compiled.status().message().find(fragment), std::string::npos)
        << compiled.status().message();
    EXPECT_NE(compiled.status().message().find("row_filter[1]"), std::string::npos);
  };
  expect_error(Cond("missing", "eq", 1), "no column 'missing'");
  expect_error(Cond("id", "between", 1), "unknown op");
  expect_error(Cond("id", "eq", "abc"), "must be a number");
  expect_error(Cond("born", "eq", "yesterday"), "date");
  expect_error(Cond("id", "like", "1%"), "like needs a utf8 column");
  expect_error(Cond("id", "in", 1), "array");
  expect_error(Cond("id", "in", Json::array({1, Json()})), "must not be null");
  expect_error(Cond("active", "eq", 1), "true or false");
}

TEST(MaskTest, ParseRejectsUnknownFunctions) {
  EXPECT_TRUE(ParseMaskFunction("redact").ok());
  EXPECT_TRUE(ParseMaskFunction("last4").ok());
  EXPECT_TRUE(ParseMaskFunction("hash").ok());
  auto bad = ParseMaskFunction("scramble");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
}

TEST(MaskTest, RedactAndLast4) {
  std::string out;
  MaskRedact(&out);
  EXPECT_EQ(out, "***");
  MaskLast4("4111111111111111", &out);
  EXPECT_EQ(out, "****1111");
  MaskLast4("12345", &out);
  EXPECT_EQ(out, "****2345");
  MaskLast4("1234", &out);
  EXPECT_EQ(out, "****");
  MaskLast4("12", &out);
  EXPECT_EQ(out, "****");
  MaskLast4("", &out);
  EXPECT_EQ(out, "****");
  MaskLast4("x\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9", &out);  // keeps whole characters
  EXPECT_EQ(out, "****\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9");
  MaskLast4("\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9", &out);
  EXPECT_EQ(out, "****");
}

TEST(ScopePlanTest, ColumnsMasksAndFilter) {
  DatasetScope scope;
  scope.columns = {"name", "id", "score"};
  scope.masks = {{"name", "hash"}, {"score", "redact"}};
  scope.row_filter = {Cond("active", "eq", true)};
  auto plan = ScopePlan::Make(Columns(), scope);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_EQ(plan->outputs().size(), 3u);
  EXPECT_EQ(plan->outputs()[0].field.name, "id");  // source order
  EXPECT_EQ(plan->outputs()[0].field.type, Type::kInt64);
  EXPECT_FALSE(plan->outputs()[0].mask);
  EXPECT_EQ(plan->outputs()[1].field.name, "name");
  EXPECT_EQ(plan->outputs()[1].mask, MaskFunction::kHash);
  EXPECT_EQ(plan->outputs()[2].field.name, "score");
  EXPECT_EQ(plan->outputs()[2].field.type, Type::kUtf8);  // masked: delivered as utf8
  EXPECT_EQ(plan->outputs()[2].mask, MaskFunction::kRedact);
  EXPECT_EQ(plan->needed(),
            (std::vector<bool>{true, true, true, true, false, false, false, false}));
}

TEST(ScopePlanTest, EmptyScopeDeliversEverything) {
  auto plan = ScopePlan::Make(Columns(), DatasetScope{});
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->outputs().size(), Columns().size());
  EXPECT_TRUE(plan->filter().empty());
}

TEST(ScopePlanTest, FailsClosed) {
  DatasetScope unknown_column;
  unknown_column.columns = {"id", "ssn"};
  auto a = ScopePlan::Make(Columns(), unknown_column);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.status().message().find("'ssn'"), std::string::npos);

  DatasetScope unknown_mask_column;
  unknown_mask_column.masks = {{"Name", "redact"}};
  auto b = ScopePlan::Make(Columns(), unknown_mask_column);
  ASSERT_FALSE(b.ok());
  EXPECT_NE(b.status().message().find("'Name'"), std::string::npos);

  DatasetScope unknown_function;
  unknown_function.masks = {{"name", "rot13"}};
  auto c = ScopePlan::Make(Columns(), unknown_function);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find("rot13"), std::string::npos);
}

TEST(ValueTest, CanonicalText) {
  std::string out;
  AppendText(Value::Int64(-12), &out);
  out += "|";
  AppendText(Value::Float64(0.1), &out);
  out += "|";
  AppendText(Value::Bool(true), &out);
  out += "|";
  AppendText(Value::Date32(0), &out);
  out += "|";
  AppendText(Value::Timestamp(1500000), &out);
  EXPECT_EQ(out, "-12|0.1|true|1970-01-01|1970-01-01 00:00:01.500000+00");
}

TEST(ValueTest, ReadsBatchCells) {
  arrow::RecordBatchBuilder builder({{"a", Type::kInt64}, {"b", Type::kUtf8}}, 2);
  builder.AppendInt64(0, 5);
  builder.AppendString(1, "x");
  builder.AppendNull(0);
  builder.AppendString(1, "y");
  auto schema = builder.MakeSchema();
  auto array = builder.Finish();
  auto view = arrow::BatchView::Make(*schema.get(), *array.get());
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(ValueAt(*view, 0, 0).i, 5);
  EXPECT_TRUE(ValueAt(*view, 0, 1).is_null());
  EXPECT_EQ(ValueAt(*view, 1, 1).s, "y");
}

}  // namespace
}  // namespace airlock::scope
