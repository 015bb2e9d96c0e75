// The kernel <-> enclave control channel: length-prefixed frames over a
// connected SOCK_STREAM unix socket.
//
// WIRE FORMAT: u32 little-endian length (of type + payload, so >= 1) | u8 type
// | payload. A reader refuses frames longer than its limit before allocating
// anything, so a hostile peer cannot make it allocate unbounded memory.
//
// FRAMES (kernel -> enclave: K, enclave -> kernel: E):
//   K Spec         JSON enclave spec (see enclave_spec.h)
//   E Progress     JSON {"dataset","rows","bytes","elapsed_ms","state","error"?}
//                  or {"audit":{...}} (a connector's audit event)
//   E State        JSON {"state":"ingesting|sealed|failed|job_finished",...}
//   K Query        JSON {"id","sql"}
//   E ResultSchema IdPayload(id, EncodeSchema(fields))
//   E ResultBatch  IdPayload(id, EncodeBatch(batch))
//   E ResultEnd    JSON {"id","rows"} or {"id","rows","error","code"}
//   K Cancel       JSON {"id"}
//   K Tables       JSON {"id"}
//   E TablesResult JSON {"id","tables":[...]} or {"id","error","code"}
//   K Shutdown     empty
//   K Credit       JSON {"id","bytes"}: the kernel consumed `bytes` of the
//                  query's ResultBatch payloads
//   E Dial         JSON {"id","endpoint":"host:port"}: a connector inside the
//                  enclave connected to the forwarder of an approved endpoint
//   K DialResult   JSON {"id"} carrying a connected TCP socket (SCM_RIGHTS),
//                  or {"id","error","code"} without one
// An IdPayload is u16 little-endian id length | id | bytes.
//
// FLOW CONTROL: per query, the enclave keeps at most kResultWindowBytes of
// ResultBatch payload unacknowledged (it may always send one frame when
// nothing is outstanding), and the kernel returns Credit as its consumer takes
// batches. One slow consumer therefore never stalls the shared socket, and the
// kernel never buffers more than kResultWindowBytes + kMaxFrameBytes per query.
//
// DESCRIPTORS: a frame may carry one descriptor (SCM_RIGHTS on its first
// bytes). Only the kernel sends them; a receiver closes any it did not expect
// simply by dropping the frame.
//
// Thread-safety: Send may be called from several threads at once (frames are
// never interleaved); Receive from one thread at a time; Shutdown from any.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <mutex>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "airlock/cpp/status.hpp"

namespace airlock::enclave {

enum class FrameType : uint8_t {
  kSpec = 1,
  kProgress = 2,
  kState = 3,
  kQuery = 4,
  kResultSchema = 5,
  kResultBatch = 6,
  kResultEnd = 7,
  kCancel = 8,
  kTables = 9,
  kTablesResult = 10,
  kShutdown = 11,
  kCredit = 12,
  kDial = 13,
  kDialResult = 14,
};

// An owned descriptor: closed when destroyed. Move-only.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { Reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.Release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      Reset();
      fd_ = other.Release();
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void Reset(int fd = -1);

 private:
  int fd_ = -1;
};

const char* FrameTypeName(FrameType type);

// Largest frame (type + payload) either side accepts by default.
inline constexpr size_t kMaxFrameBytes = 64 * 1024 * 1024;
// Unacknowledged ResultBatch payload bytes per query (see FLOW CONTROL).
inline constexpr size_t kResultWindowBytes = 16 * 1024 * 1024;
// Longest query id accepted in frames.
inline constexpr size_t kMaxQueryIdBytes = 128;

inline constexpr std::chrono::milliseconds kWaitForever{-1};
inline constexpr std::chrono::milliseconds kDefaultSendTimeout{30000};
// Once a frame has started, the rest of it must arrive within this bound.
inline constexpr std::chrono::milliseconds kFrameCompletionTimeout{30000};

struct Frame {
  FrameType type = FrameType::kShutdown;
  std::string payload;
  UniqueFd fd;  // a descriptor that came with the frame, if any
};

class FrameChannel {
 public:
  // Takes ownership of `fd` (closed by the destructor). `max_frame_bytes`
  // bounds frames in both directions.
  explicit FrameChannel(int fd, size_t max_frame_bytes = kMaxFrameBytes);
  ~FrameChannel();
  FrameChannel(const FrameChannel&) = delete;
  FrameChannel& operator=(const FrameChannel&) = delete;

  // Writes one frame whose payload is the concatenation of `parts`.
  // Unavailable when the peer is gone or after Shutdown; DeadlineExceeded when
  // the peer did not take the frame within `timeout` (the channel is then
  // unusable: a partial frame may have been written, so it shuts down);
  // ResourceExhausted when the frame exceeds the limit (nothing written).
  Status Send(FrameType type, std::initializer_list<std::string_view> parts,
              std::chrono::milliseconds timeout = kDefaultSendTimeout);
  Status Send(FrameType type, std::string_view payload,
              std::chrono::milliseconds timeout = kDefaultSendTimeout) {
    return Send(type, {payload}, timeout);
  }
  Status SendJson(FrameType type, const nlohmann::json& payload,
                  std::chrono::milliseconds timeout = kDefaultSendTimeout);
  // Sends `payload` with a duplicate of `fd` attached (the caller keeps `fd`).
  Status SendWithFd(FrameType type, std::string_view payload, int fd,
                    std::chrono::milliseconds timeout = kDefaultSendTimeout);

  // Reads one frame, waiting up to `idle_timeout` for it to start (kWaitForever:
  // no bound) and kFrameCompletionTimeout for it to finish.
  // Unavailable: the peer closed (cleanly or mid-frame) or Shutdown was called.
  // DeadlineExceeded: nothing arrived within `idle_timeout` (channel still usable)
  //   or a started frame stalled (channel unusable).
  // InvalidArgument: protocol violation (empty, oversized or unknown frame);
  //   the channel is unusable afterwards.
  Result<Frame> Receive(std::chrono::milliseconds idle_timeout = kWaitForever);

  // Shuts the socket down in both directions: blocked Send/Receive calls return
  // Unavailable. Idempotent; the descriptor stays open until destruction.
  void Shutdown();
  bool is_shut_down() const { return shut_down_.load(); }

 private:
  // Reads exactly `length` bytes; see Receive for the statuses.
  Status ReadFully(char* data, size_t length, std::chrono::steady_clock::time_point deadline,
                   bool frame_started);
  Status SendFrame(FrameType type, std::initializer_list<std::string_view> parts, int attach_fd,
                   std::chrono::milliseconds timeout);

  const int fd_;
  const size_t max_frame_bytes_;
  std::mutex send_mutex_;  // serialises whole frames
  std::atomic<bool> shut_down_{false};
  UniqueFd received_fd_;  // reader side: the descriptor of the frame being read
};

// IdPayload helpers (see the header comment).
std::string EncodeIdHeader(std::string_view id);
// Splits an IdPayload; InvalidArgument when malformed or the id is too long.
Status DecodeIdPayload(std::string_view payload, std::string_view* id, std::string_view* rest);

inline constexpr int kMaxJsonDepth = 64;
// Parses a JSON object payload without throwing; InvalidArgument when it is
// not an object or nests deeper than kMaxJsonDepth.
Result<nlohmann::json> ParseJsonObject(std::string_view payload, std::string_view what);

// The inverse of StatusCodeName; kUnknown for names it does not know.
StatusCode StatusCodeFromName(std::string_view name);

}  // namespace airlock::enclave
