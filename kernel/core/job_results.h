// Job mode results on the kernel's disk. A job request's queries run inside
// its sealed enclave; each result is streamed to
// <results_dir>/<request id>/<index>.ndjson as it arrives: a first line
// {"columns":[{"name","type"}]}, then one JSON array per row. The files are
// the requester's to download (GET /v1/requests/{id}/results/{index}) until
// the retention deadline, then deleted. Directories are 0700, files 0600.
//
// Values: bool, numbers (NaN and infinities as null), strings (invalid UTF-8
// replaced), binary as lowercase hex, date32 "YYYY-MM-DD", timestamps
// "YYYY-MM-DDTHH:MM:SS.ffffff" (with "Z" when the column has a zone), time64
// "HH:MM:SS.ffffff", NULL as null.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "airlock/cpp/arrow.hpp"
#include "airlock/cpp/batch.hpp"
#include "airlock/cpp/status.hpp"

namespace airlock {

// Where result `index` of request `id` lives.
std::string JobResultPath(const std::string& results_dir, const std::string& id, size_t index);
// Deletes every result of request `id` (missing is fine).
void RemoveJobResults(const std::string& results_dir, const std::string& id);
// A fresh private path for a temporary copy of result `index` of request
// `id` (in <results_dir>/.forwarded, 0700), removed by its reader.
Result<std::string> JobResultScratchPath(const std::string& results_dir, const std::string& id,
                                         size_t index);
// Pins result `index` of request `id` for one download: a hard link under a
// scratch path, so that retention deleting the result meanwhile cannot take
// the file from under an answer already authorized. FailedPrecondition when
// the result is already gone.
Result<std::string> PinJobResult(const std::string& results_dir, const std::string& id,
                                 size_t index);

// Writes one result. Not thread-safe (the enclave client's reader thread
// feeds it). The file is complete once Finish() returned Ok.
class JobResultWriter final : public sdk::BatchConsumer {
 public:
  // Creates the file (and the request's directory); `max_bytes` bounds it:
  // a result that grows past it fails with ResourceExhausted.
  static Result<std::unique_ptr<JobResultWriter>> Create(const std::string& path,
                                                         int64_t max_bytes);
  ~JobResultWriter() override;

  Status OnSchema(arrow::OwnedSchema schema) override;
  Status OnBatch(arrow::OwnedArray batch) override;
  bool IsCancelled() override { return false; }
  // Flushes and syncs the file, then closes it.
  Status Finish();
  uint64_t bytes() const { return bytes_; }

 private:
  JobResultWriter(std::FILE* file, int64_t max_bytes) : file_(file), max_bytes_(max_bytes) {}
  Status Write(const std::string& text);

  std::FILE* file_;
  int64_t max_bytes_;
  uint64_t bytes_ = 0;
  arrow::OwnedSchema schema_;
  std::string line_;
};

}  // namespace airlock
