// Base64url (RFC 4648 §5) without padding, as JOSE uses it (RFC 7515 §2).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace airlock::identity::oidc_jwt {

// Decodes unpadded base64url. nullopt on any character outside the
// alphabet, on padding ('='), on an impossible length (4n+1) and on
// non-zero trailing bits, so every value has exactly one accepted encoding.
std::optional<std::string> Base64UrlDecode(std::string_view text);

// Encodes without padding.
std::string Base64UrlEncode(std::string_view bytes);

}  // namespace airlock::identity::oidc_jwt
