#include "kernel/enclave/channel.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace airlock::enclave {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kHeaderBytes = 5;  // u32 length + u8 type

bool KnownFrameType(uint8_t raw) {
  return raw >= static_cast<uint8_t>(FrameType::kSpec) &&
         raw <= static_cast<uint8_t>(FrameType::kDialResult);
}

Clock::time_point DeadlineAfter(std::chrono::milliseconds timeout) {
  if (timeout.count() < 0) return Clock::time_point::max();
  return Clock::now() + timeout;
}

// Milliseconds poll() should wait until `deadline`: -1 for none, 0 when past.
int PollTimeout(Clock::time_point deadline) {
  if (deadline == Clock::time_point::max()) return -1;
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  if (left <= 0) return 0;
  return left > 60000 ? 60000 : static_cast<int>(left);  // re-checked in the loop
}

// Waits for `events` on `fd`. Returns 1 when ready, 0 on deadline, -1 on error.
int WaitFor(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    const int timeout = PollTimeout(deadline);
    pollfd pfd{fd, events, 0};
    const int rc = ::poll(&pfd, 1, timeout);
    if (rc > 0) return 1;  // readiness, hang-up and errors all surface in recv/send
    if (rc < 0 && errno != EINTR) return -1;
    if (rc == 0 && timeout == 0) return 0;
    if (rc == 0 && Clock::now() >= deadline) return 0;
  }
}

}  // namespace

const char* FrameTypeName(FrameType type) {
  switch (type) {
    case FrameType::kSpec:
      return "spec";
    case FrameType::kProgress:
      return "progress";
    case FrameType::kState:
      return "state";
    case FrameType::kQuery:
      return "query";
    case FrameType::kResultSchema:
      return "result_schema";
    case FrameType::kResultBatch:
      return "result_batch";
    case FrameType::kResultEnd:
      return "result_end";
    case FrameType::kCancel:
      return "cancel";
    case FrameType::kTables:
      return "tables";
    case FrameType::kTablesResult:
      return "tables_result";
    case FrameType::kShutdown:
      return "shutdown";
    case FrameType::kCredit:
      return "credit";
    case FrameType::kDial:
      return "dial";
    case FrameType::kDialResult:
      return "dial_result";
  }
  return "unknown";
}

void UniqueFd::Reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

FrameChannel::FrameChannel(int fd, size_t max_frame_bytes)
    : fd_(fd), max_frame_bytes_(max_frame_bytes) {}

FrameChannel::~FrameChannel() {
  if (fd_ >= 0) ::close(fd_);
}

void FrameChannel::Shutdown() {
  if (!shut_down_.exchange(true) && fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
}

Status FrameChannel::Send(FrameType type, std::initializer_list<std::string_view> parts,
                          std::chrono::milliseconds timeout) {
  return SendFrame(type, parts, -1, timeout);
}

Status FrameChannel::SendWithFd(FrameType type, std::string_view payload, int fd,
                                std::chrono::milliseconds timeout) {
  if (fd < 0) return Status::InvalidArgument("no descriptor to send");
  return SendFrame(type, {payload}, fd, timeout);
}

Status FrameChannel::SendFrame(FrameType type, std::initializer_list<std::string_view> parts,
                               int attach_fd, std::chrono::milliseconds timeout) {
  size_t payload_bytes = 0;
  for (std::string_view part : parts) payload_bytes += part.size();
  if (payload_bytes + 1 > max_frame_bytes_) {
    return Status::ResourceExhausted("frame of " + std::to_string(payload_bytes + 1) +
                                     " bytes exceeds the channel limit of " +
                                     std::to_string(max_frame_bytes_));
  }
  const uint32_t length = static_cast<uint32_t>(payload_bytes + 1);
  char header[kHeaderBytes] = {static_cast<char>(length & 0xff),
                               static_cast<char>((length >> 8) & 0xff),
                               static_cast<char>((length >> 16) & 0xff),
                               static_cast<char>((length >> 24) & 0xff), static_cast<char>(type)};
  const Clock::time_point deadline = DeadlineAfter(timeout);

  std::lock_guard<std::mutex> lock(send_mutex_);
  if (shut_down_.load()) return Status::Unavailable("channel is shut down");
  auto write_all = [&](std::string_view bytes) -> Status {
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n;
      if (attach_fd >= 0) {
        // The descriptor rides on the first bytes of the frame.
        iovec io{const_cast<char*>(bytes.data() + done), bytes.size() - done};
        alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
        msghdr msg{};
        msg.msg_iov = &io;
        msg.msg_iovlen = 1;
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(sizeof(int));
        std::memcpy(CMSG_DATA(cmsg), &attach_fd, sizeof(int));
        n = ::sendmsg(fd_, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) attach_fd = -1;
      } else {
        n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL | MSG_DONTWAIT);
      }
      if (n > 0) {
        done += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        const int ready = WaitFor(fd_, POLLOUT, deadline);
        if (ready == 1) continue;
        if (ready == 0) {
          // A partial frame may be on the wire: the stream is no longer framed.
          Shutdown();
          return Status::DeadlineExceeded("peer did not read the channel in time");
        }
      }
      return Status::Unavailable(std::string("channel write failed: ") +
                                 (n < 0 ? std::strerror(errno) : "closed"));
    }
    return Status::Ok();
  };
  AIRLOCK_RETURN_IF_ERROR(write_all(std::string_view(header, kHeaderBytes)));
  for (std::string_view part : parts) AIRLOCK_RETURN_IF_ERROR(write_all(part));
  return Status::Ok();
}

Status FrameChannel::SendJson(FrameType type, const nlohmann::json& payload,
                              std::chrono::milliseconds timeout) {
  // Replacement of invalid UTF-8 keeps dump() from throwing on odd plugin text.
  return Send(type, payload.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
              timeout);
}

Status FrameChannel::ReadFully(char* data, size_t length, Clock::time_point deadline,
                               bool frame_started) {
  size_t done = 0;
  while (done < length) {
    iovec io{data + done, length - done};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    msghdr msg{};
    msg.msg_iov = &io;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(fd_, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (n > 0) {
      // Keep at most one descriptor per frame; Linux closes any that did not
      // fit the control buffer (MSG_CTRUNC).
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; ++i) {
          int received;
          std::memcpy(&received, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
          received_fd_.Reset(received);
        }
      }
      done += static_cast<size_t>(n);
      frame_started = true;
      deadline = std::min(deadline, Clock::now() + kFrameCompletionTimeout);
      continue;
    }
    if (n == 0) {
      return Status::Unavailable(frame_started ? "channel closed in the middle of a frame"
                                               : "channel closed");
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      const int ready = WaitFor(fd_, POLLIN, deadline);
      if (ready == 1) continue;
      if (ready == 0) {
        if (frame_started) {
          Shutdown();
          return Status::DeadlineExceeded("a frame stalled half-way");
        }
        return Status::DeadlineExceeded("no frame arrived in time");
      }
    }
    return Status::Unavailable(std::string("channel read failed: ") + std::strerror(errno));
  }
  return Status::Ok();
}

Result<Frame> FrameChannel::Receive(std::chrono::milliseconds idle_timeout) {
  if (shut_down_.load()) return Status::Unavailable("channel is shut down");
  unsigned char header[kHeaderBytes];
  AIRLOCK_RETURN_IF_ERROR(ReadFully(reinterpret_cast<char*>(header), kHeaderBytes,
                                    DeadlineAfter(idle_timeout), /*frame_started=*/false));
  const uint32_t length =
      static_cast<uint32_t>(header[0]) | (static_cast<uint32_t>(header[1]) << 8) |
      (static_cast<uint32_t>(header[2]) << 16) | (static_cast<uint32_t>(header[3]) << 24);
  auto violation = [&](std::string what) -> Status {
    Shutdown();  // the stream can no longer be trusted to be framed
    return Status::InvalidArgument("protocol violation: " + what);
  };
  if (length == 0) return violation("empty frame");
  if (length > max_frame_bytes_) {
    return violation("frame of " + std::to_string(length) + " bytes exceeds the limit of " +
                     std::to_string(max_frame_bytes_));
  }
  if (!KnownFrameType(header[4])) {
    return violation("unknown frame type " + std::to_string(header[4]));
  }
  Frame frame;
  frame.type = static_cast<FrameType>(header[4]);
  frame.payload.resize(length - 1);
  if (length > 1) {
    AIRLOCK_RETURN_IF_ERROR(ReadFully(frame.payload.data(), length - 1,
                                      Clock::now() + kFrameCompletionTimeout,
                                      /*frame_started=*/true));
  }
  frame.fd = std::move(received_fd_);
  return frame;
}

std::string EncodeIdHeader(std::string_view id) {
  std::string out;
  out.reserve(2 + id.size());
  out.push_back(static_cast<char>(id.size() & 0xff));
  out.push_back(static_cast<char>((id.size() >> 8) & 0xff));
  out.append(id);
  return out;
}

Status DecodeIdPayload(std::string_view payload, std::string_view* id, std::string_view* rest) {
  if (payload.size() < 2) return Status::InvalidArgument("result frame too short for its id");
  const size_t length = static_cast<unsigned char>(payload[0]) |
                        (static_cast<size_t>(static_cast<unsigned char>(payload[1])) << 8);
  if (length == 0 || length > kMaxQueryIdBytes || payload.size() - 2 < length) {
    return Status::InvalidArgument("result frame has a malformed id");
  }
  *id = payload.substr(2, length);
  *rest = payload.substr(2 + length);
  return Status::Ok();
}

// nlohmann's parser recurses per nesting level: a hostile peer could exhaust
// the stack with "[[[[...". Reject deep documents before parsing.
bool NestingWithin(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > max_depth) return false;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return true;
}

Result<nlohmann::json> ParseJsonObject(std::string_view payload, std::string_view what) {
  if (!NestingWithin(payload, kMaxJsonDepth)) {
    return Status::InvalidArgument(std::string(what) + " nests deeper than " +
                                   std::to_string(kMaxJsonDepth) + " levels");
  }
  nlohmann::json parsed = nlohmann::json::parse(payload, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return Status::InvalidArgument(std::string(what) + " is not a JSON object");
  }
  return parsed;
}

StatusCode StatusCodeFromName(std::string_view name) {
  for (int32_t raw = AIRLOCK_OK; raw <= AIRLOCK_ERR_CONFLICT; ++raw) {
    const StatusCode code = static_cast<StatusCode>(raw);
    if (name == StatusCodeName(code)) return code;
  }
  return StatusCode::kUnknown;
}

}  // namespace airlock::enclave
