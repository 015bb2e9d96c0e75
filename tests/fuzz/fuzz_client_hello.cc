// The first bytes of a TLS connection to the API's port, as the listener
// peeks at them to find the agents' ALPN offer (kernel/api/client_hello.*).
// Any prefix of the stream may be what has arrived; each is scanned.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "kernel/api/client_hello.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  const airlock::ClientHelloScan whole = airlock::ScanClientHello(bytes);
  // A scan that is done on part of the stream is done the same way on all of
  // it: more bytes never change a verdict already reached.
  const size_t cut = size > 0 ? data[0] % (size + 1) : 0;
  const airlock::ClientHelloScan part =
      airlock::ScanClientHello(std::string_view(bytes).substr(0, cut));
  if (part.state != airlock::ClientHelloScan::State::kIncomplete &&
      (part.state != whole.state || part.protocols != whole.protocols)) {
    __builtin_trap();
  }
  if (whole.protocols.size() > 64) __builtin_trap();
  return 0;
}
