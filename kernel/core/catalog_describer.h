// Keeps the catalog's schemas current: has the connectors describe their
// datasets (RequestManager::DescribeDatasets, in an enclave) on a thread of
// its own at start and whenever asked again (a reload), merges the answer
// into the CatalogDocument and audits it ("catalog.described"). A describe
// that fails leaves the catalog as it was and says why in the log and the
// audit; requests never wait for it.
//
// Thread-safety: Refresh from any thread; the destructor stops a describe
// in flight (its enclave is terminated) and joins.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "airlock/cpp/status.hpp"
#include "kernel/core/catalog_document.h"

namespace airlock {

class AuditLog;

class CatalogDescriber {
 public:
  // `describe(timeout, stop)` runs one describe (RequestManager's).
  using Describe = std::function<Result<nlohmann::json>(std::chrono::milliseconds timeout,
                                                        const std::atomic<bool>* stop)>;

  CatalogDescriber(Describe describe, CatalogDocument* catalog, AuditLog* audit,
                   std::chrono::milliseconds timeout);
  ~CatalogDescriber();
  CatalogDescriber(const CatalogDescriber&) = delete;
  CatalogDescriber& operator=(const CatalogDescriber&) = delete;

  // Describes again soon (at once if idle; after the one in flight
  // otherwise).
  void Refresh();
  // Describes completed (successful or not), for tests and metrics.
  uint64_t completed() const { return completed_.load(); }

 private:
  void Run();
  void DescribeOnce();

  const Describe describe_;
  CatalogDocument* const catalog_;
  AuditLog* const audit_;
  const std::chrono::milliseconds timeout_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> completed_{0};
  std::mutex mu_;
  std::condition_variable wake_;
  bool wanted_ = false;  // guarded by mu_
  std::thread thread_;
};

}  // namespace airlock
