// What the notifier suites share: a host whose secret service and clock the
// test controls, a loaded notifier plugin driven through the C ABI, and the
// notification document the kernel hands over.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "airlock/c/airlock_plugin.h"
#include "airlock/cpp/abi_util.hpp"
#include "airlock/cpp/values.hpp"
#include "tests/support/dl_plugin.h"

namespace airlock::test {

// FakeHost (logging, a settable clock) plus a secret service answering from
// a map the test fills; references not in it are NOT_FOUND.
class NotifierHost {
 public:
  NotifierHost() {
    services_ = *fake_.services();
    services_.host_data = this;
    services_.log = [](void* self, int32_t level, const char* plugin, const char* message,
                       size_t length) {
      auto* host = static_cast<NotifierHost*>(self);
      const airlock_host_services* inner = host->fake_.services();
      inner->log(inner->host_data, level, plugin, message, length);
    };
    services_.now_unix_micros = [](void* self) {
      const airlock_host_services* inner = static_cast<NotifierHost*>(self)->fake_.services();
      return inner->now_unix_micros(inner->host_data);
    };
    services_.secret_resolve = [](void* self, const char* ref, size_t length,
                                  airlock_type_secret* out,
                                  airlock_type_error* error) -> airlock_type_status {
      auto* host = static_cast<NotifierHost*>(self);
      std::lock_guard lock(host->mutex_);
      host->resolutions_++;
      auto it = host->secrets_.find(std::string(ref, length));
      if (it == host->secrets_.end()) {
        abi::FillError(error, "no such secret");
        return AIRLOCK_ERR_NOT_FOUND;
      }
      // The bytes live in the map until the test changes it.
      std::memset(out, 0, sizeof(*out));
      out->data = reinterpret_cast<const uint8_t*>(it->second.data());
      out->length = it->second.size();
      out->release = [](airlock_type_secret* s) { s->release = nullptr; };
      return AIRLOCK_OK;
    };
  }
  NotifierHost(const NotifierHost&) = delete;
  NotifierHost& operator=(const NotifierHost&) = delete;

  const airlock_host_services* services() const { return &services_; }
  void SetSecret(const std::string& reference, std::string value) {
    std::lock_guard lock(mutex_);
    secrets_[reference] = std::move(value);
  }
  void RemoveSecret(const std::string& reference) {
    std::lock_guard lock(mutex_);
    secrets_.erase(reference);
  }
  int resolutions() const {
    std::lock_guard lock(mutex_);
    return resolutions_;
  }
  void set_now_unix(int64_t seconds) { fake_.set_now_micros(seconds * 1000000); }
  std::vector<std::string> logs() const { return fake_.logs(); }

 private:
  testing::FakeHost fake_;
  airlock_host_services services_;
  mutable std::mutex mutex_;
  std::map<std::string, std::string> secrets_;
  int resolutions_ = 0;
};

// 2026-12-06T06:30:00Z, the example's occurred_at.
inline constexpr int64_t kOccurredAt = 1796538600;

// The document of the ABI's example: alice asks for orders, data-owners approve.
inline Json PendingApproval() {
  return Json::parse(R"({
    "id": "r-7f3a/3/ops-webhook",
    "event": "request.pending_approval",
    "occurred_at": "2026-12-06T06:30:00Z",
    "attempt": 1,
    "audience": "approvers",
    "recipients": {"groups": ["data-owners"], "subjects": [], "emails": []},
    "request": {"id": "r-7f3a", "state": "pending_approval",
                "requester": {"subject": "alice", "kind": "human", "email": "alice@example.com"},
                "datasets": ["orders", "customers"], "purpose": "quarterly report",
                "reason": "orders needs an owner's approval",
                "window_seconds": 3600, "not_after": "2026-12-06T07:30:00Z",
                "approval": {"groups": ["data-owners"], "count": 1}},
    "links": {"console": "https://airlock.example.com/console/#/requests/r-7f3a"},
    "future_member": {"ignored": true}})");
}

// The same request told to its requester.
inline Json ToRequester(const std::string& event, const std::string& state) {
  Json doc = PendingApproval();
  doc["id"] = "r-7f3a/" + state + "/requester";
  doc["event"] = event;
  doc["audience"] = "requester";
  doc["recipients"] = {{"subjects", {"alice"}}, {"emails", {"alice@example.com"}}};
  doc["request"]["state"] = state;
  return doc;
}

// A loaded notifier plugin.
class NotifierPlugin {
 public:
  NotifierPlugin(const std::string& path, const airlock_host_services* host) {
    std::string error;
    plugin_ = testing::DlPlugin::Load(path, host, &error);
    EXPECT_NE(plugin_, nullptr) << error;
  }
  bool loaded() const { return plugin_ != nullptr; }
  const airlock_type_plugin_info& info() const { return plugin_->info(); }
  const airlock_type_notifier_vtable& table() const {
    return plugin_->vtable<airlock_type_notifier_vtable>();
  }

  using Instance = testing::DlInstance<airlock_type_notifier_vtable>;
  std::unique_ptr<Instance> Create(const Json& config) const {
    return std::make_unique<Instance>(table(), config.dump());
  }

  struct Outcome {
    airlock_type_status status;
    std::string error;
  };
  Outcome Deliver(void* instance, const Json& document) const {
    const std::string text = document.dump();
    abi::ErrorHolder error;
    Outcome out;
    out.status = table().deliver(instance, text.data(), text.size(), error.get());
    out.error = error.message();
    return out;
  }
  Outcome CheckConfig(const Json& config) const {
    const std::string text = config.dump();
    abi::ErrorHolder error;
    Outcome out;
    out.status = info().check_config(text.data(), text.size(), error.get());
    out.error = error.message();
    return out;
  }

 private:
  std::unique_ptr<testing::DlPlugin> plugin_;
};

// Retried by the kernel (airlock_type_notifier_vtable).
inline bool IsRetried(airlock_type_status status) {
  return status == AIRLOCK_ERR_UNAVAILABLE || status == AIRLOCK_ERR_DEADLINE_EXCEEDED ||
         status == AIRLOCK_ERR_RESOURCE_EXHAUSTED;
}

// A loopback port nobody listens on (it was free a moment ago).
inline uint16_t UnusedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

}  // namespace airlock::test
