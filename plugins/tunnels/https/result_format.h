// How a query result is written in each format, as a sequence of text pieces:
// Begin (after the schema), one row at a time, then End on success or
// Failed when the result breaks off after the response has started.
//
// JSON: {"columns":[...],"rows":[[...],...],"row_count":N} on success; a
//   failure after streaming began appends "error" and "message" members:
//   {"columns":...,"rows":[...],"row_count":N,"error":"<code>","message":"..."}
//   so the document stays valid and a client only checks for "error".
// CSV:  a header record, then one record per row (see csv_rows.h). A failure
//   after streaming began writes the line
//     #airlock-error,<code>,<message>
//   and the response is cut off without the terminating chunk, so every HTTP
//   client sees an incomplete body; only complete results carry the
//   Airlock-Row-Count trailer.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "airlock/cpp/arrow.hpp"
#include "http_util.h"

namespace airlock::tunnels::https {

class ResultEncoder {
 public:
  virtual ~ResultEncoder() = default;

  virtual std::string_view content_type() const = 0;
  // The text before the first row.
  virtual std::string Begin(const std::vector<arrow::Field>& fields) = 0;
  // Appends one row, with whatever separates it from the previous one.
  virtual void AppendRow(std::string& out, const arrow::BatchView& view, size_t row) = 0;
  // The text after the last row of a complete result of `rows` rows.
  virtual std::string End(uint64_t rows) = 0;
  // The text that ends a result that failed after `rows` rows were sent.
  virtual std::string Failed(uint64_t rows, std::string_view code, std::string_view message) = 0;
  // True when a failed stream must also be cut off (no terminating chunk).
  virtual bool truncate_on_failure() const = 0;
};

std::unique_ptr<ResultEncoder> MakeResultEncoder(ResultFormat format);

// The trailer (chunked) or header (otherwise) giving the number of rows of a
// complete result.
inline constexpr char kRowCountField[] = "Airlock-Row-Count";

}  // namespace airlock::tunnels::https
