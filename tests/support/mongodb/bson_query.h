// The query language subset the MongoDB test server evaluates, on raw BSON:
// filters (find and $match), projections (find and $project, with the
// aggregation expressions the connector emits) and sort.
//
// Supported, with MongoDB's semantics where they matter for the tests:
//  - filter: implicit equality, $eq $ne $gt $gte $lt $lte $in $nin $exists
//    $regex (+$options i/m/s/x via std::regex; `\A` and `\z` map to ^ and $)
//    $not, and the top-level $and $or $nor; dotted paths descend into
//    sub-documents and into arrays of documents; an array field matches when
//    the array or any element does; {$eq: null} matches a missing field;
//    comparisons are type-bracketed (numbers only compare with numbers, and
//    int32/int64/double/Decimal128 compare by numeric value).
//  - projection: inclusion (dotted paths too), exclusion, _id handling and
//    computed fields from expressions: field paths, $literal, $cond, $ifNull,
//    $eq $ne $gt $gte $lt $lte, $type, $strLenCP, $substrCP, $concat,
//    $add, $subtract, $toString (strings and numbers).
//  - anything else is refused with the server's error code (2 BadValue) so a
//    test never passes because an operator was silently ignored.
//
// Errors are thrown as CommandError and turned into {ok: 0} replies by the
// server. Test code only; not hardened beyond the server's message bound.
#pragma once

#include <bson/bson.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace airlock::testing::mongodb {

// A command failure as the server reports it: {ok:0, errmsg, code, codeName}.
struct CommandError : std::runtime_error {
  CommandError(int32_t c, std::string name, const std::string& message)
      : std::runtime_error(message), code(c), code_name(std::move(name)) {}
  int32_t code;
  std::string code_name;
};

[[noreturn]] void BadValue(const std::string& message);

// An owned BSON document (raw bytes).
using Doc = std::string;

// A read-only bson_t over borrowed bytes. A bson_t made by bson_init_static
// points into itself, so it must never be copied; this wrapper re-initialises
// it instead, which makes it safe to return and store by value.
class BsonView {
 public:
  BsonView() { Init(nullptr, 0); }
  BsonView(const uint8_t* data, size_t length) { Init(data, length); }
  BsonView(const BsonView& other) { Init(other.data_, other.length_); }
  BsonView& operator=(const BsonView& other) {
    Init(other.data_, other.length_);
    return *this;
  }
  const bson_t* get() const { return &b_; }
  bool ok() const { return ok_; }

 private:
  void Init(const uint8_t* data, size_t length) {
    static const uint8_t kEmpty[5] = {5, 0, 0, 0, 0};
    data_ = data != nullptr ? data : kEmpty;
    length_ = data != nullptr ? length : sizeof kEmpty;
    ok_ = bson_init_static(&b_, data_, length_);
    if (!ok_) bson_init_static(&b_, kEmpty, sizeof kEmpty);
  }
  const uint8_t* data_ = nullptr;
  size_t length_ = 0;
  bool ok_ = false;
  bson_t b_;
};

inline BsonView View(const Doc& doc) {
  return BsonView(reinterpret_cast<const uint8_t*>(doc.data()), doc.size());
}
inline Doc ToDoc(const bson_t* b) {
  return Doc(reinterpret_cast<const char*>(bson_get_data(b)), b->len);
}

// -1, 0, 1 in MongoDB's cross-type order (missing values are not compared here).
int CompareValues(const bson_value_t& a, const bson_value_t& b);

// True when `doc` satisfies `filter` (a filter document).
bool Matches(const bson_t* doc, const bson_t* filter);

// Throws BadValue for operators outside the subset, so a bad filter fails the
// command up front even on an empty collection.
void ValidateFilter(const bson_t* filter);

// Applies a find projection or a $project specification to `doc`.
Doc Project(const bson_t* doc, const bson_t* spec);

// A projection parsed once (the specification is copied), applied to many
// documents. Throws CommandError for a bad specification.
class Projector {
 public:
  explicit Projector(const bson_t* spec);
  Doc Apply(const bson_t* doc) const;

 private:
  struct Impl;
  std::shared_ptr<const Impl> impl_;
};

// Applies $addFields: computed fields appended (or replaced at the top level).
Doc AddFields(const bson_t* doc, const bson_t* spec);

// Sorts documents by a sort specification ({field: 1|-1, ...}); stable.
void SortDocs(std::vector<Doc>& docs, const bson_t* sort);

}  // namespace airlock::testing::mongodb
