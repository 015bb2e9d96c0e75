// Small cryptographic helpers shared by the kernel: hashing, constant-time
// comparison and random tokens, all through OpenSSL.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace airlock {

// SHA-256 of `data` as 64 lowercase hex characters.
std::string Sha256Hex(std::string_view data);

// Raw 32-byte SHA-256 digest.
std::string Sha256Raw(std::string_view data);

// Lowercase hex encoding of arbitrary bytes.
std::string HexEncode(std::string_view bytes);

// Compares in time that depends only on the lengths, never on the contents.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// `bytes` cryptographically random bytes, hex-encoded (2*bytes characters).
std::string RandomHex(size_t bytes);

// Overwrites memory so the compiler cannot elide it (OPENSSL_cleanse).
void SecureWipe(void* data, size_t length);

}  // namespace airlock
