// The periodic checkpoint signer. It knows no audit backend: it reads the
// backend's durable head through a callback, signs it with CheckpointSigner
// and publishes the checkpoint to every sink (the checkpoints file beside the
// log, the kernel's log output, syslog; an exporter later). Signing happens
// on its own thread, never on the append path: a backend only reports the
// seq it made durable (OnDurable, one atomic load and compare), and the
// checkpointer wakes when `every_records` records have accumulated or
// `every_seconds` have passed, whichever comes first. A head that has not
// moved since the last checkpoint is not signed again.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "airlock/cpp/status.hpp"
#include "kernel/audit/audit_log.h"
#include "kernel/audit/checkpoint.h"
#include "kernel/audit/checkpoint_file.h"

namespace airlock {

// One place a checkpoint is published.
class CheckpointSink {
 public:
  virtual ~CheckpointSink() = default;
  // `line` is FormatCheckpointLine(checkpoint).
  virtual Status Publish(const AuditCheckpoint& checkpoint, const std::string& line) = 0;
  virtual std::string name() const = 0;
};

// Sinks that ship checkpoints out of the state directory: the kernel's log
// output (spdlog, normally stdout) and syslog(3). Each line reads
// "audit checkpoint {...}" (kShippedCheckpointTag), which
// ReadShippedCheckpoints finds again.
std::unique_ptr<CheckpointSink> MakeLogCheckpointSink();
// The checkpoints file beside the log.
std::unique_ptr<CheckpointSink> MakeFileCheckpointSink(std::unique_ptr<CheckpointFileWriter> file);
std::unique_ptr<CheckpointSink> MakeSyslogCheckpointSink();

struct CheckpointPolicy {
  uint64_t every_records = 10000;
  std::chrono::seconds every_seconds{60};
};

class Checkpointer : public AuditDurableListener {
 public:
  // `head` returns the backend's durable head; `last` is the newest
  // checkpoint already published (nullopt: none).
  Checkpointer(std::unique_ptr<CheckpointSigner> signer, std::function<AuditHead()> head,
               std::vector<std::unique_ptr<CheckpointSink>> sinks, CheckpointPolicy policy,
               std::optional<AuditHead> last);
  ~Checkpointer() override;
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // Signs and publishes the current head unless it was checkpointed already.
  // Returns the first sink failure (every sink is still tried).
  Status CheckpointNow();
  // Starts the periodic thread.
  void Start();
  // Stops the thread and signs a last checkpoint. Idempotent.
  void Stop();

  void OnDurable(uint64_t seq) override;

  // Seq of the newest published checkpoint (0 before the first).
  uint64_t last_checkpoint_seq() const { return last_seq_.load(std::memory_order_acquire); }
  uint64_t checkpoints_signed() const { return signed_.load(std::memory_order_relaxed); }

 private:
  void Run();

  const std::unique_ptr<CheckpointSigner> signer_;
  const std::function<AuditHead()> head_;
  const CheckpointPolicy policy_;

  std::mutex sign_mu_;                                  // one checkpoint at a time, in head order
  std::vector<std::unique_ptr<CheckpointSink>> sinks_;  // guarded by sign_mu_
  std::optional<AuditHead> last_;                       // guarded by sign_mu_

  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;  // guarded by mu_
  bool due_ = false;       // guarded by mu_
  std::thread thread_;

  std::atomic<uint64_t> last_seq_{0};
  // OnDurable wakes the thread once a seq reaches this.
  std::atomic<uint64_t> due_seq_{0};
  std::atomic<uint64_t> signed_{0};
};

}  // namespace airlock
