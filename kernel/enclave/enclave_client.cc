#include "kernel/enclave/enclave_client.h"

#include <charconv>
#include <cstdio>
#include <deque>

#include "kernel/enclave/batch_codec.h"

namespace airlock::enclave {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::chrono::milliseconds kCancelPoll{50};
constexpr std::chrono::milliseconds kControlSendTimeout{5000};

std::string BoundedText(const std::string& text) {
  if (text.size() <= EnclaveClient::kMaxErrorTextBytes) return text;
  std::string bounded;
  bounded.reserve(EnclaveClient::kMaxErrorTextBytes + 3);
  bounded.append(text, 0, EnclaveClient::kMaxErrorTextBytes);
  bounded.append(3, '.');
  return bounded;
}

// The Status a ResultEnd / TablesResult error document stands for.
Status ErrorFromDocument(const nlohmann::json& doc) {
  auto error = doc.find("error");
  if (error == doc.end() || error->is_null()) return Status::Ok();
  std::string message = error->is_string() ? error->get<std::string>() : "unspecified error";
  StatusCode code = StatusCode::kUnknown;
  if (auto c = doc.find("code"); c != doc.end() && c->is_string()) {
    code = StatusCodeFromName(c->get<std::string>());
  }
  if (code == StatusCode::kOk) code = StatusCode::kUnknown;  // an error is never ok
  return Status(code, BoundedText(message));
}

Result<uint64_t> RowsFromDocument(const nlohmann::json& doc) {
  auto rows = doc.find("rows");
  if (rows == doc.end()) return uint64_t{0};
  if (!rows->is_number_unsigned()) {
    if (rows->is_number_integer() && rows->get<int64_t>() == 0) return uint64_t{0};
    return Status::Internal("enclave sent a result end with invalid rows");
  }
  return rows->get<uint64_t>();
}

Status Malformed(const Status& why) {
  return Status::Internal("enclave sent a malformed result: " + why.message());
}

}  // namespace

// One outstanding Query or Tables call: frames for its id, queued by the
// reader for the caller's thread.
struct EnclaveClient::Pending {
  explicit Pending(FrameType end) : end_type(end) {}
  const FrameType end_type;  // kResultEnd or kTablesResult

  std::mutex mutex;
  std::condition_variable cv;
  std::deque<Frame> frames;  // GUARDED_BY(mutex)
  size_t queued_bytes = 0;   // GUARDED_BY(mutex)
  bool abandoned = false;    // GUARDED_BY(mutex): the caller left
  Status failure;            // GUARDED_BY(mutex): the channel ended
};

// A job result being received on the reader thread.
struct EnclaveClient::JobResult {
  sdk::BatchConsumer* consumer = nullptr;
  std::vector<arrow::Field> fields;
  bool has_schema = false;
  bool failed = false;  // delivered an error already; ignore the rest
  uint64_t rows = 0;
};

EnclaveClient::EnclaveClient(int fd, EnclaveEvents events)
    : channel_(fd), events_(std::move(events)) {}

Result<std::unique_ptr<EnclaveClient>> EnclaveClient::Start(int fd, EnclaveEvents events) {
  if (fd < 0) return Status::InvalidArgument("EnclaveClient needs a connected descriptor");
  std::unique_ptr<EnclaveClient> client(new EnclaveClient(fd, std::move(events)));
  EnclaveClient* self = client.get();
  client->reader_ = std::thread([self] { self->ReaderLoop(); });
  return client;
}

EnclaveClient::~EnclaveClient() {
  Close();
}

void EnclaveClient::Close() {
  std::call_once(close_once_, [this] {
    closing_.store(true);
    if (alive_.load()) {
      (void)channel_.Send(FrameType::kShutdown, std::string_view(),
                          std::chrono::milliseconds(1000));
    }
    channel_.Shutdown();
    if (reader_.joinable()) reader_.join();
    FailAll(Status::Cancelled("the enclave client was closed"));
  });
}

std::string EnclaveClient::NextId(char prefix) {
  char buf[32];
  const int n = std::snprintf(buf, sizeof buf, "%c%llu", prefix,
                              static_cast<unsigned long long>(next_id_.fetch_add(1)));
  return std::string(buf, static_cast<size_t>(n));
}

std::shared_ptr<EnclaveClient::Pending> EnclaveClient::Register(std::string id,
                                                                FrameType end_type) {
  auto pending = std::make_shared<Pending>(end_type);
  std::lock_guard<std::mutex> lock(mutex_);
  if (!dead_.ok()) {
    pending->failure = dead_;
  } else {
    pending_.emplace(std::move(id), pending);
  }
  return pending;
}

void EnclaveClient::Unregister(const std::string& id) {
  std::shared_ptr<Pending> pending;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    pending = it->second;
    pending_.erase(it);
  }
  std::lock_guard<std::mutex> lock(pending->mutex);
  pending->abandoned = true;
  pending->frames.clear();
  pending->queued_bytes = 0;
  pending->cv.notify_all();
}

void EnclaveClient::FailAll(const Status& status) {
  std::map<std::string, std::shared_ptr<Pending>, std::less<>> pending;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (dead_.ok()) dead_ = status;
    pending.swap(pending_);
  }
  for (auto& [id, p] : pending) {
    std::lock_guard<std::mutex> lock(p->mutex);
    if (p->failure.ok()) p->failure = status;
    p->cv.notify_all();
  }
}

Status EnclaveClient::SendSpec(const nlohmann::json& spec) {
  if (!alive()) return Status::Unavailable("enclave channel closed");
  return channel_.SendJson(FrameType::kSpec, spec, kControlSendTimeout);
}

Status EnclaveClient::Query(std::string_view sql, sdk::BatchConsumer& consumer,
                            std::chrono::milliseconds timeout) {
  if (!alive()) return Status::Unavailable("enclave channel closed");
  timeout = std::min<std::chrono::milliseconds>(timeout, kMaxTimeout);
  const std::string id = NextId('q');
  std::shared_ptr<Pending> pending = Register(id, FrameType::kResultEnd);
  const Clock::time_point deadline = Clock::now() + timeout;
  bool sent_query = false;

  // Leaves early: tells the enclave to stop and forgets the id.
  auto leave = [&](Status status) {
    if (sent_query && alive()) {
      (void)channel_.SendJson(FrameType::kCancel, {{"id", id}}, kControlSendTimeout);
    }
    Unregister(id);
    return status;
  };

  Status sent =
      channel_.SendJson(FrameType::kQuery, {{"id", id}, {"sql", sql}}, kControlSendTimeout);
  if (!sent.ok())
    return leave(sent.code() == StatusCode::kResourceExhausted
                     ? sent
                     : Status::Unavailable("enclave channel closed"));
  sent_query = true;

  std::vector<arrow::Field> fields;
  bool has_schema = false;
  uint64_t rows = 0;
  for (;;) {
    if (consumer.IsCancelled()) return leave(Status::Cancelled("the query was cancelled"));
    Frame frame;
    {
      std::unique_lock<std::mutex> lock(pending->mutex);
      const Clock::time_point wake = std::min(deadline, Clock::now() + kCancelPoll);
      pending->cv.wait_until(lock, wake,
                             [&] { return !pending->frames.empty() || !pending->failure.ok(); });
      if (pending->frames.empty()) {
        if (!pending->failure.ok()) {
          Status failure = pending->failure;
          lock.unlock();
          return leave(failure);  // sends Cancel only while the channel lives
        }
        if (Clock::now() >= deadline) {
          lock.unlock();
          return leave(Status::DeadlineExceeded("the query did not finish within " +
                                                std::to_string(timeout.count()) + " ms"));
        }
        continue;
      }
      frame = std::move(pending->frames.front());
      pending->frames.pop_front();
      pending->queued_bytes -= frame.payload.size();
    }

    if (frame.type == FrameType::kResultEnd) {
      Unregister(id);
      auto doc = ParseJsonObject(frame.payload, "result end");
      if (!doc.ok()) return Malformed(doc.status());
      Status verdict = ErrorFromDocument(*doc);
      if (!verdict.ok()) return verdict;
      auto reported = RowsFromDocument(*doc);
      if (!reported.ok()) return reported.status();
      if (!has_schema) return Malformed(Status::Internal("a successful result without a schema"));
      if (*reported != rows) {
        return Malformed(Status::Internal("it reported " + std::to_string(*reported) +
                                          " rows but delivered " + std::to_string(rows)));
      }
      return Status::Ok();
    }

    std::string_view frame_id, rest;
    Status split = DecodeIdPayload(frame.payload, &frame_id, &rest);
    if (!split.ok()) return leave(Malformed(split));
    if (frame.type == FrameType::kResultSchema) {
      if (has_schema) return leave(Malformed(Status::Internal("a second schema")));
      auto decoded = DecodeSchema(rest);
      if (!decoded.ok()) return leave(Malformed(decoded.status()));
      fields = std::move(decoded).value();
      has_schema = true;
      Status accepted = consumer.OnSchema(arrow::MakeStructSchema(fields));
      if (!accepted.ok()) return leave(accepted);
    } else {  // kResultBatch (the reader queues nothing else)
      if (!has_schema) return leave(Malformed(Status::Internal("a batch before its schema")));
      const uint64_t frame_bytes = frame.payload.size();
      // The codec aligns relative to the start of its own string.
      frame.payload.erase(0, frame.payload.size() - rest.size());
      auto decoded = DecodeBatch(fields, std::move(frame.payload));
      if (!decoded.ok()) return leave(Malformed(decoded.status()));
      rows += static_cast<uint64_t>(decoded->get()->length);
      Status accepted = consumer.OnBatch(std::move(decoded).value());
      if (!accepted.ok()) return leave(accepted);
      // Taken: the enclave may send that much more.
      (void)channel_.SendJson(FrameType::kCredit, {{"id", id}, {"bytes", frame_bytes}},
                              kControlSendTimeout);
    }
    if (Clock::now() >= deadline) {
      return leave(Status::DeadlineExceeded("the query did not finish within " +
                                            std::to_string(timeout.count()) + " ms"));
    }
  }
}

Result<nlohmann::json> EnclaveClient::Tables(std::chrono::milliseconds timeout) {
  if (!alive()) return Status::Unavailable("enclave channel closed");
  timeout = std::min<std::chrono::milliseconds>(timeout, kMaxTimeout);
  const std::string id = NextId('t');
  std::shared_ptr<Pending> pending = Register(id, FrameType::kTablesResult);
  Status sent = channel_.SendJson(FrameType::kTables, {{"id", id}}, kControlSendTimeout);
  if (!sent.ok()) {
    Unregister(id);
    return Status::Unavailable("enclave channel closed");
  }
  Frame frame;
  {
    std::unique_lock<std::mutex> lock(pending->mutex);
    pending->cv.wait_for(lock, timeout,
                         [&] { return !pending->frames.empty() || !pending->failure.ok(); });
    if (pending->frames.empty()) {
      Status failure = pending->failure.ok()
                           ? Status::DeadlineExceeded("the enclave did not list its tables in time")
                           : pending->failure;
      lock.unlock();
      Unregister(id);
      return failure;
    }
    frame = std::move(pending->frames.front());
  }
  Unregister(id);
  auto doc = ParseJsonObject(frame.payload, "tables result");
  if (!doc.ok()) return Malformed(doc.status());
  Status verdict = ErrorFromDocument(*doc);
  if (!verdict.ok()) return verdict;
  auto tables = doc->find("tables");
  if (tables == doc->end() || !tables->is_array()) {
    return Malformed(Status::Internal("tables result without a tables array"));
  }
  for (const auto& table : *tables) {
    if (!table.is_object() || !table.contains("name") || !table["name"].is_string()) {
      return Malformed(Status::Internal("a table entry without a name"));
    }
  }
  return nlohmann::json{{"tables", std::move(*tables)}};
}

void EnclaveClient::ReaderLoop() {
  Status ended;
  for (;;) {
    auto frame = channel_.Receive();
    if (!frame.ok()) {
      ended =
          frame.status().code() == StatusCode::kInvalidArgument
              ? Status::Unavailable("enclave channel closed after a " + frame.status().message())
              : Status::Unavailable("enclave channel closed");
      break;
    }
    Status dispatched = Dispatch(std::move(frame).value());
    if (!dispatched.ok()) {
      ended = Status::Unavailable("enclave channel closed after a protocol violation: " +
                                  dispatched.message());
      channel_.Shutdown();
      break;
    }
  }
  alive_.store(false);
  if (closing_.load()) return;  // Close() reports Cancelled to in-flight calls
  FailAll(ended);
  // Job results still open end here too.
  for (auto& [index, job] : jobs_) {
    if (!job->failed && events_.on_job_end) events_.on_job_end(index, ended, job->rows);
  }
  jobs_.clear();
  if (events_.on_state) {
    try {
      events_.on_state({{"state", "failed"}, {"reason", ended.message()}});
    } catch (...) {
    }
  }
}

// Routes one frame. A non-ok return is a protocol violation that ends the channel.
Status EnclaveClient::Dispatch(Frame frame) {
  try {
    switch (frame.type) {
      case FrameType::kProgress: {
        AIRLOCK_ASSIGN_OR_RETURN(nlohmann::json doc, ParseJsonObject(frame.payload, "progress"));
        if (auto audit = doc.find("audit"); audit != doc.end()) {
          if (!audit->is_object()) return Status::InvalidArgument("audit event is not an object");
          if (events_.on_audit) events_.on_audit(*audit);
        } else if (events_.on_progress) {
          events_.on_progress(doc);
        }
        return Status::Ok();
      }
      case FrameType::kState: {
        AIRLOCK_ASSIGN_OR_RETURN(nlohmann::json doc, ParseJsonObject(frame.payload, "state"));
        auto state = doc.find("state");
        if (state == doc.end() || !state->is_string()) {
          return Status::InvalidArgument("state frame without a state");
        }
        if (events_.on_state) events_.on_state(doc);
        return Status::Ok();
      }
      case FrameType::kResultSchema:
      case FrameType::kResultBatch:
      case FrameType::kResultEnd:
      case FrameType::kTablesResult: {
        std::string id;
        std::string_view rest;
        if (frame.type == FrameType::kResultEnd || frame.type == FrameType::kTablesResult) {
          AIRLOCK_ASSIGN_OR_RETURN(nlohmann::json doc, ParseJsonObject(frame.payload, "result"));
          auto it = doc.find("id");
          if (it == doc.end() || !it->is_string()) {
            return Status::InvalidArgument("result frame without an id");
          }
          id = it->get<std::string>();
        } else {
          std::string_view raw_id;
          AIRLOCK_RETURN_IF_ERROR(DecodeIdPayload(frame.payload, &raw_id, &rest));
          id = std::string(raw_id);
        }
        // Job results ("job-<n>") go to the job events.
        if (id.rfind("job-", 0) == 0 && frame.type != FrameType::kTablesResult) {
          size_t index = 0;
          const char* begin = id.data() + 4;
          const char* end = id.data() + id.size();
          auto [ptr, ec] = std::from_chars(begin, end, index);
          if (ec == std::errc() && ptr == end && begin != end) {
            return DispatchJob(index, frame, rest);
          }
        }
        std::shared_ptr<Pending> pending;
        {
          std::lock_guard<std::mutex> lock(mutex_);
          auto it = pending_.find(id);
          if (it != pending_.end()) pending = it->second;
        }
        if (pending == nullptr) return Status::Ok();  // late frames of an abandoned call
        const bool end_frame =
            frame.type == FrameType::kResultEnd || frame.type == FrameType::kTablesResult;
        if (end_frame && frame.type != pending->end_type) return Status::Ok();
        std::lock_guard<std::mutex> lock(pending->mutex);
        if (pending->abandoned || !pending->failure.ok()) return Status::Ok();
        // The reader never waits for a caller: credits bound what may arrive.
        if (pending->queued_bytes + frame.payload.size() > kMaxBufferedResultBytes) {
          pending->failure = Malformed(Status::Internal("it ignored flow control"));
          pending->frames.clear();
          pending->queued_bytes = 0;
          pending->cv.notify_all();
          return Status::Ok();
        }
        pending->queued_bytes += frame.payload.size();
        pending->frames.push_back(std::move(frame));
        pending->cv.notify_all();
        return Status::Ok();
      }
      case FrameType::kDial: {
        // Any descriptor the enclave attached closes with `frame`.
        AIRLOCK_ASSIGN_OR_RETURN(nlohmann::json doc, ParseJsonObject(frame.payload, "dial"));
        auto id = doc.find("id");
        auto endpoint = doc.find("endpoint");
        if (id == doc.end() || !id->is_string() || id->get_ref<const std::string&>().empty() ||
            id->get_ref<const std::string&>().size() > kMaxQueryIdBytes) {
          return Status::InvalidArgument("dial frame without a valid id");
        }
        if (endpoint == doc.end() || !endpoint->is_string() ||
            endpoint->get_ref<const std::string&>().size() > kMaxEndpointBytes) {
          (void)ReplyDial(*id, Status::PermissionDenied("the dial names no valid endpoint"));
          return Status::Ok();
        }
        if (!events_.on_dial) {
          (void)ReplyDial(*id, Status::PermissionDenied("this enclave has no egress"));
          return Status::Ok();
        }
        events_.on_dial(id->get<std::string>(), endpoint->get<std::string>());
        return Status::Ok();
      }
      default:
        return Status::InvalidArgument(std::string("unexpected ") + FrameTypeName(frame.type) +
                                       " frame from the enclave");
    }
  } catch (const std::exception& e) {
    // An event handler threw, or JSON access failed: contain it here.
    return Status::Internal(std::string("while handling an enclave frame: ") + e.what());
  }
}

Status EnclaveClient::ReplyDial(const std::string& id, Result<UniqueFd> connected) {
  if (!connected.ok()) {
    nlohmann::json reply = {{"id", id},
                            {"error", connected.status().message()},
                            {"code", StatusCodeName(connected.status().code())}};
    return channel_.SendJson(FrameType::kDialResult, reply);
  }
  const nlohmann::json reply = {{"id", id}};
  return channel_.SendWithFd(FrameType::kDialResult, reply.dump(), connected->get());
}

Status EnclaveClient::DispatchJob(size_t index, Frame& frame, std::string_view rest) {
  if (jobs_.count(index) == 0 && jobs_.size() >= kMaxOpenJobResults) {
    return Status::InvalidArgument("too many job results open at once");
  }
  auto& slot = jobs_[index];
  if (slot == nullptr) slot = std::make_unique<JobResult>();
  JobResult& job = *slot;
  auto fail = [&](const Status& status) {
    if (!job.failed && events_.on_job_end) events_.on_job_end(index, status, job.rows);
    job.failed = true;
    return Status::Ok();  // a bad job result fails that result, not the channel
  };
  switch (frame.type) {
    case FrameType::kResultSchema: {
      if (job.failed) return Status::Ok();
      if (job.has_schema) return fail(Malformed(Status::Internal("a second schema")));
      auto decoded = DecodeSchema(rest);
      if (!decoded.ok()) return fail(Malformed(decoded.status()));
      job.fields = std::move(decoded).value();
      job.has_schema = true;
      job.consumer = events_.on_job_result ? events_.on_job_result(index) : nullptr;
      if (job.consumer != nullptr) {
        Status accepted = job.consumer->OnSchema(arrow::MakeStructSchema(job.fields));
        if (!accepted.ok()) return fail(accepted);
      }
      return Status::Ok();
    }
    case FrameType::kResultBatch: {
      if (job.failed) return Status::Ok();
      if (!job.has_schema) return fail(Malformed(Status::Internal("a batch before its schema")));
      frame.payload.erase(0, frame.payload.size() - rest.size());
      auto decoded = DecodeBatch(job.fields, std::move(frame.payload));
      if (!decoded.ok()) return fail(Malformed(decoded.status()));
      job.rows += static_cast<uint64_t>(decoded->get()->length);
      if (job.consumer != nullptr) {
        Status accepted = job.consumer->OnBatch(std::move(decoded).value());
        if (!accepted.ok()) return fail(accepted);
      }
      return Status::Ok();
    }
    default: {  // kResultEnd
      std::unique_ptr<JobResult> finished = std::move(slot);
      jobs_.erase(index);
      if (finished->failed) return Status::Ok();
      auto doc = ParseJsonObject(frame.payload, "result end");
      Status verdict = doc.ok() ? ErrorFromDocument(*doc) : Malformed(doc.status());
      if (verdict.ok() && !finished->has_schema) {
        verdict = Malformed(Status::Internal("a successful result without a schema"));
      }
      if (events_.on_job_end) events_.on_job_end(index, verdict, finished->rows);
      return Status::Ok();
    }
  }
}

}  // namespace airlock::enclave
