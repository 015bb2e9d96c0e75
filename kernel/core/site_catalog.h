// Datasets a site owns: declared in an agent's own configuration (its
// connectors, objects and secrets never leave its host) and described there.
// The agent pushes only their metadata over its link (the "catalog" control
// document: names, descriptions, tags, column names and types, when and how
// the site last synced), on connect and periodically; this is where the
// kernel keeps it. Asks, the policy and the catalog see these datasets like
// configured ones, bound to the agent that owns them; the enclave of such a
// request runs on that agent's host, which fills in the connectors itself.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"
#include "kernel/core/config.h"
#include "kernel/state/state_store.h"

namespace airlock {

// Bounds on what one site may push.
inline constexpr size_t kMaxSiteDatasets = 1000;
inline constexpr size_t kMaxSiteColumns = 1000;
inline constexpr size_t kMaxSiteTextBytes = 4096;

struct SiteDataset {
  std::string agent;
  DatasetInfo info;    // name, description, tags, columns (no connector, no object)
  bool synced = true;  // false: the site could not describe it (error says why)
  std::string error;
  int64_t synced_at_us = 0;      // when the site described it (the site's clock)
  int64_t received_at_us = 0;    // when the kernel received it (its clock)
  std::vector<std::string> key;  // the key columns its site declares (empty: none)

  // The catalog entry: the dataset's fields (and "key" when declared) with "site" {"agent",
  // "synced_at_us","received_at_us","sync":"ok|error","error"?} and
  // "schema" {"source":"site"}.
  nlohmann::json ToCatalogJson() const;
};

class SiteCatalog {
 public:
  // `reserved`: the configured datasets' names, which no site may take.
  // `store` (may be null; must outlive this) keeps each site's catalog, so
  // that every replica and a restarted kernel know the sites' datasets.
  explicit SiteCatalog(std::set<std::string> reserved, StateStore* store = nullptr)
      : reserved_(std::move(reserved)), store_(store) {}

  // Replaces the datasets `agent` owns with those of a catalog document
  // ({"datasets":[{"name","description"?,"tags"?,"columns"?,"error"?,
  // "synced_at_us"}]}). InvalidArgument, naming the problem, for a malformed
  // or oversized document, a name that is not an identifier, one a
  // configured dataset or another site holds, or a document that carries
  // anything but metadata; nothing changes then.
  struct Replaced {
    size_t datasets = 0;   // how many the site owns now
    bool changed = false;  // whether any name, metadata or error differs
  };
  // Also recorded in the store (a failure there is logged: this kernel
  // still serves what it was told).
  Result<Replaced> Replace(const std::string& agent, const nlohmann::json& document,
                           int64_t now_us);
  // Takes from the store every site's catalog received after the one held
  // here: what sites told other replicas, or this kernel before a restart.
  // A stored catalog that no longer passes the checks is skipped (logged).
  Status Refresh();
  std::optional<SiteDataset> Find(const std::string& name) const;
  // Every site dataset, by name.
  std::vector<SiteDataset> All() const;

 private:
  Result<Replaced> Apply(const std::string& agent, const nlohmann::json& document,
                         int64_t received_at_us);

  const std::set<std::string> reserved_;
  StateStore* const store_;
  mutable std::mutex mu_;
  std::map<std::string, SiteDataset> datasets_;  // guarded by mu_: by name
  std::map<std::string, int64_t> received_;      // guarded by mu_: by agent
};

// AgentForDatasets over the configuration and, for names it does not
// declare, the sites' own datasets (`sites` may be null).
Result<std::string> AgentForDatasets(const KernelConfig& config, const SiteCatalog* sites,
                                     const std::vector<std::string>& datasets);

}  // namespace airlock
