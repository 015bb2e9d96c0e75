// Appends the documents a scoped pipeline returns to Arrow record batches.
//
// Each document is walked once: a top-level field (or, in flatten mode, a
// leaf path) that is a delivered column is converted (bson_cells.h) and
// appended; columns the document lacks become NULL; fields that are not
// delivered are never read. The field order of the previous document is
// remembered, so the usual case costs one name comparison per field.
//
// Masks, whatever the server did (the server-side $project of
// query_builder.h is the first line, this is the second, so a raw value is
// never delivered even if the server ignored the expression):
//   redact: every non-null cell becomes "***";
//   last4:  a string cell is masked again (idempotent on "****1234"); any
//           other cell is masked from its canonical text here;
//   hash:   SHA-256 of the canonical text, here (scope::Masker).
//
// Thread-safety: none; one writer per pull.
#pragma once

#include <bson/bson.h>

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "airlock/cpp/arrow.hpp"
#include "airlock/cpp/masking.hpp"
#include "airlock/cpp/scope.hpp"
#include "airlock/cpp/status.hpp"
#include "bson_cells.h"

namespace airlock::connectors::mongodb {

class RowWriter {
 public:
  RowWriter(const std::vector<SourceColumn>& columns, const scope::ScopePlan& plan, NestedMode mode,
            size_t reserve_rows);

  // Appends `document` as one row. TypeNotRepresentable names the column and
  // the BSON type (never the value).
  Status Append(const bson_t* document);

  size_t rows() const { return rows_; }
  size_t bytes() const { return bytes_; }
  arrow::OwnedSchema MakeSchema() const { return builder_.MakeSchema(); }
  // Hands out the rows appended so far and starts a new batch.
  arrow::OwnedArray Finish();

 private:
  struct Output {
    std::string name;
    Kind kind;
    arrow::Type type;
    std::optional<scope::MaskFunction> mask;
  };
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  Status Walk(const bson_t* document, std::string* prefix, bool top);
  Status Cell(size_t column, const bson_iter_t* it);
  int Lookup(std::string_view name) const;

  std::vector<Output> outputs_;
  std::unordered_map<std::string, int, StringHash, std::equal_to<>> by_name_;
  std::unordered_map<std::string, int, StringHash, std::equal_to<>> prefixes_;  // flatten
  NestedMode mode_;
  arrow::RecordBatchBuilder builder_;
  scope::Masker masker_;
  std::vector<uint8_t> filled_;
  std::vector<int> hint_;  // output column of the i-th top-level field last time
  std::string scratch_;
  std::string masked_;
  std::string path_;
  size_t rows_ = 0;
  size_t bytes_ = 0;
};

}  // namespace airlock::connectors::mongodb
