// The files connector: CSV and JSON Lines files under one root directory,
// delivered as scoped Arrow record batches, read incrementally.
//
// Thread-safety: Describe and Pull may run concurrently; each call opens its
// own file descriptor and the configuration is immutable after Create.
#pragma once

#include <memory>
#include <vector>

#include "airlock/cpp/arrow.hpp"
#include "airlock/cpp/batch.hpp"
#include "airlock/cpp/host.hpp"
#include "airlock/cpp/plugin.hpp"
#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"
#include "buffered_file.h"
#include "config.h"
#include "safe_open.h"

namespace airlock::connectors::files {

class FilesConnector : public sdk::Connector {
 public:
  // InvalidArgument naming the key for a bad configuration, or when root is
  // not a readable directory.
  static Result<std::unique_ptr<FilesConnector>> Create(const Json& config, const sdk::Host& host);

  // Every configured dataset (or, with none configured, every .csv/.tsv/
  // .jsonl/.ndjson file directly in root, named by its stem) with its columns.
  Result<Catalog> Describe() override;

  // Streams the scoped dataset: PermissionDenied for a path leaving the root,
  // NotFound for a missing file, InvalidArgument for a malformed record (naming
  // the line) or a scope that names unknown columns, Cancelled when the sink
  // asks to stop.
  Status Pull(const PullSpec& spec, sdk::BatchSink& sink) override;

 private:
  FilesConnector(FilesConfig config, RootDirectory root, sdk::Host host)
      : config_(std::move(config)), root_(std::move(root)), host_(std::move(host)) {}

  // Which file to read for `spec`, and how.
  Result<DatasetConfig> Resolve(const PullSpec& spec) const;
  // Datasets found in root when none are configured.
  Result<std::vector<DatasetConfig>> Discover() const;
  // The dataset's source columns (reads the first infer_rows records).
  Result<std::vector<arrow::Field>> Schema(const DatasetConfig& dataset, BufferedFile* file) const;
  // The data rows of `dataset`'s file, read whole when it is at most
  // kMaxCountedBytes (Describe reports a count only where it is cheap); -1
  // for a larger or unreadable file.
  int64_t CountRows(const DatasetConfig& dataset) const;

  Status PullCsv(const DatasetConfig& dataset, BufferedFile* file, const DatasetScope& scope,
                 sdk::BatchSink& sink, uint64_t* rows) const;
  Status PullJsonl(const DatasetConfig& dataset, BufferedFile* file, const DatasetScope& scope,
                   sdk::BatchSink& sink, uint64_t* rows) const;

  const FilesConfig config_;
  const RootDirectory root_;
  const sdk::Host host_;
};

}  // namespace airlock::connectors::files
