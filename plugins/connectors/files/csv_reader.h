// An incremental RFC 4180 reader: quoted fields, "" escapes, delimiters and
// line breaks inside quotes, LF / CRLF / CR record ends, an optional UTF-8 BOM.
// Fields are string_views into the file buffer (or, for fields with ""
// escapes, into a per-record scratch buffer): no allocation per field.
// Completely blank lines are skipped.
//
// Thread-safety: none; one reader per pull.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "airlock/cpp/status.hpp"
#include "buffered_file.h"

namespace airlock::connectors::files {

struct CsvRecord {
  std::vector<std::string_view> fields;  // valid until the next Next()/Rewind()
  std::vector<uint8_t> quoted;           // quoted[i]: field i was in quotes
  int64_t line = 0;                      // physical line (1-based) where it starts
};

class CsvReader {
 public:
  // Records with more than `max_fields` fields are refused (InvalidArgument).
  CsvReader(BufferedFile* file, char delimiter, size_t max_fields)
      : file_(file), delimiter_(delimiter), max_fields_(max_fields) {}

  // ok(true): `record` holds the next record; ok(false): end of file.
  // InvalidArgument naming the line for an unterminated quoted field or text
  // after a closing quote; ResourceExhausted for an oversized record.
  Result<bool> Next(CsvRecord* record);

  Status Rewind();

 private:
  enum class Outcome { kRecord, kBlank, kNeedMore, kError };
  struct Span {
    size_t start;
    size_t length;
    bool in_scratch;
    bool quoted;
  };

  Outcome Parse(bool at_eof, size_t* consumed, int64_t* lines, std::string* error);

  BufferedFile* file_;
  char delimiter_;
  size_t max_fields_;
  int64_t line_ = 1;
  bool at_start_ = true;
  std::string scratch_;
  std::vector<Span> spans_;
};

}  // namespace airlock::connectors::files
