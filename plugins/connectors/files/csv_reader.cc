#include "csv_reader.h"

#include <algorithm>
#include <cstring>
#include <string>

namespace airlock::connectors::files {

CsvReader::Outcome CsvReader::Parse(bool at_eof, size_t* consumed, int64_t* lines,
                                    std::string* error) {
  const char* const base = file_->data();
  const char* const end = base + file_->size();
  const char* s = base;
  spans_.clear();
  scratch_.clear();
  int64_t embedded_newlines = 0;

  // A blank line is skipped as a whole.
  if (s < end && (*s == '\n' || *s == '\r')) {
    if (*s == '\r' && s + 1 == end && !at_eof) return Outcome::kNeedMore;
    *consumed = (*s == '\r' && s + 1 < end && s[1] == '\n') ? 2 : 1;
    *lines = 1;
    return Outcome::kBlank;
  }

  // Ends the record at `s` (a delimiter, a line break, or the end of data).
  // Returns kRecord when the record is complete, kNeedMore when a CR sits at
  // the end of the buffer, or nothing (continue with the next field).
  enum class After { kNextField, kRecordEnd, kNeedMore, kError };
  auto after_field = [&]() -> After {
    if (s == end) return at_eof ? After::kRecordEnd : After::kNeedMore;
    const char c = *s;
    if (c == delimiter_) {
      ++s;
      return After::kNextField;
    }
    if (c == '\n') {
      ++s;
      return After::kRecordEnd;
    }
    if (c == '\r') {
      if (s + 1 == end && !at_eof) return After::kNeedMore;
      s += (s + 1 < end && s[1] == '\n') ? 2 : 1;
      return After::kRecordEnd;
    }
    return After::kError;
  };

  for (;;) {
    if (s == end) {
      if (!at_eof) return Outcome::kNeedMore;
      // End of file right after a delimiter: a final empty field.
      spans_.push_back({static_cast<size_t>(s - base), 0, false, false});
      break;
    }
    if (*s == '"') {
      const char* q = s + 1;
      const char* field_start = q;
      bool escaped = false;
      size_t scratch_start = 0;
      for (;;) {
        const char* quote = static_cast<const char*>(std::memchr(q, '"', end - q));
        if (quote == nullptr || (quote + 1 == end && !at_eof)) {
          if (!at_eof) return Outcome::kNeedMore;
          *error = "unterminated quoted field";
          return Outcome::kError;
        }
        if (quote + 1 < end && quote[1] == '"') {  // "" inside quotes: one quote
          if (!escaped) {
            escaped = true;
            scratch_start = scratch_.size();
          }
          scratch_.append(q, quote + 1);
          q = quote + 2;
          continue;
        }
        embedded_newlines += std::count(s + 1, quote, '\n');
        if (escaped) {
          scratch_.append(q, quote);
          spans_.push_back({scratch_start, scratch_.size() - scratch_start, true, true});
        } else {
          spans_.push_back({static_cast<size_t>(field_start - base),
                            static_cast<size_t>(quote - field_start), false, true});
        }
        s = quote + 1;
        break;
      }
    } else {
      const char* f = s;
      const char delimiter = delimiter_;
      while (f < end && *f != delimiter && *f != '\n' && *f != '\r') ++f;
      if (f == end && !at_eof) return Outcome::kNeedMore;
      spans_.push_back({static_cast<size_t>(s - base), static_cast<size_t>(f - s), false, false});
      s = f;
    }
    const After next = after_field();
    if (next == After::kNextField) {
      if (spans_.size() >= max_fields_) {
        *error = "more than " + std::to_string(max_fields_) + " fields";
        return Outcome::kError;
      }
      continue;
    }
    if (next == After::kNeedMore) return Outcome::kNeedMore;
    if (next == After::kError) {
      *error = "unexpected character after a closing quote";
      return Outcome::kError;
    }
    break;
  }
  *consumed = static_cast<size_t>(s - base);
  *lines = 1 + embedded_newlines;
  return Outcome::kRecord;
}

Result<bool> CsvReader::Next(CsvRecord* record) {
  for (;;) {
    if (at_start_) {
      if (file_->size() < 3 && !file_->eof()) {
        AIRLOCK_ASSIGN_OR_RETURN(size_t n, file_->Fill());
        if (n != 0) continue;
      }
      if (file_->size() >= 3 && std::memcmp(file_->data(), "\xEF\xBB\xBF", 3) == 0) {
        file_->Consume(3);
      }
      at_start_ = false;
    }
    if (file_->size() == 0) {
      if (file_->eof()) return false;
      AIRLOCK_ASSIGN_OR_RETURN(size_t n, file_->Fill());
      (void)n;
      continue;
    }
    size_t consumed = 0;
    int64_t lines = 0;
    std::string error;
    switch (Parse(file_->eof(), &consumed, &lines, &error)) {
      case Outcome::kNeedMore: {
        auto filled = file_->Fill();
        if (!filled.ok()) return filled.status().WithContext("line " + std::to_string(line_));
        continue;
      }
      case Outcome::kError:
        return Status::InvalidArgument("line " + std::to_string(line_) + ": " + error);
      case Outcome::kBlank:
        file_->Consume(consumed);
        line_ += lines;
        continue;
      case Outcome::kRecord: {
        const char* base = file_->data();
        record->fields.clear();
        record->quoted.clear();
        for (const Span& span : spans_) {
          const char* start = span.in_scratch ? scratch_.data() + span.start : base + span.start;
          record->fields.emplace_back(start, span.length);
          record->quoted.push_back(span.quoted ? 1 : 0);
        }
        record->line = line_;
        line_ += lines;
        file_->Consume(consumed);  // views stay valid: Consume moves no bytes
        return true;
      }
    }
  }
}

Status CsvReader::Rewind() {
  AIRLOCK_RETURN_IF_ERROR(file_->Rewind());
  line_ = 1;
  at_start_ = true;
  return Status::Ok();
}

}  // namespace airlock::connectors::files
