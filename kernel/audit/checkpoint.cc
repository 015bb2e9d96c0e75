#include "kernel/audit/checkpoint.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <map>

#include <nlohmann/json.hpp>

#include "kernel/audit/audit_chain.h"
#include "kernel/common/crypto.h"

namespace airlock {
namespace {

constexpr size_t kEd25519KeyBytes = 32;
constexpr size_t kEd25519SignatureBytes = 64;
constexpr size_t kKeyIdHexChars = 32;
constexpr size_t kMaxTimeChars = 64;

struct PkeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct BioDeleter {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;
using BioPtr = std::unique_ptr<BIO, BioDeleter>;

// Refuses to prompt for a pass phrase: an encrypted key simply fails to load.
int NoPassphrase(char*, int, int, void*) {
  return -1;
}

bool IsLowerHex(std::string_view text, size_t length) {
  if (text.size() != length) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

Result<std::string> HexDecode(std::string_view hex) {
  std::string out;
  out.reserve(hex.size() / 2);
  auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(nibble(hex[i]) * 16 + nibble(hex[i + 1])));
  }
  return out;
}

std::string SignedMessage(const AuditCheckpoint& c) {
  return "airlock-audit-checkpoint/1\nseq=" + std::to_string(c.seq) + "\nhash=" + c.hash +
         "\ntime=" + c.time + "\nkey_id=" + c.key_id + "\n";
}

Result<std::string> KeyIdOf(EVP_PKEY* key) {
  unsigned char raw[kEd25519KeyBytes];
  size_t length = sizeof(raw);
  if (EVP_PKEY_get_raw_public_key(key, raw, &length) != 1 || length != kEd25519KeyBytes) {
    return Status::Internal("cannot read the Ed25519 public key");
  }
  return Sha256Hex(std::string_view(reinterpret_cast<const char*>(raw), length))
      .substr(0, kKeyIdHexChars);
}

Result<std::string> PublicPemOf(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), key) != 1) {
    return Status::Internal("cannot encode the public key");
  }
  char* data = nullptr;
  const long length = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(length));
}

bool IsEd25519(EVP_PKEY* key) {
  return EVP_PKEY_get_id(key) == EVP_PKEY_ED25519;
}

}  // namespace

std::string FormatCheckpointLine(const AuditCheckpoint& c) {
  // Fixed key order, so a line reads the same wherever it is shipped.
  return "{\"checkpoint\":1,\"seq\":" + std::to_string(c.seq) + ",\"hash\":\"" + c.hash +
         "\",\"time\":\"" + c.time + "\",\"key_id\":\"" + c.key_id + "\",\"sig\":\"" +
         HexEncode(c.signature) + "\"}";
}

Result<AuditCheckpoint> ParseCheckpointLine(std::string_view text) {
  const auto record =
      nlohmann::json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (record.is_discarded() || !record.is_object()) {
    return Status::InvalidArgument("checkpoint is not a JSON object");
  }
  auto version = record.find("checkpoint");
  if (version == record.end() || !version->is_number_unsigned() || version->get<uint64_t>() != 1) {
    return Status::InvalidArgument("checkpoint has no \"checkpoint\":1 version field");
  }
  auto string_field = [&](const char* key) -> const std::string* {
    auto it = record.find(key);
    return it != record.end() && it->is_string() ? &it->get_ref<const std::string&>() : nullptr;
  };
  AuditCheckpoint out;
  auto seq = record.find("seq");
  if (seq == record.end() || !seq->is_number_unsigned()) {
    return Status::InvalidArgument("checkpoint has a missing or malformed \"seq\"");
  }
  out.seq = seq->get<uint64_t>();
  const std::string* hash = string_field("hash");
  if (hash == nullptr || !audit_internal::IsHashHex(*hash)) {
    return Status::InvalidArgument("checkpoint has a missing or malformed \"hash\"");
  }
  out.hash = *hash;
  const std::string* time = string_field("time");
  // RFC 3339 text only: the line is formatted back without JSON escaping,
  // and the signed message keeps one field a line.
  if (time == nullptr || time->empty() || time->size() > kMaxTimeChars ||
      time->find_first_not_of("0123456789-:.TZ+") != std::string::npos) {
    return Status::InvalidArgument("checkpoint has a missing or malformed \"time\"");
  }
  out.time = *time;
  const std::string* key_id = string_field("key_id");
  if (key_id == nullptr || !IsLowerHex(*key_id, kKeyIdHexChars)) {
    return Status::InvalidArgument("checkpoint has a missing or malformed \"key_id\"");
  }
  out.key_id = *key_id;
  const std::string* sig = string_field("sig");
  if (sig == nullptr || !IsLowerHex(*sig, 2 * kEd25519SignatureBytes)) {
    return Status::InvalidArgument("checkpoint has a missing or malformed \"sig\"");
  }
  AIRLOCK_ASSIGN_OR_RETURN(out.signature, HexDecode(*sig));
  if (record.size() != 6) return Status::InvalidArgument("checkpoint has unknown fields");
  return out;
}

struct CheckpointSigner::Key {
  PkeyPtr pkey;
};

CheckpointSigner::CheckpointSigner(std::unique_ptr<Key> key, std::string key_id,
                                   std::string public_pem)
    : key_(std::move(key)), key_id_(std::move(key_id)), public_pem_(std::move(public_pem)) {}

CheckpointSigner::~CheckpointSigner() = default;

Result<std::unique_ptr<CheckpointSigner>> CheckpointSigner::FromPem(const Secret& private_key_pem) {
  const std::string_view pem = private_key_pem.Reveal();
  if (pem.empty() || pem.size() > (1u << 16)) {
    return Status::InvalidArgument("audit signing key is empty or too large");
  }
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return Status::Internal("cannot allocate a BIO");
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (!key) {
    return Status::InvalidArgument(
        "audit signing key is not an unencrypted PEM private key (create one with `airlockd "
        "audit keygen`)");
  }
  if (!IsEd25519(key.get())) {
    return Status::InvalidArgument("audit signing key is not an Ed25519 key");
  }
  AIRLOCK_ASSIGN_OR_RETURN(std::string key_id, KeyIdOf(key.get()));
  AIRLOCK_ASSIGN_OR_RETURN(std::string public_pem, PublicPemOf(key.get()));
  auto holder = std::make_unique<Key>();
  holder->pkey = std::move(key);
  return std::unique_ptr<CheckpointSigner>(
      new CheckpointSigner(std::move(holder), std::move(key_id), std::move(public_pem)));
}

Result<AuditCheckpoint> CheckpointSigner::Sign(const AuditHead& head, std::string time) const {
  AuditCheckpoint checkpoint;
  checkpoint.seq = head.seq;
  checkpoint.hash = head.hash;
  checkpoint.time = std::move(time);
  checkpoint.key_id = key_id_;
  const std::string message = SignedMessage(checkpoint);
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  unsigned char signature[kEd25519SignatureBytes];
  size_t length = sizeof(signature);
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_->pkey.get()) != 1 ||
      EVP_DigestSign(ctx.get(), signature, &length,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1 ||
      length != kEd25519SignatureBytes) {
    return Status::Internal("Ed25519 signing failed");
  }
  checkpoint.signature.assign(reinterpret_cast<const char*>(signature), length);
  return checkpoint;
}

struct CheckpointVerifier::Keys {
  std::map<std::string, PkeyPtr> by_id;
};

CheckpointVerifier::CheckpointVerifier() : keys_(std::make_unique<Keys>()) {}
CheckpointVerifier::~CheckpointVerifier() = default;
CheckpointVerifier::CheckpointVerifier(CheckpointVerifier&&) noexcept = default;
CheckpointVerifier& CheckpointVerifier::operator=(CheckpointVerifier&&) noexcept = default;

Status CheckpointVerifier::AddPublicKeyPem(std::string_view pem) {
  if (pem.empty() || pem.size() > (1u << 16)) {
    return Status::InvalidArgument("public key is empty or too large");
  }
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return Status::Internal("cannot allocate a BIO");
  PkeyPtr key(PEM_read_bio_PUBKEY(bio.get(), nullptr, NoPassphrase, nullptr));
  if (!key) {
    return Status::InvalidArgument("not a PEM public key (\"BEGIN PUBLIC KEY\")");
  }
  if (!IsEd25519(key.get())) return Status::InvalidArgument("public key is not an Ed25519 key");
  AIRLOCK_ASSIGN_OR_RETURN(std::string key_id, KeyIdOf(key.get()));
  keys_->by_id[key_id] = std::move(key);
  return Status::Ok();
}

bool CheckpointVerifier::empty() const {
  return keys_->by_id.empty();
}

std::vector<std::string> CheckpointVerifier::key_ids() const {
  std::vector<std::string> ids;
  for (const auto& [id, key] : keys_->by_id) ids.push_back(id);
  return ids;
}

Status CheckpointVerifier::Verify(const AuditCheckpoint& checkpoint) const {
  auto it = keys_->by_id.find(checkpoint.key_id);
  if (it == keys_->by_id.end()) {
    return Status::FailedPrecondition("signed by key " + checkpoint.key_id +
                                      ", which is not a trusted public key");
  }
  const std::string message = SignedMessage(checkpoint);
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, it->second.get()) != 1) {
    return Status::Internal("Ed25519 verification could not start");
  }
  if (EVP_DigestVerify(
          ctx.get(), reinterpret_cast<const unsigned char*>(checkpoint.signature.data()),
          checkpoint.signature.size(), reinterpret_cast<const unsigned char*>(message.data()),
          message.size()) != 1) {
    return Status::FailedPrecondition("signature does not verify (checkpoint forged or altered)");
  }
  return Status::Ok();
}

Result<CheckpointKeyPair> GenerateCheckpointKeyPair() {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
  if (!key) return Status::Internal("Ed25519 key generation failed");
  BioPtr bio(BIO_new(BIO_s_secmem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return Status::Internal("cannot encode the private key");
  }
  char* data = nullptr;
  const long length = BIO_get_mem_data(bio.get(), &data);
  std::string bytes;
  bytes.reserve(static_cast<size_t>(length) + 32);  // heap storage, never the small buffer
  bytes.append(data, static_cast<size_t>(length));
  CheckpointKeyPair pair;
  pair.private_pem = Secret(std::move(bytes));
  AIRLOCK_ASSIGN_OR_RETURN(pair.public_pem, PublicPemOf(key.get()));
  AIRLOCK_ASSIGN_OR_RETURN(pair.key_id, KeyIdOf(key.get()));
  return pair;
}

}  // namespace airlock
