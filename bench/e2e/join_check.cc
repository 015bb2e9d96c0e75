#include "bench/e2e/join_check.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

namespace airlock::bench {
namespace {

using nlohmann::json;

constexpr double kRelativeTolerance = 1e-9;

bool WhollyNumber(const std::string& text, double* value) {
  if (text.empty() || text.size() > 64) return false;
  char* end = nullptr;
  *value = std::strtod(text.c_str(), &end);
  return end == text.c_str() + text.size() && std::isfinite(*value);
}

bool SameCell(const json& a, const json& b) {
  if (a.is_number() && b.is_number()) {
    const double x = a.get<double>(), y = b.get<double>();
    return std::fabs(x - y) <= kRelativeTolerance * std::max({1.0, std::fabs(x), std::fabs(y)});
  }
  return a == b;
}

}  // namespace

json NormalizedCell(const json& cell) {
  if (cell.is_number()) return cell.get<double>();
  if (cell.is_string()) {
    double v = 0;
    if (WhollyNumber(cell.get<std::string>(), &v)) return v;
  }
  return cell;
}

json NormalizedCell(const char* text, bool is_null) {
  if (is_null) return nullptr;
  return NormalizedCell(json(std::string(text)));
}

json NormalizedRows(const PGresult* result) {
  json rows = json::array();
  for (int r = 0; r < PQntuples(result); ++r) {
    json row = json::array();
    for (int c = 0; c < PQnfields(result); ++c) {
      row.push_back(NormalizedCell(PQgetvalue(result, r, c), PQgetisnull(result, r, c) != 0));
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

json NormalizedRows(const json& rows) {
  json out = json::array();
  if (!rows.is_array()) return out;
  for (const json& row : rows) {
    json normalized = json::array();
    if (row.is_array()) {
      for (const json& cell : row) normalized.push_back(NormalizedCell(cell));
    }
    out.push_back(std::move(normalized));
  }
  return out;
}

bool SameRows(const json& expected, const json& actual, std::string* difference) {
  if (!expected.is_array() || !actual.is_array()) {
    *difference = "not row sets";
    return false;
  }
  const size_t n = std::min(expected.size(), actual.size());
  for (size_t r = 0; r < n; ++r) {
    const json& e = expected[r];
    const json& a = actual[r];
    if (e.size() != a.size()) {
      *difference = "row " + std::to_string(r) + " has " + std::to_string(a.size()) +
                    " columns, expected " + std::to_string(e.size());
      return false;
    }
    for (size_t c = 0; c < e.size(); ++c) {
      if (!SameCell(e[c], a[c])) {
        *difference = "row " + std::to_string(r) + " column " + std::to_string(c) + ": " +
                      a[c].dump() + ", expected " + e[c].dump();
        return false;
      }
    }
  }
  if (expected.size() != actual.size()) {
    *difference =
        std::to_string(actual.size()) + " rows, expected " + std::to_string(expected.size());
    return false;
  }
  return true;
}

}  // namespace airlock::bench
