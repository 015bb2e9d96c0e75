// Signed audit checkpoints: an Ed25519 signature over "the audit trail's
// record `seq` has chain hash `hash`", made by a key kept outside the state
// directory. A chain hash commits to every record up to its seq, so one
// valid checkpoint fixes that whole prefix of history: whoever can write the
// state directory but lacks the key cannot edit, insert, remove or reorder a
// covered record without contradicting a checkpoint, and cannot make a new
// one.
//
// Checkpoints name no backend: they cover the (seq, hash) head of whichever
// audit backend is in use (the file today).
//
// The signed message is fixed text (no JSON canonicalization involved):
//   "airlock-audit-checkpoint/1\nseq=<decimal>\nhash=<64 hex>\ntime=<RFC 3339>\nkey_id=<32 hex>\n"
// A checkpoint travels as one line of JSON:
//   {"checkpoint":1,"seq":N,"hash":"…","time":"…","key_id":"…","sig":"<128 hex>"}
// key_id = hex of the first 16 bytes of SHA-256 over the raw 32-byte public key.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "airlock/cpp/status.hpp"
#include "kernel/audit/audit_head.h"
#include "kernel/common/secret.h"

namespace airlock {

struct AuditCheckpoint {
  uint64_t seq = 0;
  std::string hash;       // 64 lowercase hex
  std::string time;       // RFC 3339 UTC, microseconds
  std::string key_id;     // 32 lowercase hex
  std::string signature;  // raw 64 bytes
};

// The JSON line for `checkpoint` (no trailing newline).
std::string FormatCheckpointLine(const AuditCheckpoint& checkpoint);

// Parses one checkpoint JSON object (`text` is exactly the object). Checks
// the shape only, not the signature. Errors name what is malformed.
Result<AuditCheckpoint> ParseCheckpointLine(std::string_view text);

// Holds an Ed25519 private key and signs checkpoints. Thread-safe.
class CheckpointSigner {
 public:
  // `private_key_pem` is a PKCS#8 PEM private key ("BEGIN PRIVATE KEY", as
  // `openssl genpkey -algorithm ed25519` and `airlockd audit keygen` write).
  // The bytes are wiped by the caller's Secret; errors never quote them.
  static Result<std::unique_ptr<CheckpointSigner>> FromPem(const Secret& private_key_pem);
  ~CheckpointSigner();
  CheckpointSigner(const CheckpointSigner&) = delete;
  CheckpointSigner& operator=(const CheckpointSigner&) = delete;

  Result<AuditCheckpoint> Sign(const AuditHead& head, std::string time) const;
  const std::string& key_id() const { return key_id_; }
  // The matching public key as PEM (SubjectPublicKeyInfo).
  const std::string& public_key_pem() const { return public_pem_; }

 private:
  struct Key;
  CheckpointSigner(std::unique_ptr<Key> key, std::string key_id, std::string public_pem);
  std::unique_ptr<Key> key_;
  std::string key_id_;
  std::string public_pem_;
};

// Checks checkpoint signatures against a set of trusted public keys.
// Thread-safe once built.
class CheckpointVerifier {
 public:
  CheckpointVerifier();
  ~CheckpointVerifier();
  CheckpointVerifier(CheckpointVerifier&&) noexcept;
  CheckpointVerifier& operator=(CheckpointVerifier&&) noexcept;

  // Adds an Ed25519 public key given as PEM (SubjectPublicKeyInfo).
  Status AddPublicKeyPem(std::string_view pem);
  bool empty() const;
  // The key ids added, for messages.
  std::vector<std::string> key_ids() const;

  // Ok when `checkpoint` carries a valid signature by a trusted key;
  // FailedPrecondition naming the reason (unknown key id, bad signature).
  Status Verify(const AuditCheckpoint& checkpoint) const;

 private:
  struct Keys;
  std::unique_ptr<Keys> keys_;
};

// A fresh Ed25519 key pair as PEM: the private key PKCS#8, the public key
// SubjectPublicKeyInfo.
struct CheckpointKeyPair {
  Secret private_pem;
  std::string public_pem;
  std::string key_id;
};
Result<CheckpointKeyPair> GenerateCheckpointKeyPair();

}  // namespace airlock
