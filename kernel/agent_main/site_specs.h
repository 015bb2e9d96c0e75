// The agent's side of site-owned datasets (kernel/core/site_catalog.h): the
// datasets its own configuration declares, with connectors, objects and
// secret references that never leave this host. From them the agent
//  - describes its datasets in a describe enclave of its own and builds the
//    metadata-only "catalog" document it sends the kernel;
//  - completes what the kernel sends for a request over them: the isolator
//    spec (files, environment variables and endpoints the connectors need)
//    and the enclave spec (each site dataset's connector and object, which
//    the kernel leaves out because it does not know them).
// Thread-safety: const after construction.
#pragma once

#include <set>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "airlock/cpp/status.hpp"
#include "kernel/core/config.h"
#include "kernel/core/connector_access.h"

namespace airlock::agent {

class SiteSpecs {
 public:
  // `egress_forwarded`: the agent's isolator maps approved endpoints into
  // the enclave's network (the enclave spec then lists their routes).
  SiteSpecs(SiteSources site, std::string config_dir, bool egress_forwarded);

  bool empty() const { return site_.datasets.empty(); }

  // What the connectors of `datasets` (names this site owns) need.
  // InvalidArgument naming one this site does not own.
  Result<ConnectorAccess> AccessFor(const std::vector<std::string>& datasets) const;

  // The isolator spec and enclave spec of a describe enclave for every
  // dataset of this site.
  nlohmann::json DescribeIsolatorSpec(const std::string& id) const;
  nlohmann::json DescribeEnclaveSpec(const std::string& id) const;

  // Adds to the kernel's isolator spec ("site_datasets": names) what those
  // datasets' connectors need: read_paths, secret_env, egress routes.
  // Returns the endpoints their enclave may dial from this host.
  Result<std::set<std::string>> CompleteIsolatorSpec(nlohmann::json& spec) const;
  // The kernel's enclave spec with each site dataset's connector (its
  // "connector" is {"site": ...}) and object filled in, and their egress
  // routes when forwarded.
  Result<std::string> CompleteEnclaveSpec(std::string_view payload) const;

  // The "catalog" control document from a describe enclave's answer (or
  // its failure): names, descriptions, tags, columns, errors and the sync
  // time; nothing else of what the enclave said crosses.
  nlohmann::json CatalogDocument(const Result<nlohmann::json>& described, int64_t now_us) const;

 private:
  const DatasetInfo* Find(const std::string& name) const;

  const SiteSources site_;
  const std::string config_dir_;
  const bool egress_forwarded_;
};

}  // namespace airlock::agent
