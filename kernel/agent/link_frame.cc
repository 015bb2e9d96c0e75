#include "kernel/agent/link_frame.h"

namespace airlock::agent {

std::string EncodeLinkFrame(LinkFrameType type, uint32_t stream, std::string_view payload) {
  const uint32_t length = static_cast<uint32_t>(payload.size() + 5);
  std::string out;
  out.reserve(kLinkHeaderBytes + payload.size());
  for (int shift = 0; shift < 32; shift += 8)
    out.push_back(static_cast<char>((length >> shift) & 0xff));
  out.push_back(static_cast<char>(type));
  for (int shift = 0; shift < 32; shift += 8)
    out.push_back(static_cast<char>((stream >> shift) & 0xff));
  out.append(payload);
  return out;
}

Result<LinkHeader> DecodeLinkHeader(const unsigned char* header, size_t max_frame_bytes) {
  auto u32 = [](const unsigned char* p) {
    return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
           (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
  };
  const uint32_t length = u32(header);
  if (length < 5) return Status::InvalidArgument("link frame shorter than its header");
  if (length > max_frame_bytes) {
    return Status::ResourceExhausted("link frame of " + std::to_string(length) +
                                     " bytes exceeds the limit of " +
                                     std::to_string(max_frame_bytes));
  }
  LinkHeader out;
  const uint8_t type = header[4];
  if (type < static_cast<uint8_t>(LinkFrameType::kControl) ||
      type > static_cast<uint8_t>(LinkFrameType::kClosed)) {
    return Status::InvalidArgument("unknown link frame type " + std::to_string(type));
  }
  out.type = static_cast<LinkFrameType>(type);
  out.stream = u32(header + 5);
  if ((out.type == LinkFrameType::kControl) != (out.stream == 0)) {
    return Status::InvalidArgument("control frames use stream 0 and only they do");
  }
  out.payload_bytes = length - 5;
  return out;
}

std::string EncodeEnclavePayload(enclave::FrameType type, std::string_view payload) {
  std::string out;
  out.reserve(payload.size() + 1);
  out.push_back(static_cast<char>(type));
  out.append(payload);
  return out;
}

Status DecodeEnclavePayload(std::string_view link_payload, enclave::FrameType* type,
                            std::string_view* payload) {
  if (link_payload.empty()) return Status::InvalidArgument("empty enclave frame on the link");
  const uint8_t raw = static_cast<uint8_t>(link_payload[0]);
  if (raw < static_cast<uint8_t>(enclave::FrameType::kSpec) ||
      raw > static_cast<uint8_t>(enclave::FrameType::kDialResult)) {
    return Status::InvalidArgument("unknown enclave frame type " + std::to_string(raw));
  }
  *type = static_cast<enclave::FrameType>(raw);
  *payload = link_payload.substr(1);
  return Status::Ok();
}

}  // namespace airlock::agent
