#include "scram.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>

namespace airlock::tunnels::pgwire {
namespace {

constexpr size_t kPasswordBytes = 32;
constexpr size_t kServerNonceBytes = 18;
constexpr size_t kMaxScramMessage = 2048;

Digest Hmac(const uint8_t* key, size_t key_length, std::string_view data) {
  Digest out{};
  unsigned int length = 0;
  HMAC(EVP_sha256(), key, static_cast<int>(key_length),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out.data(), &length);
  return out;
}

Digest Sha256(const uint8_t* data, size_t length) {
  Digest out{};
  SHA256(data, length, out.data());
  return out;
}

std::string Base64Url(const uint8_t* data, size_t length) {
  std::string text = Base64Encode(std::string_view(reinterpret_cast<const char*>(data), length));
  while (!text.empty() && text.back() == '=') text.pop_back();
  for (char& c : text) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return text;
}

// A printable nonce (RFC 5802: printable ASCII except ',').
bool IsValidNonce(std::string_view nonce) {
  if (nonce.empty()) return false;
  for (char c : nonce) {
    if (c < 0x21 || c > 0x7e || c == ',') return false;
  }
  return true;
}

Status Malformed(std::string_view what) {
  return Status::InvalidArgument("malformed SCRAM message: " + std::string(what));
}

}  // namespace

IssuedPassword::~IssuedPassword() {
  if (!password_.empty()) OPENSSL_cleanse(password_.data(), password_.size());
}

IssuedPassword::IssuedPassword(IssuedPassword&& other) noexcept
    : password_(std::move(other.password_)), verifier_(other.verifier_) {
  // A moved-from std::string may keep its bytes (small-string buffer): wipe them.
  if (!other.password_.empty()) {
    OPENSSL_cleanse(other.password_.data(), other.password_.size());
  }
  other.password_.clear();
}

ScramVerifier MakeVerifier(std::string_view password, const std::array<uint8_t, 16>& salt,
                           uint32_t iterations) {
  ScramVerifier verifier;
  verifier.salt = salt;
  verifier.iterations = iterations;
  Digest salted{};
  PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), salt.data(),
                    static_cast<int>(salt.size()), static_cast<int>(iterations), EVP_sha256(),
                    static_cast<int>(salted.size()), salted.data());
  Digest client_key = Hmac(salted.data(), salted.size(), "Client Key");
  verifier.stored_key = Sha256(client_key.data(), client_key.size());
  verifier.server_key = Hmac(salted.data(), salted.size(), "Server Key");
  OPENSSL_cleanse(salted.data(), salted.size());
  OPENSSL_cleanse(client_key.data(), client_key.size());
  return verifier;
}

Result<IssuedPassword> IssuePassword(uint32_t iterations) {
  uint8_t raw[kPasswordBytes];
  std::array<uint8_t, 16> salt{};
  if (RAND_bytes(raw, sizeof raw) != 1 ||
      RAND_bytes(salt.data(), static_cast<int>(salt.size())) != 1) {
    OPENSSL_cleanse(raw, sizeof raw);
    return Status::Unavailable("the random generator failed; no credential issued");
  }
  std::string password = Base64Url(raw, sizeof raw);
  OPENSSL_cleanse(raw, sizeof raw);
  const ScramVerifier verifier = MakeVerifier(password, salt, iterations);
  return IssuedPassword(std::move(password), verifier);
}

Result<std::string> ScramExchange::OnClientFirst(std::string_view message) {
  if (message.size() > kMaxScramMessage) return Malformed("client-first-message too long");
  // gs2-header: cbind-flag "," [authzid] ","
  if (message.starts_with("p=")) {
    return Status::InvalidArgument(
        "channel binding was requested, but only SCRAM-SHA-256 without binding is offered");
  }
  if (!message.starts_with("n,") && !message.starts_with("y,")) {
    return Malformed("client-first-message must start with a gs2 header");
  }
  const size_t second_comma = message.find(',', 2);
  if (second_comma == std::string_view::npos) return Malformed("incomplete gs2 header");
  if (second_comma != 2)
    return Status::InvalidArgument("SCRAM authorization identities are not supported");
  gs2_header_ = std::string(message.substr(0, 3));
  client_first_bare_ = std::string(message.substr(3));
  // client-first-message-bare: "n=" user "," "r=" nonce ["," extensions]
  std::string_view bare = client_first_bare_;
  if (bare.starts_with("m=")) return Status::InvalidArgument("SCRAM extensions are not supported");
  if (!bare.starts_with("n=")) return Malformed("expected the user name attribute");
  const size_t comma = bare.find(',');
  if (comma == std::string_view::npos) return Malformed("expected the nonce attribute");
  std::string_view rest = bare.substr(comma + 1);
  if (!rest.starts_with("r=")) return Malformed("expected the nonce attribute");
  std::string_view client_nonce = rest.substr(2);
  if (const size_t end = client_nonce.find(','); end != std::string_view::npos) {
    client_nonce = client_nonce.substr(0, end);
  }
  if (!IsValidNonce(client_nonce)) return Malformed("invalid client nonce");

  uint8_t server_nonce[kServerNonceBytes];
  if (RAND_bytes(server_nonce, sizeof server_nonce) != 1) {
    return Status::Unavailable("the random generator failed");
  }
  nonce_ = std::string(client_nonce) +
           Base64Encode(
               std::string_view(reinterpret_cast<const char*>(server_nonce), sizeof server_nonce));
  const std::string salt(reinterpret_cast<const char*>(verifier_.salt.data()),
                         verifier_.salt.size());
  server_first_ =
      "r=" + nonce_ + ",s=" + Base64Encode(salt) + ",i=" + std::to_string(verifier_.iterations);
  return server_first_;
}

Result<std::string> ScramExchange::OnClientFinal(std::string_view message) {
  if (server_first_.empty()) return Malformed("client-final-message before client-first-message");
  if (message.size() > kMaxScramMessage) return Malformed("client-final-message too long");
  // "c=" cbind "," "r=" nonce ["," extensions] "," "p=" proof
  const size_t proof_at = message.rfind(",p=");
  if (proof_at == std::string_view::npos) return Malformed("missing proof");
  const std::string_view without_proof = message.substr(0, proof_at);
  const std::string_view proof_b64 = message.substr(proof_at + 3);

  const size_t comma = without_proof.find(',');
  if (!without_proof.starts_with("c=") || comma == std::string_view::npos) {
    return Malformed("missing channel binding attribute");
  }
  if (without_proof.substr(2, comma - 2) != Base64Encode(gs2_header_)) {
    return Malformed("channel binding attribute does not match the gs2 header");
  }
  std::string_view rest = without_proof.substr(comma + 1);
  if (!rest.starts_with("r=")) return Malformed("missing nonce");
  std::string_view nonce = rest.substr(2);
  if (const size_t end = nonce.find(','); end != std::string_view::npos) {
    nonce = nonce.substr(0, end);
  }
  if (nonce != nonce_) return Malformed("nonce mismatch");

  std::string proof;
  if (!Base64Decode(proof_b64, &proof) || proof.size() != Digest{}.size()) {
    return Malformed("invalid proof");
  }
  const std::string auth_message =
      client_first_bare_ + "," + server_first_ + "," + std::string(without_proof);
  const Digest client_signature =
      Hmac(verifier_.stored_key.data(), verifier_.stored_key.size(), auth_message);
  Digest client_key{};
  for (size_t i = 0; i < client_key.size(); ++i) {
    client_key[i] = static_cast<uint8_t>(proof[i]) ^ client_signature[i];
  }
  const Digest presented = Sha256(client_key.data(), client_key.size());
  OPENSSL_cleanse(client_key.data(), client_key.size());
  const bool same =
      CRYPTO_memcmp(presented.data(), verifier_.stored_key.data(), presented.size()) == 0;
  if (!same) return Status::Unauthenticated("wrong password");
  const Digest server_signature =
      Hmac(verifier_.server_key.data(), verifier_.server_key.size(), auth_message);
  return "v=" +
         Base64Encode(std::string_view(reinterpret_cast<const char*>(server_signature.data()),
                                       server_signature.size()));
}

std::string Base64Encode(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve(4 * ((bytes.size() + 2) / 3));
  size_t i = 0;
  const auto byte = [&](size_t k) { return static_cast<uint32_t>(static_cast<uint8_t>(bytes[k])); };
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out.push_back(kAlphabet[v & 63]);
  }
  const size_t left = bytes.size() - i;
  if (left == 1) {
    const uint32_t v = byte(i) << 16;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out += "==";
  } else if (left == 2) {
    const uint32_t v = (byte(i) << 16) | (byte(i + 1) << 8);
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(kAlphabet[(v >> 6) & 63]);
    out.push_back('=');
  }
  return out;
}

bool Base64Decode(std::string_view text, std::string* out) {
  if (text.size() % 4 != 0) return false;
  out->clear();
  uint32_t acc = 0;
  int bits = 0;
  size_t padding = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    int v = -1;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    if (c >= '0' && c <= '9') v = c - '0' + 52;
    if (c == '+') v = 62;
    if (c == '/') v = 63;
    if (c == '=') {
      if (i + 2 < text.size()) return false;  // padding only at the very end
      ++padding;
      continue;
    }
    if (v < 0 || padding != 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return padding <= 2;
}

std::string VerifierText(const ScramVerifier& verifier) {
  const auto text = [](const auto& bytes) {
    return Base64Encode(
        std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  };
  return "SCRAM-SHA-256$" + std::to_string(verifier.iterations) + ":" + text(verifier.salt) + "$" +
         text(verifier.stored_key) + ":" + text(verifier.server_key);
}

Result<ScramVerifier> ParseVerifierText(std::string_view text, uint32_t min_iterations) {
  const Status malformed = Status::InvalidArgument(
      "endpoint spec.verifier must be SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>");
  constexpr std::string_view kPrefix = "SCRAM-SHA-256$";
  if (text.size() > 256 || !text.starts_with(kPrefix)) return malformed;
  text.remove_prefix(kPrefix.size());
  const size_t colon = text.find(':');
  const size_t dollar = text.find('$');
  const size_t second_colon = text.rfind(':');
  if (colon == std::string_view::npos || dollar == std::string_view::npos || colon > dollar ||
      second_colon < dollar) {
    return malformed;
  }
  ScramVerifier verifier;
  const std::string_view iterations = text.substr(0, colon);
  uint64_t count = 0;
  if (iterations.empty() || iterations.size() > 9) return malformed;
  for (char c : iterations) {
    if (c < '0' || c > '9') return malformed;
    count = count * 10 + static_cast<uint64_t>(c - '0');
  }
  if (count < min_iterations) return malformed;
  verifier.iterations = static_cast<uint32_t>(count);
  const auto decode = [](std::string_view b64, auto& out) {
    std::string bytes;
    if (!Base64Decode(b64, &bytes) || bytes.size() != out.size()) return false;
    std::copy(bytes.begin(), bytes.end(), out.begin());
    return true;
  };
  if (!decode(text.substr(colon + 1, dollar - colon - 1), verifier.salt) ||
      !decode(text.substr(dollar + 1, second_colon - dollar - 1), verifier.stored_key) ||
      !decode(text.substr(second_colon + 1), verifier.server_key)) {
    return malformed;
  }
  return verifier;
}

}  // namespace airlock::tunnels::pgwire
