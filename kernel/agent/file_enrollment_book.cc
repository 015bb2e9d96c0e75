// The one-machine enrollment book: a JSON file rewritten whole (atomically,
// 0600) on every change, read once at start.
#include <filesystem>
#include <mutex>
#include <system_error>
#include <vector>

#include <nlohmann/json.hpp>

#include "kernel/agent/agent_ca.h"
#include "kernel/agent/enrollment_book.h"

namespace airlock::agent {
namespace {

using nlohmann::json;

class FileEnrollmentBook final : public EnrollmentBook {
 public:
  explicit FileEnrollmentBook(std::string dir) : path_(std::move(dir) + "/enrollments.json") {
    auto text = ReadSmallFile(path_);
    if (!text.ok()) return;  // none yet
    json doc = json::parse(*text, nullptr, false);
    if (doc.is_object()) records_ = std::move(doc);
  }

  Result<std::optional<EnrollmentRecord>> Find(const std::string& agent) override {
    std::lock_guard lock(mu_);
    auto it = records_.find(agent);
    if (it == records_.end() || !it->is_object()) return std::optional<EnrollmentRecord>();
    EnrollmentRecord record;
    record.token_sha256 = it->value("token_sha256", "");
    record.serial = it->value("serial", "");
    record.previous_serial = it->value("previous_serial", "");
    record.enrolled_at_us = it->value("enrolled_at_us", int64_t{0});
    return std::optional<EnrollmentRecord>(std::move(record));
  }

  Result<bool> Enroll(const std::string& agent, const EnrollmentRecord& record) override {
    std::lock_guard lock(mu_);
    const json before = records_.value(agent, json());
    if (before.is_object() && before.value("token_sha256", "") == record.token_sha256) {
      return false;
    }
    records_[agent] = {{"token_sha256", record.token_sha256},
                       {"enrolled_at_us", record.enrolled_at_us},
                       {"serial", record.serial},
                       {"previous_serial", record.previous_serial}};
    return Write(agent, before);
  }

  Result<bool> Renew(const std::string& agent, const std::string& current_serial,
                     const std::string& serial) override {
    std::lock_guard lock(mu_);
    auto it = records_.find(agent);
    if (it == records_.end() || it->value("serial", "") != current_serial) return false;
    const json before = *it;
    (*it)["previous_serial"] = current_serial;
    (*it)["serial"] = serial;
    return Write(agent, before);
  }

  Result<std::string> PinCa(const std::string& fingerprint) override { return fingerprint; }

  std::string Describe() const override { return "file " + path_; }

 private:
  // Saves the book; on failure puts `agent`'s record back as it was.
  Result<bool> Write(const std::string& agent, const json& before) {
    const Status saved = WritePrivateFile(path_, records_.dump(2));
    if (saved.ok()) return true;
    if (before.is_null()) {
      records_.erase(agent);
    } else {
      records_[agent] = before;
    }
    return saved;
  }

  const std::string path_;
  std::mutex mu_;
  json records_ = json::object();  // GUARDED_BY(mu_)
};

}  // namespace

std::unique_ptr<EnrollmentBook> OpenFileEnrollmentBook(const std::string& dir) {
  return std::make_unique<FileEnrollmentBook>(dir);
}

Result<std::vector<std::string>> ImportEnrollmentFile(const std::string& dir,
                                                      EnrollmentBook& into) {
  const std::string path = dir + "/enrollments.json";
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return std::vector<std::string>();
  AIRLOCK_ASSIGN_OR_RETURN(const std::string text, ReadSmallFile(path));
  const json doc = json::parse(text, nullptr, false);
  if (!doc.is_object()) {
    return Status::FailedPrecondition(path +
                                      " is not a JSON object of enrollments: move it away "
                                      "and enroll its agents again");
  }
  FileEnrollmentBook from(dir);
  std::vector<std::string> imported;
  for (const auto& [agent, entry] : doc.items()) {
    AIRLOCK_ASSIGN_OR_RETURN(std::optional<EnrollmentRecord> record, from.Find(agent));
    if (!record || record->token_sha256.empty() || record->serial.empty()) {
      return Status::FailedPrecondition(path + ": the enrollment of '" + agent +
                                        "' is incomplete: move the file away and enroll its "
                                        "agents again");
    }
    // The book's own record wins: the agent enrolled again since.
    AIRLOCK_ASSIGN_OR_RETURN(std::optional<EnrollmentRecord> there, into.Find(agent));
    if (there) continue;
    AIRLOCK_ASSIGN_OR_RETURN(const bool stored, into.Enroll(agent, *record));
    if (stored) imported.push_back(agent);
  }
  // Kept, renamed, for the operator; never imported twice.
  std::filesystem::rename(path, path + ".imported", ec);
  if (ec) {
    return Status::Unavailable("imported " + path + " but could not rename it: " + ec.message());
  }
  return imported;
}

}  // namespace airlock::agent
