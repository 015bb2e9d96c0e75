// Base64url (RFC 4648 §5) without padding, as JOSE (RFC 7515 §2), PKCE
// (RFC 7636) and credentials in URLs use it. Header-only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace airlock::sdk {

namespace base64url_internal {

inline constexpr char kAlphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

inline int Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

}  // namespace base64url_internal

// Decodes unpadded base64url. nullopt on any character outside the
// alphabet, on padding ('='), on an impossible length (4n+1) and on
// non-zero trailing bits, so every value has exactly one accepted encoding.
inline std::optional<std::string> Base64UrlDecode(std::string_view text) {
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t accumulator = 0;
  int bits = 0;
  for (char c : text) {
    const int v = base64url_internal::Value(c);
    if (v < 0) return std::nullopt;
    accumulator = (accumulator << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((accumulator >> bits) & 0xFF));
    }
  }
  // Leftover bits must be zero: otherwise two encodings decode alike.
  if (bits > 0 && (accumulator & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

// Encodes without padding.
inline std::string Base64UrlEncode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  uint32_t accumulator = 0;
  int bits = 0;
  for (char c : bytes) {
    accumulator = (accumulator << 8) | static_cast<unsigned char>(c);
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(base64url_internal::kAlphabet[(accumulator >> bits) & 0x3F]);
    }
  }
  if (bits > 0) {
    out.push_back(base64url_internal::kAlphabet[(accumulator << (6 - bits)) & 0x3F]);
  }
  return out;
}

}  // namespace airlock::sdk
