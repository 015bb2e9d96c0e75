#include "kernel/core/job_results.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "kernel/common/crypto.h"
#include "kernel/core/arrow_json.h"

namespace airlock {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

}  // namespace

std::string JobResultPath(const std::string& results_dir, const std::string& id, size_t index) {
  return (fs::path(results_dir) / id / (std::to_string(index) + ".ndjson")).string();
}

void RemoveJobResults(const std::string& results_dir, const std::string& id) {
  std::error_code ec;
  fs::remove_all(fs::path(results_dir) / id, ec);
}

Result<std::string> JobResultScratchPath(const std::string& results_dir, const std::string& id,
                                         size_t index) {
  const fs::path dir = fs::path(results_dir) / ".forwarded";
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || ::chmod(dir.c_str(), 0700) != 0) {
    return Status::Unavailable("cannot prepare the forwarded results directory");
  }
  return (dir / (id + "-" + std::to_string(index) + "-" + RandomHex(8) + ".ndjson")).string();
}

Result<std::string> PinJobResult(const std::string& results_dir, const std::string& id,
                                 size_t index) {
  AIRLOCK_ASSIGN_OR_RETURN(std::string pinned, JobResultScratchPath(results_dir, id, index));
  if (::link(JobResultPath(results_dir, id, index).c_str(), pinned.c_str()) != 0) {
    if (errno == ENOENT) {
      return Status::FailedPrecondition("the job results of request " + id +
                                        " have expired and were deleted");
    }
    return Status::Unavailable("cannot open job result " + std::to_string(index));
  }
  return pinned;
}

Result<std::unique_ptr<JobResultWriter>> JobResultWriter::Create(const std::string& path,
                                                                 int64_t max_bytes) {
  const fs::path dir = fs::path(path).parent_path();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || ::chmod(dir.c_str(), 0700) != 0 || ::chmod(dir.parent_path().c_str(), 0700) != 0) {
    return Status::Unavailable("cannot prepare the job results directory");
  }
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return Status::Unavailable("cannot create a job result file");
  std::FILE* file = ::fdopen(fd, "w");
  if (file == nullptr) {
    ::close(fd);
    return Status::Unavailable("cannot create a job result file");
  }
  return std::unique_ptr<JobResultWriter>(new JobResultWriter(file, max_bytes));
}

JobResultWriter::~JobResultWriter() {
  if (file_ != nullptr) std::fclose(file_);
}

Status JobResultWriter::Write(const std::string& text) {
  if (file_ == nullptr) return Status::FailedPrecondition("the job result is closed");
  bytes_ += text.size();
  if (static_cast<int64_t>(bytes_) > max_bytes_) {
    return Status::ResourceExhausted("the job result exceeds limits.max_job_result_bytes");
  }
  if (std::fwrite(text.data(), 1, text.size(), file_) != text.size()) {
    return Status::Unavailable("writing a job result failed");
  }
  return Status::Ok();
}

Status JobResultWriter::OnSchema(arrow::OwnedSchema schema) {
  schema_ = std::move(schema);
  AIRLOCK_ASSIGN_OR_RETURN(json columns, ArrowColumnsJson(schema_.get()));
  return Write(json{{"columns", std::move(columns)}}.dump() + "\n");
}

Status JobResultWriter::OnBatch(arrow::OwnedArray batch) {
  if (schema_.get() == nullptr) return Status::FailedPrecondition("a batch before the schema");
  AIRLOCK_ASSIGN_OR_RETURN(arrow::BatchView view,
                           arrow::BatchView::Make(*schema_.get(), *batch.get()));
  for (size_t row = 0; row < view.num_rows(); ++row) {
    line_ = ArrowRowJson(view, row).dump(-1, ' ', false, json::error_handler_t::replace);
    line_ += '\n';
    AIRLOCK_RETURN_IF_ERROR(Write(line_));
  }
  return Status::Ok();
}

Status JobResultWriter::Finish() {
  if (file_ == nullptr) return Status::Ok();
  const bool flushed = std::fflush(file_) == 0 && ::fsync(::fileno(file_)) == 0;
  const bool closed = std::fclose(file_) == 0;
  file_ = nullptr;
  if (!flushed || !closed) return Status::Unavailable("finishing a job result failed");
  return Status::Ok();
}

}  // namespace airlock
