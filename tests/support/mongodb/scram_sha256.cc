#include "tests/support/mongodb/scram_sha256.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <vector>
#include "airlock/cpp/base64url.hpp"

namespace airlock::testing::mongodb {
namespace {

std::string Hmac(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string Sha256(std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out, &len, EVP_sha256(), nullptr);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n));
  return out;
}

// The value of attribute `name` ("r", "p", ...) in a SCRAM message.
std::optional<std::string_view> Attribute(std::string_view message, char name) {
  size_t pos = 0;
  while (pos < message.size()) {
    const size_t end = std::min(message.find(',', pos), message.size());
    if (end - pos >= 2 && message[pos] == name && message[pos + 1] == '=') {
      return message.substr(pos + 2, end - pos - 2);
    }
    pos = end + 1;
  }
  return std::nullopt;
}

}  // namespace

std::string Base64Encode(std::string_view bytes) {
  return sdk::Base64Encode(bytes);
}

std::optional<std::string> Base64Decode(std::string_view text) {
  return sdk::Base64Decode(text);
}

ScramCredential ScramCredential::Derive(std::string_view password) {
  ScramCredential c;
  c.salt = RandomBytes(28);
  unsigned char salted[32];
  PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                    reinterpret_cast<const unsigned char*>(c.salt.data()),
                    static_cast<int>(c.salt.size()), static_cast<int>(c.iterations), EVP_sha256(),
                    sizeof salted, salted);
  const std::string_view salted_view(reinterpret_cast<char*>(salted), sizeof salted);
  c.stored_key = Sha256(Hmac(salted_view, "Client Key"));
  c.server_key = Hmac(salted_view, "Server Key");
  OPENSSL_cleanse(salted, sizeof salted);
  return c;
}

std::optional<std::string> ScramConversation::StartWith(std::string_view client_first,
                                                        std::optional<ScramCredential> credential) {
  // gs2 header: "n,," or "n,a=authzid," (no channel binding).
  if (client_first.size() < 3 || client_first[0] != 'n' || client_first[1] != ',') {
    return std::nullopt;
  }
  const size_t bare = client_first.find(',', 2);
  if (bare == std::string_view::npos) return std::nullopt;
  client_first_bare_ = std::string(client_first.substr(bare + 1));
  const auto client_nonce = Attribute(client_first_bare_, 'r');
  if (!client_nonce || client_nonce->empty()) return std::nullopt;
  // An unknown user gets a made-up salt, so the answer does not reveal
  // whether the user exists; the proof then fails.
  credential_ = credential ? std::move(credential) : ScramCredential::Derive(RandomBytes(16));
  nonce_ = std::string(*client_nonce) + Base64Encode(RandomBytes(18));
  server_first_ = "r=" + nonce_ + ",s=" + Base64Encode(credential_->salt) +
                  ",i=" + std::to_string(credential_->iterations);
  if (!credential) credential_.reset();
  return server_first_;
}

std::optional<std::string> ScramConversation::Finish(std::string_view client_final) {
  if (server_first_.empty()) return std::nullopt;
  const size_t proof_at = client_final.find(",p=");
  if (proof_at == std::string_view::npos) return std::nullopt;
  const std::string_view without_proof = client_final.substr(0, proof_at);
  const auto nonce = Attribute(without_proof, 'r');
  const auto proof = Base64Decode(client_final.substr(proof_at + 3));
  if (!nonce || *nonce != nonce_ || !proof || !credential_) return std::nullopt;
  const std::string auth_message =
      client_first_bare_ + "," + server_first_ + "," + std::string(without_proof);
  const std::string client_signature = Hmac(credential_->stored_key, auth_message);
  if (proof->size() != client_signature.size()) return std::nullopt;
  std::string client_key(proof->size(), '\0');
  for (size_t i = 0; i < client_key.size(); ++i) client_key[i] = (*proof)[i] ^ client_signature[i];
  const std::string stored = Sha256(client_key);
  if (stored.size() != credential_->stored_key.size() ||
      CRYPTO_memcmp(stored.data(), credential_->stored_key.data(), stored.size()) != 0) {
    return std::nullopt;
  }
  return "v=" + Base64Encode(Hmac(credential_->server_key, auth_message));
}

}  // namespace airlock::testing::mongodb
