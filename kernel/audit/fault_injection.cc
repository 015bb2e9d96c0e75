#include "kernel/audit/fault_injection.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

namespace airlock::audit_internal {
namespace {

constexpr const char* kVariable = "AIRLOCK_FAULT_KILL_AFTER_AUDIT";

struct CrashPoint {
  std::string event;
  uint64_t nth = 1;
  std::atomic<uint64_t> seen{0};
};

void WriteStderr(const std::string& line) {
  // write(2), not a logger: nothing buffered is lost to the SIGKILL.
  (void)!::write(STDERR_FILENO, line.data(), line.size());
}

// Parsed once, from the environment; null when unset or malformed.
std::unique_ptr<CrashPoint> Parse() {
  const char* value = std::getenv(kVariable);
  if (value == nullptr || *value == '\0') return nullptr;
  auto point = std::make_unique<CrashPoint>();
  std::string text = value;
  const size_t colon = text.rfind(':');
  if (colon != std::string::npos) {
    const std::string count = text.substr(colon + 1);
    char* end = nullptr;
    const unsigned long long n = std::strtoull(count.c_str(), &end, 10);
    if (count.empty() || *end != '\0' || n == 0) {
      WriteStderr(std::string("fault injection: ignoring ") + kVariable + "=" + text +
                  " (expected <event>[:<n>] with n >= 1)\n");
      return nullptr;
    }
    point->nth = n;
    text.resize(colon);
  }
  if (text.empty()) {
    WriteStderr(std::string("fault injection: ignoring ") + kVariable + " without an event\n");
    return nullptr;
  }
  point->event = std::move(text);
  WriteStderr("fault injection: armed: SIGKILL after audit record #" + std::to_string(point->nth) +
              " with event=" + point->event + "\n");
  return point;
}

}  // namespace

void AfterDurableRecord(const nlohmann::json& record) {
  static const std::unique_ptr<CrashPoint> point = Parse();
  if (!point) return;
  auto event = record.find("event");
  if (event == record.end() || !event->is_string() ||
      event->get_ref<const std::string&>() != point->event) {
    return;
  }
  if (point->seen.fetch_add(1, std::memory_order_relaxed) + 1 != point->nth) return;
  const std::string request = record.value("request_id", "");
  WriteStderr("fault injection: SIGKILL after audit seq=" +
              std::to_string(record.value("seq", uint64_t{0})) + " event=" + point->event +
              " request=" + request + "\n");
  ::kill(::getpid(), SIGKILL);
  ::pause();  // SIGKILL cannot be caught: nothing after this runs
}

}  // namespace airlock::audit_internal
