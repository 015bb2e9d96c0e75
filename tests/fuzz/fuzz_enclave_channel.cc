// The enclave control channel as the kernel reads it from an enclave (which
// may be hostile): the input is the byte stream an enclave writes to its
// socket; FrameChannel::Receive reads it frame by frame from a real unix
// socket pair, and each frame's payload is decoded as the kernel decodes it
// (enclave_frames.h).
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "enclave_frames.h"
#include "kernel/enclave/channel.h"

namespace {

// Inputs stay below the socket buffer so one write never blocks.
constexpr size_t kMaxInput = 64 * 1024;
// A frame limit the fuzzer can reach, as a kernel configured small would use.
constexpr size_t kMaxFrame = 32 * 1024;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > kMaxInput) return 0;
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) std::abort();
  int buffer = static_cast<int>(2 * kMaxInput);
  ::setsockopt(fds[1], SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);
  ::setsockopt(fds[0], SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
  size_t written = 0;
  while (written < size) {
    const ssize_t n = ::write(fds[1], data + written, size - written);
    if (n <= 0) std::abort();
    written += static_cast<size_t>(n);
  }
  ::close(fds[1]);  // the enclave is gone after its last byte

  airlock::enclave::FrameChannel channel(fds[0], kMaxFrame);
  airlock::fuzz::EnclaveFrameState state;
  for (;;) {
    auto frame = channel.Receive(std::chrono::milliseconds(1000));
    if (!frame.ok()) break;
    airlock::fuzz::ReadEnclaveFrame(frame->type, frame->payload, &state);
  }
  return 0;
}
