#include "kernel/core/catalog_describer.h"

#include <spdlog/spdlog.h>

#include "kernel/audit/audit_log.h"

namespace airlock {

using nlohmann::json;

CatalogDescriber::CatalogDescriber(Describe describe, CatalogDocument* catalog, AuditLog* audit,
                                   std::chrono::milliseconds timeout)
    : describe_(std::move(describe)), catalog_(catalog), audit_(audit), timeout_(timeout) {
  thread_ = std::thread([this] { Run(); });
}

CatalogDescriber::~CatalogDescriber() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void CatalogDescriber::Refresh() {
  {
    std::lock_guard lock(mu_);
    wanted_ = true;
  }
  wake_.notify_all();
}

void CatalogDescriber::Run() {
  while (true) {
    {
      std::unique_lock lock(mu_);
      wake_.wait(lock, [&] { return stop_.load() || wanted_; });
      if (stop_) return;
      wanted_ = false;
    }
    DescribeOnce();
    ++completed_;
  }
}

void CatalogDescriber::DescribeOnce() {
  const auto started = std::chrono::steady_clock::now();
  auto described = describe_(timeout_, &stop_);
  if (stop_) return;
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  if (!described.ok()) {
    spdlog::warn("catalog: the connectors could not describe their datasets: {}",
                 described.status().message());
    (void)audit_->Append({{"event", "catalog.described"},
                          {"outcome", "failed"},
                          {"reason", described.status().message()}});
    return;
  }
  json names = json::array();
  const json found = described->value("datasets", json::object());
  for (const auto& [name, info] : found.items()) names.push_back(name);
  const json errors = described->value("errors", json::object());
  for (const auto& [name, reason] : errors.items()) {
    spdlog::warn("catalog: dataset '{}' could not be described: {}", name,
                 reason.is_string() ? reason.get<std::string>() : reason.dump());
  }
  spdlog::info("catalog: {} dataset(s) described by their connectors in {} ms", names.size(),
               took.count());
  (void)audit_->Append({{"event", "catalog.described"},
                        {"outcome", errors.empty() ? "ok" : "partial"},
                        {"described", names},
                        {"errors", errors}});
  // Shown once audited.
  catalog_->Merge(*described, std::chrono::duration_cast<std::chrono::microseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count());
}

}  // namespace airlock
