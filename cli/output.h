// What the CLI prints for people: aligned tables, short durations, times.
// Scripts use --json instead, which prints the API's own answer.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace airlock::cli {

// Rows under a header, columns padded to their widest cell (cells cut at
// 60 characters, newlines shown as spaces).
void PrintTable(std::ostream& out, const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows);

// 3600 -> "1h", 5400 -> "1h30m", 45 -> "45s".
std::string ShortDuration(int64_t seconds);

// Unix microseconds as "2026-12-06 09:30 UTC"; "" for 0.
std::string UtcMinute(int64_t unix_us);

// How far an enclave's pulls are, from a request's "enclave.progress"
// ({dataset: {"state","rows"}}) and the datasets asked for:
// "[######----] 1/2 datasets, 12,345 rows". The bar counts datasets whose
// pull is done (a source rarely tells its row count beforehand).
std::string IngestionProgress(const nlohmann::json& progress, size_t datasets);

// Comma-separated values as RFC 4180 wants them quoted.
std::string CsvField(const std::string& value);

}  // namespace airlock::cli
