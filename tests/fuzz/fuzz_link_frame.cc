// Agent link frames as the kernel reads them from an agent's TLS connection:
// the input is the decrypted byte stream. Each header is decoded with the
// limit for an enrolled agent (DecodeLinkHeader), control and closed frames
// are read as JSON documents, and enclave frames riding the link are split
// (DecodeEnclavePayload) and decoded as the kernel decodes an enclave's
// frames (enclave_frames.h), one decoding state per stream.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string_view>

#include "enclave_frames.h"
#include "kernel/agent/link_frame.h"
#include "kernel/enclave/channel.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace agent = airlock::agent;
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  std::map<uint32_t, airlock::fuzz::EnclaveFrameState> streams;
  while (rest.size() >= agent::kLinkHeaderBytes) {
    auto header = agent::DecodeLinkHeader(reinterpret_cast<const unsigned char*>(rest.data()),
                                          agent::kMaxLinkFrameBytes);
    if (!header.ok()) break;  // the link is dropped
    rest.remove_prefix(agent::kLinkHeaderBytes);
    if (header->payload_bytes > rest.size()) break;  // the stream ends mid-frame
    const std::string_view payload = rest.substr(0, header->payload_bytes);
    rest.remove_prefix(header->payload_bytes);
    switch (header->type) {
      case agent::LinkFrameType::kControl:
      case agent::LinkFrameType::kClosed:
        (void)airlock::enclave::ParseJsonObject(payload, "control document");
        break;
      case agent::LinkFrameType::kEnclave: {
        airlock::enclave::FrameType type;
        std::string_view inner;
        if (!agent::DecodeEnclavePayload(payload, &type, &inner).ok()) return 0;
        if (streams.size() < 64 || streams.count(header->stream)) {
          airlock::fuzz::ReadEnclaveFrame(type, inner, &streams[header->stream]);
        }
        break;
      }
    }
  }
  return 0;
}
