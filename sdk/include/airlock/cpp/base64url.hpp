// Base64 (RFC 4648): base64url without padding (§5), as JOSE (RFC 7515 §2),
// PKCE (RFC 7636) and credentials in URLs use it, and standard base64 with
// padding (§4), as Kubernetes objects, MIME and HTTP Basic authentication
// use it. Decoders are strict, so every value has exactly one accepted
// encoding. Header-only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace airlock::sdk {

namespace base64url_internal {

inline constexpr char kUrlAlphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
inline constexpr char kStandardAlphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

inline int Value(char c, const char* alphabet) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == alphabet[62]) return 62;
  if (c == alphabet[63]) return 63;
  return -1;
}

// Unpadded decoding in `alphabet`.
inline std::optional<std::string> Decode(std::string_view text, const char* alphabet) {
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t accumulator = 0;
  int bits = 0;
  for (char c : text) {
    const int v = Value(c, alphabet);
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

// Unpadded encoding in `alphabet`.
inline std::string Encode(std::string_view bytes, const char* alphabet) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  uint32_t accumulator = 0;
  int bits = 0;
  for (char c : bytes) {
    accumulator = (accumulator << 8) | static_cast<unsigned char>(c);
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(alphabet[(accumulator >> bits) & 0x3F]);
    }
  }
  if (bits > 0) out.push_back(alphabet[(accumulator << (6 - bits)) & 0x3F]);
  return out;
}

}  // namespace base64url_internal

// Decodes unpadded base64url. nullopt on any character outside the
// alphabet, on padding ('='), on an impossible length (4n+1) and on
// non-zero trailing bits.
inline std::optional<std::string> Base64UrlDecode(std::string_view text) {
  return base64url_internal::Decode(text, base64url_internal::kUrlAlphabet);
}

// Encodes base64url without padding.
inline std::string Base64UrlEncode(std::string_view bytes) {
  return base64url_internal::Encode(bytes, base64url_internal::kUrlAlphabet);
}

// Encodes standard base64, padded to a multiple of 4.
inline std::string Base64Encode(std::string_view bytes) {
  std::string out = base64url_internal::Encode(bytes, base64url_internal::kStandardAlphabet);
  while (out.size() % 4 != 0) out.push_back('=');
  return out;
}

// Decodes padded standard base64. nullopt unless the length is a multiple
// of 4 with at most two '=' at the end, every other character is in the
// alphabet, and the trailing bits are zero.
inline std::optional<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  size_t padding = 0;
  while (padding < 2 && padding < text.size() && text[text.size() - 1 - padding] == '=') {
    ++padding;
  }
  return base64url_internal::Decode(text.substr(0, text.size() - padding),
                                    base64url_internal::kStandardAlphabet);
}

}  // namespace airlock::sdk
