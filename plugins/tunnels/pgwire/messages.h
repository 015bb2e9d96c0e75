// Frontend messages of protocol v3 decoded from their bodies: the startup
// parameters and the messages the session acts on. Pure functions over the
// bytes a client sent, no I/O and no session state, so the session
// (session.cc) and the fuzz target (tests/fuzz/fuzz_pgwire.cc) decode
// through the same code. Every view points into the body passed in.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace airlock::tunnels::pgwire {

// The name/value pairs of a StartupMessage.
struct StartupParameters {
  std::string user;
  std::string database;
  std::string application_name;  // at most 63 bytes, as PostgreSQL keeps it
  // A replication connection was asked for: the session refuses it.
  // Decoding stops at that pair.
  bool replication = false;
  std::vector<std::string> unrecognized;  // "_pq_." protocol options, to be named back
};

// Decodes the pairs after the protocol version; nullopt for an invalid
// layout (a name or value without its NUL, no terminating empty name).
// Parameters other than those above are accepted and ignored.
std::optional<StartupParameters> DecodeStartupParameters(std::string_view pairs);

// 'p' SASLInitialResponse.
struct SaslInitialResponse {
  std::string_view mechanism;
  std::string_view data;
};
std::optional<SaslInitialResponse> DecodeSaslInitialResponse(std::string_view body);

// 'Q' Query: the query string.
std::optional<std::string_view> DecodeQuery(std::string_view body);

// 'P' Parse.
struct ParseMessage {
  std::string_view name;
  std::string_view query;
  std::vector<uint32_t> parameter_types;  // as declared (0: unspecified)
};
std::optional<ParseMessage> DecodeParse(std::string_view body);

// 'B' Bind.
struct BindMessage {
  std::string_view portal;
  std::string_view statement;
  std::vector<int16_t> parameter_formats;
  std::vector<std::optional<std::string_view>> values;  // nullopt: NULL
  std::vector<int16_t> result_formats;
};
std::optional<BindMessage> DecodeBind(std::string_view body);

// 'D' Describe and 'C' Close: a kind byte ('S' statement, 'P' portal, or
// anything else, which the session refuses) and a name.
struct TargetMessage {
  char kind = 0;
  std::string_view name;
};
std::optional<TargetMessage> DecodeTarget(std::string_view body);

// 'E' Execute.
struct ExecuteMessage {
  std::string_view portal;
  int32_t max_rows = 0;
};
std::optional<ExecuteMessage> DecodeExecute(std::string_view body);

}  // namespace airlock::tunnels::pgwire
