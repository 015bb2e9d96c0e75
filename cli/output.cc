#include "cli/output.h"

#include <algorithm>
#include <ctime>

namespace airlock::cli {

namespace {

constexpr size_t kMaxCell = 60;

// Display width in code points (UTF-8 continuation bytes do not count).
size_t Width(const std::string& text) {
  size_t width = 0;
  for (unsigned char c : text) width += (c & 0xC0) != 0x80;
  return width;
}

std::string Cell(std::string text) {
  for (char& c : text) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  if (Width(text) <= kMaxCell) return text;
  // Cut on a code point boundary.
  size_t kept = 0, at = 0;
  while (at < text.size() && kept < kMaxCell - 1) {
    ++at;
    while (at < text.size() && (static_cast<unsigned char>(text[at]) & 0xC0) == 0x80) ++at;
    ++kept;
  }
  return text.substr(0, at) + "\u2026";
}

}  // namespace

void PrintTable(std::ostream& out, const std::vector<std::string>& header,
                const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::vector<std::string>> cells;
  cells.push_back(header);
  for (const auto& row : rows) {
    std::vector<std::string> cut;
    for (const auto& value : row) cut.push_back(Cell(value));
    cells.push_back(std::move(cut));
  }
  std::vector<size_t> widths(header.size(), 0);
  for (const auto& row : cells) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) {
      widths[i] = std::max(widths[i], Width(row[i]));
    }
  }
  for (const auto& row : cells) {
    std::string line;
    for (size_t i = 0; i < widths.size(); ++i) {
      const std::string value = i < row.size() ? row[i] : "";
      line += value;
      if (i + 1 < widths.size()) line += std::string(widths[i] - Width(value) + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << '\n';
  }
}

std::string ShortDuration(int64_t seconds) {
  if (seconds <= 0) return "0s";
  std::string text;
  const int64_t days = seconds / 86400, hours = seconds % 86400 / 3600,
                minutes = seconds % 3600 / 60, rest = seconds % 60;
  if (days) text += std::to_string(days) + "d";
  if (hours) text += std::to_string(hours) + "h";
  if (minutes) text += std::to_string(minutes) + "m";
  if (rest) text += std::to_string(rest) + "s";
  return text;
}

std::string UtcMinute(int64_t unix_us) {
  if (unix_us <= 0) return "";
  const time_t seconds = static_cast<time_t>(unix_us / 1000000);
  struct tm utc {};
  gmtime_r(&seconds, &utc);
  char buffer[64];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%d %H:%M UTC", &utc);
  return buffer;
}

std::string CsvField(const std::string& value) {
  if (value.find_first_of(",\"\r\n") == std::string::npos) return value;
  std::string quoted = "\"";
  for (char c : value) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + "\"";
}

std::string IngestionProgress(const nlohmann::json& progress, size_t datasets) {
  constexpr size_t kWidth = 20;
  size_t done = 0;
  int64_t rows = 0;
  if (progress.is_object()) {
    for (const auto& [name, entry] : progress.items()) {
      if (!entry.is_object()) continue;
      if (entry.value("state", "") == "done") ++done;
      const auto& count = entry.contains("rows") ? entry["rows"] : nlohmann::json();
      if (count.is_number_integer()) rows += count.get<int64_t>();
    }
  }
  datasets = std::max(datasets, done);
  const size_t filled = datasets == 0 ? 0 : kWidth * done / datasets;
  // Thousands separated, as people read counts.
  std::string count = std::to_string(rows);
  for (int at = static_cast<int>(count.size()) - 3; at > (rows < 0 ? 1 : 0); at -= 3) {
    count.insert(static_cast<size_t>(at), ",");
  }
  return "[" + std::string(filled, '#') + std::string(kWidth - filled, '-') + "] " +
         std::to_string(done) + "/" + std::to_string(datasets) + " datasets, " + count + " rows";
}

}  // namespace airlock::cli
