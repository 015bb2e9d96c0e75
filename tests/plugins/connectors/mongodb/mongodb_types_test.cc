// Type mapping of the mongodb connector, through the real libmongoc driver
// against the wire-protocol test server (tests/support/mongodb), which keeps
// BSON types bit for bit: int32, int64, double and Decimal128 must arrive as
// what they are, never as each other.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>

#include "tests/plugins/connectors/mongodb/mongo_fixture.h"

namespace airlock::mongo_test {
namespace {

using ::testing::ElementsAre;

class MongoTypesTest : public MongoFixture {};

TEST_F(MongoTypesTest, EveryTypeWithEdgeValues) {
  Seed("t", {R"({"_id": {"$oid": "0123456789abcdef01234567"}, "i32": {"$numberInt": "-2147483648"},
            "i64": {"$numberLong": "-9223372036854775808"}, "dbl": {"$numberDouble": "-0.0"},
            "dec": {"$numberDecimal": "1.10"}, "flag": true, "s": "",
            "when": {"$date": {"$numberLong": "-1"}},
            "bin": {"$binary": {"base64": "AAEC/w==", "subType": "00"}}, "nothing": null,
            "doc": {"a": {"$numberLong": "1"}, "b": [1, "x"]}, "arr": [{"$numberInt": "1"}, 2.5]})",
             R"({"_id": {"$oid": "ffffffffffffffffffffffff"}, "i32": {"$numberInt": "2147483647"},
            "i64": {"$numberLong": "9223372036854775807"},
            "dbl": {"$numberDouble": "1.7976931348623157e+308"},
            "dec": {"$numberDecimal": "9.999999999999999999999999999999999E+6144"},
            "flag": false, "s": "h\u00e9llo \u2603 \ud83d\ude00",
            "when": {"$date": {"$numberLong": "1700000000123"}},
            "bin": {"$binary": {"base64": "", "subType": "04"}}, "nothing": null,
            "doc": {}, "arr": []})",
             R"({"_id": {"$oid": "000000000000000000000001"}, "i32": {"$numberInt": "0"},
            "i64": {"$numberLong": "5"}, "dbl": {"$numberDouble": "NaN"},
            "dec": {"$numberDecimal": "-0"}, "s": "line\nbreak\u0000nul",
            "when": {"$date": {"$numberLong": "0"}}, "dbl2": {"$numberDouble": "0.1"}})"});
  Collector sink;
  PullResult r = Pull(Config({{"batch_rows", 2}}), "t", Json::object(), sink);
  ASSERT_EQ(r.status, AIRLOCK_OK) << r.message;
  ASSERT_THAT(sink.names(), ElementsAre("_id", "i32", "i64", "dbl", "dec", "flag", "s", "when",
                                        "bin", "nothing", "doc", "arr", "dbl2"));
  EXPECT_EQ(sink.field("_id")->type, arrow::Type::kUtf8);
  EXPECT_EQ(sink.field("i32")->type, arrow::Type::kInt32);
  EXPECT_EQ(sink.field("i64")->type, arrow::Type::kInt64);
  EXPECT_EQ(sink.field("dbl")->type, arrow::Type::kFloat64);
  EXPECT_EQ(sink.field("dec")->type, arrow::Type::kUtf8);
  EXPECT_EQ(sink.field("flag")->type, arrow::Type::kBool);
  EXPECT_EQ(sink.field("when")->type, arrow::Type::kTimestampMicros);
  EXPECT_EQ(sink.field("when")->timezone, "UTC");
  EXPECT_EQ(sink.field("bin")->type, arrow::Type::kBinary);
  EXPECT_EQ(sink.field("nothing")->type, arrow::Type::kUtf8);
  EXPECT_EQ(sink.field("doc")->type, arrow::Type::kUtf8);
  EXPECT_THAT(sink.batch_rows, ElementsAre(2, 1));

  EXPECT_THAT(sink.column("_id"),
              ElementsAre("0123456789abcdef01234567", "ffffffffffffffffffffffff",
                          "000000000000000000000001"));
  EXPECT_THAT(sink.column("i32"), ElementsAre(-2147483648LL, 2147483647, 0));
  EXPECT_THAT(sink.column("i64"), ElementsAre(std::numeric_limits<int64_t>::min(),
                                              std::numeric_limits<int64_t>::max(), 5));
  const auto dbl = sink.column("dbl");
  EXPECT_TRUE(dbl[0].is_number_float() && dbl[0].get<double>() == 0.0 &&
              std::signbit(dbl[0].get<double>()));
  EXPECT_EQ(dbl[1], 1.7976931348623157e+308);
  EXPECT_EQ(dbl[2], "NaN");
  EXPECT_THAT(sink.column("dbl2"), ElementsAre(Json(), Json(), 0.1));
  EXPECT_THAT(sink.column("dec"),
              ElementsAre("1.10", "9.999999999999999999999999999999999E+6144", "-0"));
  EXPECT_THAT(sink.column("flag"), ElementsAre(true, false, Json()));
  EXPECT_THAT(sink.column("s"),
              ElementsAre("", "h\u00e9llo \u2603 \U0001F600", std::string("line\nbreak\0nul", 14)));
  EXPECT_THAT(sink.column("when"), ElementsAre(-1000, 1700000000123000LL, 0));
  EXPECT_THAT(sink.column("bin"), ElementsAre(Json::array({0, 1, 2, 255}), Json::array(), Json()));
  EXPECT_THAT(sink.column("nothing"), ElementsAre(Json(), Json(), Json()));
  EXPECT_THAT(sink.column("doc"), ElementsAre(R"({"a":1,"b":[1,"x"]})", "{}", Json()));
  EXPECT_THAT(sink.column("arr"), ElementsAre("[1,2.5]", "[]", Json()));
}

TEST_F(MongoTypesTest, NumericTypesAreNeverConfused) {
  // A small int64 stays int64, 2^40 stays an integer, 7.0 stays a double, a
  // decimal keeps its trailing zeros: each column has one BSON type.
  Seed("n", {R"({"small64": {"$numberLong": "1"}, "big64": {"$numberLong": "1099511627776"},
                 "seven": {"$numberDouble": "7.0"}, "i": {"$numberInt": "7"},
                 "d": {"$numberDecimal": "7.000"}})"});
  Collector sink;
  PullResult r = Pull(Config(), "n", {{"columns", {"small64", "big64", "seven", "i", "d"}}}, sink);
  ASSERT_EQ(r.status, AIRLOCK_OK) << r.message;
  EXPECT_EQ(sink.field("small64")->type, arrow::Type::kInt64);
  EXPECT_EQ(sink.field("big64")->type, arrow::Type::kInt64);
  EXPECT_EQ(sink.field("seven")->type, arrow::Type::kFloat64);
  EXPECT_EQ(sink.field("i")->type, arrow::Type::kInt32);
  EXPECT_EQ(sink.field("d")->type, arrow::Type::kUtf8);
  ASSERT_EQ(sink.rows.size(), 1u);
  EXPECT_EQ(sink.rows[0][0], 1);
  EXPECT_EQ(sink.rows[0][1], 1099511627776LL);
  EXPECT_TRUE(sink.rows[0][2].is_number_float());
  EXPECT_EQ(sink.rows[0][2], 7.0);
  EXPECT_EQ(sink.rows[0][3], 7);
  EXPECT_EQ(sink.rows[0][4], "7.000");
}

TEST_F(MongoTypesTest, InferenceWidensAsDocumented) {
  Seed("w", {R"({"a": {"$numberInt": "1"}, "b": {"$numberInt": "1"}, "c": "x", "d": null,
                 "e": {"k": 1}})",
             R"({"a": {"$numberLong": "3000000000"}, "b": {"$numberDouble": "2.5"},
                 "c": {"$numberLong": "42"}, "d": null, "e": [1]})",
             R"({"c": {"$date": {"$numberLong": "86400000"}}})"});
  Collector sink;
  PullResult r = Pull(Config(), "w", {{"columns", {"a", "b", "c", "d", "e"}}}, sink);
  ASSERT_EQ(r.status, AIRLOCK_OK) << r.message;
  EXPECT_EQ(sink.field("a")->type, arrow::Type::kInt64);    // int32 + int64
  EXPECT_EQ(sink.field("b")->type, arrow::Type::kFloat64);  // int + double
  EXPECT_EQ(sink.field("c")->type, arrow::Type::kUtf8);     // conflicting -> text
  EXPECT_EQ(sink.field("d")->type, arrow::Type::kUtf8);     // null only
  EXPECT_EQ(sink.field("e")->type, arrow::Type::kUtf8);     // document + array -> json
  EXPECT_THAT(sink.column("a"), ElementsAre(1, 3000000000LL, Json()));
  EXPECT_THAT(sink.column("b"), ElementsAre(1.0, 2.5, Json()));
  EXPECT_THAT(sink.column("c"), ElementsAre("x", "42", "1970-01-02T00:00:00.000Z"));
  EXPECT_THAT(sink.column("e"), ElementsAre(R"({"k":1})", "[1]", Json()));
}

TEST_F(MongoTypesTest, SampleSizeBoundsInference) {
  // The first document decides with infer_documents 1; the second then does
  // not fit the inferred int32 column and the pull says so.
  Seed("s", {R"({"v": {"$numberInt": "1"}})", R"({"v": "text"})"});
  Collector sink;
  PullResult r = Pull(Config({{"infer_documents", 1}}), "s", Json::object(), sink);
  EXPECT_EQ(r.status, AIRLOCK_ERR_TYPE_NOT_REPRESENTABLE) << r.message;
  EXPECT_NE(r.message.find("'v'"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("string"), std::string::npos) << r.message;
  EXPECT_EQ(r.message.find("text"), std::string::npos) << "the value leaked: " << r.message;
}

TEST_F(MongoTypesTest, DeclaredSchemaIsUsedAndEnforced) {
  Seed("d", {R"({"id": {"$numberInt": "1"}, "price": {"$numberInt": "3"}, "note": "a",
                 "extra": "never read"})",
             R"({"id": {"$numberLong": "2"}, "price": {"$numberDouble": "2.5"}})"});
  const Json config = Config({{"datasets",
                               {{{"name", "d"},
                                 {"columns",
                                  {{{"name", "id"}, {"type", "int64"}},
                                   {{"name", "price"}, {"type", "float64"}},
                                   {{"name", "note"}, {"type", "utf8"}},
                                   {{"name", "missing"}, {"type", "timestamp"}}}}}}}});
  Collector sink;
  PullResult r = Pull(config, "d", Json::object(), sink);
  ASSERT_EQ(r.status, AIRLOCK_OK) << r.message;
  EXPECT_THAT(sink.names(), ElementsAre("id", "price", "note", "missing"));
  EXPECT_THAT(sink.column("id"), ElementsAre(1, 2));
  EXPECT_THAT(sink.column("price"), ElementsAre(3.0, 2.5));
  EXPECT_THAT(sink.column("missing"), ElementsAre(Json(), Json()));

  // A declared int64 column meeting a string fails, naming the column only.
  Seed("bad", {R"({"id": "secret-looking-value"})"});
  const Json bad = Config(
      {{"datasets", {{{"name", "bad"}, {"columns", {{{"name", "id"}, {"type", "int64"}}}}}}}});
  Collector sink2;
  r = Pull(bad, "bad", Json::object(), sink2);
  EXPECT_EQ(r.status, AIRLOCK_ERR_TYPE_NOT_REPRESENTABLE) << r.message;
  EXPECT_EQ(r.message.find("secret-looking-value"), std::string::npos) << r.message;
}

TEST_F(MongoTypesTest, UnrepresentableValuesAreRefusedWithTheirCode) {
  // A BSON regex has no column type unless the column is declared json.
  Seed("re", {R"({"r": {"$regularExpression": {"pattern": "^a", "options": "i"}}})"});
  Collector sink;
  PullResult r = Pull(Config(), "re", Json::object(), sink);
  EXPECT_EQ(r.status, AIRLOCK_ERR_TYPE_NOT_REPRESENTABLE) << r.message;
  EXPECT_NE(r.message.find("regex"), std::string::npos) << r.message;

  const Json as_json =
      Config({{"datasets", {{{"name", "re"}, {"columns", {{{"name", "r"}, {"type", "json"}}}}}}}});
  Collector sink2;
  r = Pull(as_json, "re", Json::object(), sink2);
  ASSERT_EQ(r.status, AIRLOCK_OK) << r.message;
  EXPECT_THAT(sink2.column("r"),
              ElementsAre(R"({"$regularExpression":{"pattern":"^a","options":"i"}})"));

  // A date whose microseconds overflow int64.
  Seed("far", {R"({"when": {"$date": {"$numberLong": "9223372036854775807"}}})"});
  Collector sink3;
  r = Pull(Config(), "far", Json::object(), sink3);
  EXPECT_EQ(r.status, AIRLOCK_ERR_TYPE_NOT_REPRESENTABLE) << r.message;

  // An int64 beyond 2^53 in a float64 column would not round-trip.
  Seed("wide", {R"({"x": 1.5})", R"({"x": {"$numberLong": "9007199254740993"}})"});
  Collector sink4;
  r = Pull(Config({{"infer_documents", 1}}), "wide", Json::object(), sink4);
  EXPECT_EQ(r.status, AIRLOCK_ERR_TYPE_NOT_REPRESENTABLE) << r.message;
}

TEST_F(MongoTypesTest, FlattenModeMakesDottedColumns) {
  Seed("f", {R"({"name": "a", "address": {"city": "Oslo", "geo": {"lat": 59.9}}, "tags": ["x"]})",
             R"({"name": "b", "address": {"city": "Rome"}})"});
  Collector sink;
  PullResult r = Pull(Config({{"nested", "flatten"}}), "f",
                      {{"columns", {"name", "address.city", "address.geo.lat", "tags"}}}, sink);
  ASSERT_EQ(r.status, AIRLOCK_OK) << r.message;
  EXPECT_THAT(sink.names(), ElementsAre("name", "address.city", "address.geo.lat", "tags"));
  EXPECT_EQ(sink.field("address.geo.lat")->type, arrow::Type::kFloat64);
  EXPECT_THAT(sink.column("address.city"), ElementsAre("Oslo", "Rome"));
  EXPECT_THAT(sink.column("address.geo.lat"), ElementsAre(59.9, Json()));
  EXPECT_THAT(sink.column("tags"), ElementsAre(R"(["x"])", Json()));
}

TEST_F(MongoTypesTest, DriverInsertedDocumentsKeepTheirTypes) {
  // Documents written through libmongoc's own insert path (OP_MSG document
  // sequence) come back with the same BSON types.
  mongoc_init();
  mongoc_client_t* client = mongoc_client_new(server_->uri().c_str());
  ASSERT_NE(client, nullptr);
  mongoc_collection_t* coll = mongoc_client_get_collection(client, "db", "ins");
  bson_t* a = BCON_NEW("i32", BCON_INT32(1), "i64", BCON_INT64(2), "d", BCON_DOUBLE(3.0));
  bson_t* b = BCON_NEW("i32", BCON_INT32(4), "i64", BCON_INT64(5), "d", BCON_DOUBLE(6.0));
  const bson_t* docs[] = {a, b};
  bson_error_t error;
  ASSERT_TRUE(mongoc_collection_insert_many(coll, docs, 2, nullptr, nullptr, &error))
      << error.message;
  bson_destroy(a);
  bson_destroy(b);
  mongoc_collection_destroy(coll);
  mongoc_client_destroy(client);

  Collector sink;
  PullResult r = Pull(Config(), "ins", {{"columns", {"i32", "i64", "d"}}}, sink);
  ASSERT_EQ(r.status, AIRLOCK_OK) << r.message;
  EXPECT_EQ(sink.field("i32")->type, arrow::Type::kInt32);
  EXPECT_EQ(sink.field("i64")->type, arrow::Type::kInt64);
  EXPECT_EQ(sink.field("d")->type, arrow::Type::kFloat64);
  EXPECT_THAT(sink.column("i64"), ElementsAre(2, 5));
}

}  // namespace
}  // namespace airlock::mongo_test
