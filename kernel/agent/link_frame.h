// The agent link's wire format: frames over one mutually authenticated TLS
// connection that the agent dials to the kernel.
//
// WIRE FORMAT: u32 little-endian length (of type + stream + payload, so >= 5)
// | u8 type | u32 little-endian stream | payload. A reader refuses a length
// beyond its limit before allocating anything.
//
// FRAMES:
//   Control  stream 0, a JSON object {"type": ...} (see agent_protocol.h)
//   Enclave  stream N: one enclave control-channel frame (kernel/enclave/
//            channel.h) of the enclave N multiplexed on this link, as
//            u8 enclave frame type | enclave frame payload
//   Closed   stream N: the enclave's channel ended; JSON {"reason"}
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "airlock/cpp/status.hpp"
#include "kernel/enclave/channel.h"

namespace airlock::agent {

enum class LinkFrameType : uint8_t { kControl = 1, kEnclave = 2, kClosed = 3 };

inline constexpr size_t kLinkHeaderBytes = 9;
// An enclave frame plus its own type byte fits; so does any control document.
inline constexpr size_t kMaxLinkFrameBytes = enclave::kMaxFrameBytes + 16;
// Before a peer is authenticated (enrollment), frames are small.
inline constexpr size_t kMaxEnrollmentFrameBytes = 64 * 1024;
// The ALPN protocol agents offer: how a port the HTTPS API shares tells
// their connections apart (agents.on_api_port).
inline constexpr std::string_view kLinkAlpn = "airlock-agent/1";
// The same in ALPN wire form (a length byte, then the name).
inline constexpr std::string_view kLinkAlpnWire =
    "\x0f"
    "airlock-agent/1";

struct LinkHeader {
  LinkFrameType type = LinkFrameType::kControl;
  uint32_t stream = 0;
  size_t payload_bytes = 0;
};

struct LinkFrame {
  LinkFrameType type = LinkFrameType::kControl;
  uint32_t stream = 0;
  std::string payload;
};

// The whole frame (header and payload) as bytes.
std::string EncodeLinkFrame(LinkFrameType type, uint32_t stream, std::string_view payload);
// Parses the kLinkHeaderBytes at `header`. InvalidArgument for an unknown
// type, a length below 5, a control frame off stream 0 or a data frame on it;
// ResourceExhausted when the frame is longer than `max_frame_bytes`.
Result<LinkHeader> DecodeLinkHeader(const unsigned char* header, size_t max_frame_bytes);

// Enclave frames ride inside Enclave link frames as type byte + payload.
std::string EncodeEnclavePayload(enclave::FrameType type, std::string_view payload);
// InvalidArgument when empty or of an unknown enclave frame type.
Status DecodeEnclavePayload(std::string_view link_payload, enclave::FrameType* type,
                            std::string_view* payload);

}  // namespace airlock::agent
