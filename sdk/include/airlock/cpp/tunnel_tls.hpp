// The TLS server context of a tunnel's listener from its `tls` settings
// (tunnel_kit.hpp): TLS 1.2 or later, no compression, no renegotiation, the
// key checked against the certificate. Header-only; needs Boost.Asio's SSL
// support and OpenSSL (link Boost::headers, OpenSSL::SSL and OpenSSL::Crypto).
#pragma once

#include <openssl/ssl.h>

#include <string>
#include <string_view>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl/context.hpp>

#include "airlock/cpp/status.hpp"
#include "airlock/cpp/tunnel_kit.hpp"

namespace airlock::sdk::tunnel {

// Whether `text` is an IPv4 or IPv6 address (ReadListenerSettings's check
// of listen_address, with Boost.Asio's parser).
inline bool IsIpAddress(const std::string& text) {
  boost::system::error_code ec;
  boost::asio::ip::make_address(text, ec);
  return !ec;
}

// Errors name the key under `where` ("tunnel configuration.tls...") and the
// file, never its contents.
inline Result<boost::asio::ssl::context> MakeServerTlsContext(const TlsFiles& files,
                                                              std::string_view where) {
  namespace ssl = boost::asio::ssl;
  ssl::context tls(ssl::context::tls_server);
  tls.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                  ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                  ssl::context::single_dh_use | ssl::context::no_compression);
  SSL_CTX_set_min_proto_version(tls.native_handle(), TLS1_2_VERSION);
  SSL_CTX_set_options(tls.native_handle(), SSL_OP_NO_RENEGOTIATION);
  const std::string at(where);
  boost::system::error_code ec;
  tls.use_certificate_chain_file(files.certificate_file, ec);
  if (ec) {
    return Status::InvalidArgument(at + ".tls.certificate_file: cannot load '" +
                                   files.certificate_file + "': " + ec.message());
  }
  tls.use_private_key_file(files.private_key_file, ssl::context::pem, ec);
  if (ec) {
    return Status::InvalidArgument(at + ".tls.private_key_file: cannot load '" +
                                   files.private_key_file + "': " + ec.message());
  }
  if (SSL_CTX_check_private_key(tls.native_handle()) != 1) {
    return Status::InvalidArgument(at +
                                   ".tls.private_key_file does not match tls.certificate_file");
  }
  return tls;
}

}  // namespace airlock::sdk::tunnel
