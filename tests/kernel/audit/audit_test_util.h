// Helpers shared by the audit suites: a scratch directory and line-level
// access to a log file, so tests can tamper with it like an attacker would.
#pragma once

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "kernel/common/crypto.h"

#include "tests/support/temp_dir.h"

namespace airlock::testing_audit {

// A scratch directory, removed with everything in it at scope exit.
using ScratchDir = ::airlock::test::TempDir;

inline std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

inline void WriteLines(const std::string& path, const std::vector<std::string>& lines) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  for (const auto& line : lines) out << line << '\n';
}

inline std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

inline std::vector<nlohmann::json> ReadRecords(const std::string& path) {
  std::vector<nlohmann::json> records;
  for (const auto& line : ReadLines(path)) records.push_back(nlohmann::json::parse(line));
  return records;
}

// What an attacker who can write the state directory but holds no key can
// do after changing `records`: renumber them 1..n, recompute every "prev"
// and "hash" from the documented definition, and rewrite the "<log>.head"
// anchor to the new end, so the chain alone is consistent again.
inline void WriteRechained(const std::string& path, std::vector<nlohmann::json> records) {
  std::string prev(64, '0');
  std::vector<std::string> lines;
  uint64_t seq = 0;
  for (auto& record : records) {
    record.erase("hash");
    record["seq"] = ++seq;
    record["prev"] = prev;
    const std::string hash = Sha256Hex(prev + record.dump());
    record["hash"] = hash;
    prev = hash;
    lines.push_back(record.dump());
  }
  WriteLines(path, lines);
  char anchor[32];
  std::snprintf(anchor, sizeof(anchor), "%020llu ", static_cast<unsigned long long>(seq));
  std::ofstream(path + ".head", std::ios::binary | std::ios::trunc) << anchor << prev << "\n";
}

}  // namespace airlock::testing_audit
