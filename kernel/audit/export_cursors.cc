#include "kernel/audit/export_cursors.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include <nlohmann/json.hpp>

namespace airlock {
namespace {

class FileCursors final : public ExportCursors {
 public:
  explicit FileCursors(std::string dir) : dir_(std::move(dir)) {}

  Result<ExportCursor> Peek(const std::string& name) override {
    const std::string path = Where(name);
    std::ifstream in(path);
    if (!in) return ExportCursor{};
    std::stringstream text;
    text << in.rdbuf();
    const auto j = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
    if (!j.is_object() || !j.contains("seq") || !j["seq"].is_number_unsigned() ||
        !j.contains("position") || !j["position"].is_number_unsigned()) {
      return Status::InvalidArgument("the audit export cursor " + path +
                                     " is unreadable; remove it to export the whole log again");
    }
    return ExportCursor{j["seq"].get<uint64_t>(), j["position"].get<uint64_t>()};
  }

  // Nobody else reads this kernel's log: always held. The file is read
  // once; later the last cursor saved is the answer.
  Result<std::optional<ExportCursor>> Hold(const std::string& name) override {
    {
      std::lock_guard lock(mu_);
      if (auto it = held_.find(name); it != held_.end()) return std::optional(it->second);
    }
    AIRLOCK_ASSIGN_OR_RETURN(ExportCursor cursor, Peek(name));
    std::lock_guard lock(mu_);
    held_[name] = cursor;
    return std::optional<ExportCursor>(cursor);
  }

  // Delivered is delivered: reading goes on after `cursor` even when the
  // file cannot be written (then a restart sends those records again).
  Status Save(const std::string& name, const ExportCursor& cursor) override {
    {
      std::lock_guard lock(mu_);
      held_[name] = cursor;
    }
    const std::string path = Where(name);
    const std::string text =
        nlohmann::json{{"seq", cursor.seq}, {"position", cursor.position}}.dump() + "\n";
    const std::string temporary = path + ".tmp";
    const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return Status::Unavailable("cannot write " + path + ": " + std::strerror(errno));
    const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    const bool synced = written && ::fdatasync(fd) == 0;
    ::close(fd);
    if (!synced || ::rename(temporary.c_str(), path.c_str()) != 0) {
      return Status::Unavailable("cannot write " + path + ": " + std::strerror(errno));
    }
    return Status::Ok();
  }

  void Release(const std::string&) override {}

  std::string Where(const std::string& name) const override {
    return dir_ + "/" + name + ".cursor";
  }

 private:
  const std::string dir_;
  std::mutex mu_;
  std::map<std::string, ExportCursor> held_;  // guarded by mu_: as last read or saved
};

}  // namespace

Result<std::unique_ptr<ExportCursors>> FileExportCursors(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::Unavailable("cannot create " + dir + ": " + ec.message());
  return std::unique_ptr<ExportCursors>(std::make_unique<FileCursors>(dir));
}

}  // namespace airlock
