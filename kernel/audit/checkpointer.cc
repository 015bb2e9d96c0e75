#include "kernel/audit/checkpointer.h"

#include <syslog.h>

#include <spdlog/spdlog.h>

#include "kernel/audit/audit_chain.h"
#include "kernel/audit/checkpoint_file.h"

namespace airlock {
namespace {

CheckpointPolicy Normalized(CheckpointPolicy policy) {
  if (policy.every_records == 0) policy.every_records = 1;
  if (policy.every_seconds.count() <= 0) policy.every_seconds = std::chrono::seconds(1);
  return policy;
}

class LogSink : public CheckpointSink {
 public:
  Status Publish(const AuditCheckpoint&, const std::string& line) override {
    spdlog::info("{}{}", kShippedCheckpointTag, line);
    return Status::Ok();
  }
  std::string name() const override { return "log"; }
};

class FileSink : public CheckpointSink {
 public:
  explicit FileSink(std::unique_ptr<CheckpointFileWriter> file) : file_(std::move(file)) {}
  Status Publish(const AuditCheckpoint&, const std::string& line) override {
    return file_->Append(line);
  }
  std::string name() const override { return file_->path(); }

 private:
  std::unique_ptr<CheckpointFileWriter> file_;
};

class SyslogSink : public CheckpointSink {
 public:
  SyslogSink() { ::openlog("airlockd", LOG_PID | LOG_NDELAY, LOG_AUTHPRIV); }
  ~SyslogSink() override { ::closelog(); }
  Status Publish(const AuditCheckpoint&, const std::string& line) override {
    // syslog(3) reports no delivery failure; the message is fire-and-forget.
    ::syslog(LOG_NOTICE, "%s%s", kShippedCheckpointTag, line.c_str());
    return Status::Ok();
  }
  std::string name() const override { return "syslog"; }
};

}  // namespace

std::unique_ptr<CheckpointSink> MakeLogCheckpointSink() {
  return std::make_unique<LogSink>();
}

std::unique_ptr<CheckpointSink> MakeFileCheckpointSink(std::unique_ptr<CheckpointFileWriter> file) {
  return std::make_unique<FileSink>(std::move(file));
}

std::unique_ptr<CheckpointSink> MakeSyslogCheckpointSink() {
  return std::make_unique<SyslogSink>();
}

Checkpointer::Checkpointer(std::unique_ptr<CheckpointSigner> signer,
                           std::function<AuditHead()> head,
                           std::vector<std::unique_ptr<CheckpointSink>> sinks,
                           CheckpointPolicy policy, std::optional<AuditHead> last)
    : signer_(std::move(signer)),
      head_(std::move(head)),
      policy_(Normalized(policy)),
      sinks_(std::move(sinks)),
      last_(std::move(last)) {
  const uint64_t from = last_ ? last_->seq : 0;
  last_seq_.store(from, std::memory_order_release);
  due_seq_.store(from + policy_.every_records, std::memory_order_release);
}

Checkpointer::~Checkpointer() {
  Stop();
}

Status Checkpointer::CheckpointNow() {
  std::lock_guard sign_lock(sign_mu_);
  AuditHead head = head_();
  if (last_ && last_->seq == head.seq && last_->hash == head.hash) return Status::Ok();
  auto checkpoint =
      signer_->Sign(head, audit_internal::FormatTimestamp(std::chrono::system_clock::now()));
  if (!checkpoint.ok()) return checkpoint.status();
  const std::string line = FormatCheckpointLine(*checkpoint);
  Status first;
  for (const auto& sink : sinks_) {
    const Status published = sink->Publish(*checkpoint, line);
    if (!published.ok()) {
      spdlog::error("audit checkpoint for seq {} not published to {}: {}", head.seq, sink->name(),
                    published.message());
      if (first.ok()) first = published;
    }
  }
  // Even after a sink failure the checkpoint exists (other sinks have it);
  // the next one is due after another `every_records` either way.
  last_ = std::move(head);
  last_seq_.store(last_->seq, std::memory_order_release);
  due_seq_.store(last_->seq + policy_.every_records, std::memory_order_release);
  signed_.fetch_add(1, std::memory_order_relaxed);
  return first;
}

void Checkpointer::Start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { Run(); });
}

void Checkpointer::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  (void)CheckpointNow();
}

void Checkpointer::OnDurable(uint64_t seq) {
  if (seq < due_seq_.load(std::memory_order_acquire)) return;
  {
    std::lock_guard lock(mu_);
    if (due_) return;
    due_ = true;
  }
  wake_.notify_one();
}

void Checkpointer::Run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    wake_.wait_for(lock, policy_.every_seconds, [this] { return stopping_ || due_; });
    if (stopping_) break;
    due_ = false;
    lock.unlock();
    (void)CheckpointNow();  // failures are logged by CheckpointNow
    lock.lock();
  }
}

}  // namespace airlock
