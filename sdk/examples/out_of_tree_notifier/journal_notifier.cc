// A notifier that appends each notification it is handed to a file, one
// JSON line each, skipping ids it has written before: the smallest useful
// notifier (a spool another program tails), and an example of the kind.
//
//   "notifications": {"notifiers": {"journal": {
//     "plugin": "/opt/airlock/lib/airlock/plugins/journal_notifier.so",
//     "config": {"path": "/var/spool/airlock/notifications.jsonl"}}}}
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include <airlock/cpp/plugin.hpp>

namespace {

using airlock::Json;
using airlock::Result;
using airlock::Status;

class JournalNotifier : public airlock::sdk::Notifier {
 public:
  static Status CheckConfig(const Json& config, const airlock::sdk::Host& /*host*/) {
    if (!config.is_object() || !config.contains("path") || !config["path"].is_string() ||
        config["path"].get<std::string>().empty()) {
      return Status::InvalidArgument("config.path must name the journal file");
    }
    for (const auto& [key, value] : config.items()) {
      if (key != "path")
        return Status::InvalidArgument("config." + key + " is not a known setting");
    }
    return Status::Ok();
  }

  static Result<std::unique_ptr<JournalNotifier>> Create(const Json& config,
                                                         const airlock::sdk::Host& host) {
    if (Status checked = CheckConfig(config, host); !checked.ok()) return checked;
    std::string path = config["path"].get<std::string>();
    if (path.front() != '/' && !host.config_dir().empty()) path = host.config_dir() + "/" + path;
    return std::unique_ptr<JournalNotifier>(new JournalNotifier(std::move(path)));
  }

  // The kernel may hand the same notification again (after a failure, or
  // a restart before it learnt the outcome): its id says so.
  Status Deliver(const airlock::sdk::Notification& notification) override {
    std::lock_guard lock(mu_);
    if (written_.count(notification.id) != 0) return Status::Ok();
    const std::string line = notification.document.dump() + "\n";
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
      // A full disk or a missing directory may be fixed: the kernel retries.
      return Status::Unavailable("cannot open " + path_ + ": " + std::strerror(errno));
    }
    const ssize_t wrote = ::write(fd, line.data(), line.size());
    const bool synced = wrote == static_cast<ssize_t>(line.size()) && ::fsync(fd) == 0;
    ::close(fd);
    if (!synced) return Status::Unavailable("cannot append to " + path_);
    written_.insert(notification.id);
    return Status::Ok();
  }

 private:
  explicit JournalNotifier(std::string path) : path_(std::move(path)) {}

  std::mutex mu_;
  std::string path_;
  std::set<std::string> written_;
};

}  // namespace

AIRLOCK_NOTIFIER_PLUGIN(JournalNotifier, "journal", "1.0.0",
                        "Appends notifications to a file, one JSON line each",
                        R"({"type":"object","required":["path"],)"
                        R"("properties":{"path":{"type":"string"}}})")
