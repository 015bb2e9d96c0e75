// The ALPN protocols of real ClientHellos (made by OpenSSL's client), read
// before any TLS library sees them; anything short, foreign or malformed is
// told apart without reading past what arrived.
#include "kernel/api/client_hello.h"

#include <openssl/bio.h>
#include <openssl/ssl.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace airlock {
namespace {

using State = ClientHelloScan::State;

// The first flight of an OpenSSL TLS client offering `alpn` (wire form;
// empty: no ALPN extension) to `server_name`.
std::string ClientHelloBytes(const std::string& alpn, const std::string& server_name = "kernel") {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL* ssl = SSL_new(ctx);
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl, in, out);
  SSL_set_tlsext_host_name(ssl, server_name.c_str());
  if (!alpn.empty()) {
    SSL_set_alpn_protos(ssl, reinterpret_cast<const unsigned char*>(alpn.data()),
                        static_cast<unsigned>(alpn.size()));
  }
  SSL_set_connect_state(ssl);
  (void)SSL_do_handshake(ssl);  // wants to read the server's answer
  char* data = nullptr;
  const long size = BIO_get_mem_data(out, &data);
  std::string bytes(data, static_cast<size_t>(size));
  SSL_free(ssl);
  SSL_CTX_free(ctx);
  return bytes;
}

TEST(ClientHello, ReadsTheProtocolsARealClientOffers) {
  const std::string hello =
      ClientHelloBytes(std::string("\x02h2\x0f"
                                   "airlock-agent/1",
                                   19));
  ASSERT_GT(hello.size(), 100u);
  const ClientHelloScan scan = ScanClientHello(hello);
  ASSERT_EQ(scan.state, State::kDone);
  EXPECT_EQ(scan.protocols, (std::vector<std::string>{"h2", "airlock-agent/1"}));

  const ClientHelloScan plain = ScanClientHello(ClientHelloBytes(""));
  EXPECT_EQ(plain.state, State::kDone);
  EXPECT_TRUE(plain.protocols.empty()) << "no ALPN extension: nothing offered";
}

TEST(ClientHello, APartialRecordAsksForMoreAndNeverReadsPastIt) {
  const std::string hello =
      ClientHelloBytes(std::string("\x0f"
                                   "airlock-agent/1",
                                   16));
  for (size_t n = 1; n < hello.size(); ++n) {
    // Each prefix is its own allocation: a read past it is a sanitizer error.
    const std::string prefix = hello.substr(0, n);
    const ClientHelloScan scan = ScanClientHello(prefix);
    EXPECT_EQ(scan.state, State::kIncomplete) << n << " of " << hello.size() << " bytes";
  }
  EXPECT_EQ(ScanClientHello("").state, State::kIncomplete);
}

TEST(ClientHello, WhatIsNotAClientHelloIsToldApart) {
  EXPECT_EQ(ScanClientHello("GET / HTTP/1.1\r\nHost: x\r\n\r\n").state, State::kNotHello);
  EXPECT_EQ(ScanClientHello(std::string("\x16\x03\x01\x00\x00", 5)).state, State::kNotHello)
      << "an empty record";
  EXPECT_EQ(ScanClientHello(std::string("\x16\x02\x00\x00\x10", 5)).state, State::kNotHello)
      << "not TLS's record version";
  EXPECT_EQ(ScanClientHello(std::string("\x16\x03\x01\x40\x01", 5)).state, State::kNotHello)
      << "a record longer than TLS allows";
  // A ServerHello (handshake type 2) in a complete record.
  std::string server_hello("\x16\x03\x03\x00\x04\x02\x00\x00\x00", 9);
  EXPECT_EQ(ScanClientHello(server_hello).state, State::kNotHello);
}

// Corrupted real hellos: every byte changed in turn, then random changes.
// The scan may say anything but must stay within the bytes it was given.
TEST(ClientHello, CorruptedHellosAreScannedWithinTheirBytes) {
  const std::string hello =
      ClientHelloBytes(std::string("\x02h2\x0f"
                                   "airlock-agent/1",
                                   19));
  for (size_t i = 0; i < hello.size(); ++i) {
    for (uint8_t value : {uint8_t{0x00}, uint8_t{0xff}, uint8_t{0x7f}}) {
      std::string bad = hello;
      bad[i] = static_cast<char>(value);
      const ClientHelloScan scan = ScanClientHello(bad);
      EXPECT_LE(scan.protocols.size(), 64u);
    }
  }
  std::mt19937 random(20261207);
  for (int round = 0; round < 2000; ++round) {
    std::string bad = hello.substr(0, 5 + random() % (hello.size() - 5));
    for (int k = 0; k < 4; ++k) bad[random() % bad.size()] = static_cast<char>(random());
    (void)ScanClientHello(bad);
  }
}

}  // namespace
}  // namespace airlock
