// The application protocols (ALPN, RFC 7301) a TLS client offers, read from
// its ClientHello before any TLS library sees the connection: what lets one
// port serve both the HTTPS API and the agents' links (which offer
// "airlock-agent/1"). Only the first TLS record is read; a ClientHello that
// does not fit in it (over 16 KiB) offers nothing here. Bounds-checked at
// every step: the bytes come from anyone.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace airlock {

struct ClientHelloScan {
  enum class State {
    kIncomplete,  // more bytes needed (the record is not all here yet)
    kNotHello,    // not a TLS handshake record starting with a ClientHello
    kDone,        // `protocols` holds what it offers (possibly nothing)
  };
  State state = State::kIncomplete;
  std::vector<std::string> protocols;
};

// Scans `bytes`, the first bytes a client sent.
ClientHelloScan ScanClientHello(std::string_view bytes);

// The most bytes ScanClientHello ever needs: one TLS record.
inline constexpr size_t kMaxClientHelloBytes = 5 + 16384;

}  // namespace airlock
