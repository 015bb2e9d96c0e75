#include "tests/support/webhook_signature.h"

#include <cstdlib>
#include <vector>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace airlock::test {
namespace {

bool Fail(std::string* why, std::string reason) {
  if (why != nullptr) *why = std::move(reason);
  return false;
}

std::string HexOf(const unsigned char* data, size_t length) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < length; ++i) {
    out.push_back(kDigits[data[i] >> 4]);
    out.push_back(kDigits[data[i] & 0x0F]);
  }
  return out;
}

}  // namespace

bool VerifyAirlockSignature(std::string_view secret, std::string_view signature_header,
                            std::string_view body, int64_t now_unix, int64_t window_seconds,
                            std::string* why) {
  std::string timestamp;
  std::vector<std::string> candidates;
  size_t start = 0;
  while (start <= signature_header.size()) {
    size_t end = signature_header.find(',', start);
    if (end == std::string_view::npos) end = signature_header.size();
    const std::string_view item = signature_header.substr(start, end - start);
    if (item.rfind("t=", 0) == 0) {
      timestamp = std::string(item.substr(2));
    } else if (item.rfind("v1=", 0) == 0) {
      candidates.emplace_back(item.substr(3));
    }
    start = end + 1;
  }
  if (timestamp.empty() || timestamp.find_first_not_of("0123456789") != std::string::npos ||
      timestamp.size() > 12) {
    return Fail(why, "no valid t= in the signature header");
  }
  if (candidates.empty()) return Fail(why, "no v1= in the signature header");
  const int64_t t = std::strtoll(timestamp.c_str(), nullptr, 10);
  if (std::llabs(now_unix - t) > window_seconds) {
    return Fail(why, "timestamp outside the tolerance window");
  }
  const std::string signed_payload = timestamp + "." + std::string(body);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_length = 0;
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(signed_payload.data()), signed_payload.size(),
           mac, &mac_length) == nullptr) {
    return Fail(why, "HMAC failed");
  }
  const std::string expected = HexOf(mac, mac_length);
  for (const std::string& candidate : candidates) {
    if (candidate.size() == expected.size() &&
        CRYPTO_memcmp(candidate.data(), expected.data(), expected.size()) == 0) {
      return true;
    }
  }
  return Fail(why, "no v1 signature matches");
}

}  // namespace airlock::test
