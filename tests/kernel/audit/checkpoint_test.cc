#include "kernel/audit/checkpoint.h"

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <string>

#include <gtest/gtest.h>

#include "kernel/audit/checkpoint_file.h"
#include "tests/kernel/audit/audit_test_util.h"

namespace airlock {
namespace {

const std::string kHash(64, 'a');

CheckpointKeyPair NewPair() {
  auto pair = GenerateCheckpointKeyPair();
  EXPECT_TRUE(pair.ok()) << pair.status().ToString();
  return std::move(pair).value();
}

std::unique_ptr<CheckpointSigner> SignerOf(const CheckpointKeyPair& pair) {
  auto signer = CheckpointSigner::FromPem(pair.private_pem);
  EXPECT_TRUE(signer.ok()) << signer.status().ToString();
  return std::move(signer).value();
}

TEST(CheckpointTest, KeyPairIsEd25519PemWithMatchingKeyId) {
  const auto pair = NewPair();
  EXPECT_TRUE(pair.private_pem.Reveal().starts_with("-----BEGIN PRIVATE KEY-----"));
  EXPECT_TRUE(pair.public_pem.starts_with("-----BEGIN PUBLIC KEY-----"));
  auto signer = SignerOf(pair);
  EXPECT_EQ(signer->key_id(), pair.key_id);
  EXPECT_EQ(signer->key_id().size(), 32u);
  EXPECT_EQ(signer->public_key_pem(), pair.public_pem);
}

TEST(CheckpointTest, SignedCheckpointVerifiesAndRoundTripsThroughItsLine) {
  const auto pair = NewPair();
  auto signer = SignerOf(pair);
  auto checkpoint = signer->Sign(AuditHead{42, kHash}, "2026-01-02T03:04:05.000006Z");
  ASSERT_TRUE(checkpoint.ok());
  CheckpointVerifier verifier;
  ASSERT_TRUE(verifier.AddPublicKeyPem(pair.public_pem).ok());
  EXPECT_TRUE(verifier.Verify(*checkpoint).ok());

  const std::string line = FormatCheckpointLine(*checkpoint);
  EXPECT_TRUE(line.starts_with("{\"checkpoint\":1,\"seq\":42,\"hash\":\"" + kHash)) << line;
  auto parsed = ParseCheckpointLine(line);
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->seq, 42u);
  EXPECT_EQ(parsed->hash, kHash);
  EXPECT_EQ(parsed->time, "2026-01-02T03:04:05.000006Z");
  EXPECT_EQ(parsed->key_id, pair.key_id);
  EXPECT_TRUE(verifier.Verify(*parsed).ok());
}

TEST(CheckpointTest, EveryAlteredFieldBreaksTheSignature) {
  const auto pair = NewPair();
  auto signer = SignerOf(pair);
  const AuditCheckpoint good = *signer->Sign(AuditHead{7, kHash}, "2026-01-02T03:04:05.000006Z");
  CheckpointVerifier verifier;
  ASSERT_TRUE(verifier.AddPublicKeyPem(pair.public_pem).ok());

  AuditCheckpoint c = good;
  c.seq = 8;
  EXPECT_EQ(verifier.Verify(c).code(), StatusCode::kFailedPrecondition);
  c = good;
  c.hash = std::string(64, 'b');
  EXPECT_FALSE(verifier.Verify(c).ok());
  c = good;
  c.time = "2030-01-01T00:00:00.000000Z";
  EXPECT_FALSE(verifier.Verify(c).ok());
  c = good;
  c.signature[10] ^= 1;
  EXPECT_FALSE(verifier.Verify(c).ok());
}

TEST(CheckpointTest, CheckpointOfAnotherKeyIsNotTrusted) {
  const auto ours = NewPair();
  const auto theirs = NewPair();
  CheckpointVerifier verifier;
  ASSERT_TRUE(verifier.AddPublicKeyPem(ours.public_pem).ok());
  auto forged = SignerOf(theirs)->Sign(AuditHead{1, kHash}, "2026-01-01T00:00:00.000000Z");
  ASSERT_TRUE(forged.ok());
  const Status status = verifier.Verify(*forged);
  EXPECT_FALSE(status.ok());
  EXPECT_NE(status.message().find("not a trusted public key"), std::string::npos)
      << status.message();
  // Claiming our key id does not help: the signature is checked with our key.
  forged->key_id = ours.key_id;
  EXPECT_NE(verifier.Verify(*forged).message().find("does not verify"), std::string::npos);
}

TEST(CheckpointTest, SignerRefusesWhatIsNotAnEd25519PrivateKey) {
  EXPECT_EQ(CheckpointSigner::FromPem(Secret(std::string("not a key"))).status().code(),
            StatusCode::kInvalidArgument);
  // A public key is not a private key.
  const auto pair = NewPair();
  EXPECT_FALSE(CheckpointSigner::FromPem(Secret(pair.public_pem)).ok());
  // An EC key is refused by name.
  EVP_PKEY* ec = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  ASSERT_NE(ec, nullptr);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, ec, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const long length = BIO_get_mem_data(bio, &data);
  const auto refused =
      CheckpointSigner::FromPem(Secret(std::string(data, static_cast<size_t>(length))));
  BIO_free(bio);
  EVP_PKEY_free(ec);
  EXPECT_NE(refused.status().message().find("not an Ed25519 key"), std::string::npos)
      << refused.status().ToString();
  // Error messages never quote the key.
  EXPECT_EQ(refused.status().message().find("BEGIN"), std::string::npos);
}

TEST(CheckpointTest, ParserRefusesMalformedLines) {
  const auto pair = NewPair();
  const std::string line = FormatCheckpointLine(
      *SignerOf(pair)->Sign(AuditHead{3, kHash}, "2026-01-01T00:00:00.000000Z"));
  auto json = nlohmann::json::parse(line);
  EXPECT_FALSE(ParseCheckpointLine("not json").ok());
  for (const char* key : {"checkpoint", "seq", "hash", "time", "key_id", "sig"}) {
    auto broken = json;
    broken.erase(key);
    EXPECT_FALSE(ParseCheckpointLine(broken.dump()).ok()) << key;
  }
  auto extra = json;
  extra["who"] = "mallory";
  EXPECT_FALSE(ParseCheckpointLine(extra.dump()).ok());
  auto short_sig = json;
  short_sig["sig"] = "abcd";
  EXPECT_FALSE(ParseCheckpointLine(short_sig.dump()).ok());
  // A time that is not RFC 3339 text would not format back to a line that
  // parses: a quote inside it would end the string early.
  for (const char* time : {"2026-01-01T00:00:00\"Z", "2026\\01", "now\n", "2026 01 01"}) {
    auto odd_time = json;
    odd_time["time"] = time;
    EXPECT_FALSE(ParseCheckpointLine(odd_time.dump()).ok()) << time;
  }
}

TEST(CheckpointFileTest, ShippedCheckpointsAreFoundInsideOtherLogLines) {
  testing_audit::ScratchDir dir;
  const auto pair = NewPair();
  auto signer = SignerOf(pair);
  const std::string a =
      FormatCheckpointLine(*signer->Sign(AuditHead{1, kHash}, "2026-01-01T00:00:00.000000Z"));
  const std::string b =
      FormatCheckpointLine(*signer->Sign(AuditHead{2, kHash}, "2026-01-01T00:00:01.000000Z"));
  testing_audit::WriteLines(
      dir.File("syslog"),
      {"Jan  1 00:00:00 host airlockd[12]: starting",
       "Jan  1 00:00:00 host airlockd[12]: " + std::string(kShippedCheckpointTag) + a,
       "[2026-01-01 00:00:01.000] [info] " + std::string(kShippedCheckpointTag) + b + "\r",
       "Jan  1 00:00:02 host airlockd[12]: audit checkpoint {broken"});
  auto found = ReadShippedCheckpoints(dir.File("syslog"));
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  ASSERT_EQ(found->checkpoints.size(), 2u);
  EXPECT_EQ(found->checkpoints[0].checkpoint.seq, 1u);
  EXPECT_EQ(found->checkpoints[0].line, 2u);
  EXPECT_EQ(found->checkpoints[1].checkpoint.seq, 2u);
  EXPECT_EQ(ReadShippedCheckpoints(dir.File("absent")).status().code(), StatusCode::kNotFound);

  // The checkpoints file itself is strict: a stray line is a problem.
  testing_audit::WriteLines(dir.File("cp"), {a, "junk", b});
  auto strict = ReadCheckpointFile(dir.File("cp"));
  ASSERT_TRUE(strict.ok());
  EXPECT_EQ(strict->bad_line, 2u);
}

}  // namespace
}  // namespace airlock
