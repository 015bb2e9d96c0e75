// Answers from different engines compared row for row: the enclave's (through
// either tunnel) against PostgreSQL's for the same SQL over the same rows.
//
// Each engine spells a value its own way (the HTTPS tunnel as JSON numbers,
// PostgreSQL's wire as text), so every cell is first normalized: a number, or
// text that is wholly a number, becomes a double; other text stays text; SQL
// NULL is null. Doubles match within a relative 1e-9, because engines sum
// floating-point values in different orders.
#pragma once

#include <libpq-fe.h>

#include <string>

#include <nlohmann/json.hpp>

namespace airlock::bench {

// One cell as the comparison sees it.
nlohmann::json NormalizedCell(const nlohmann::json& cell);
// A PostgreSQL text value (libpq's text format) as the comparison sees it.
nlohmann::json NormalizedCell(const char* text, bool is_null);
// Every row of a libpq result, normalized: [[cell, ...], ...].
nlohmann::json NormalizedRows(const PGresult* result);
// Every row of an HTTPS tunnel answer's "rows", normalized.
nlohmann::json NormalizedRows(const nlohmann::json& rows);

// True when `actual` has exactly `expected`'s rows in the same order; else
// false with `*difference` naming the first row and column that differ.
bool SameRows(const nlohmann::json& expected, const nlohmann::json& actual,
              std::string* difference);

}  // namespace airlock::bench
