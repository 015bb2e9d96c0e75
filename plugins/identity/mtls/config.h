// Configuration of the mtls identity provider: the CA bundle client
// certificates must chain to, where the subject comes from (a SAN of a given
// type, or the CN), and how subjects map to kind, groups and tenant.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "airlock/cpp/host.hpp"
#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"

namespace airlock::identity::mtls {

enum class SubjectSource { kCommonName, kSanUri, kSanDns, kSanEmail };

// Overrides for subjects matching `pattern` (a glob: `*` any run of
// characters, `?` one character). Unset members keep the defaults.
struct SubjectMapping {
  std::string pattern;
  std::optional<PrincipalKind> kind;
  std::optional<std::vector<std::string>> groups;
  std::optional<std::string> tenant;
};

struct MtlsConfig {
  std::string ca_file;  // absolute path of the PEM bundle of trusted CAs
  SubjectSource subject_from = SubjectSource::kCommonName;
  std::string subject_prefix;  // required prefix of the value, stripped; empty = none
  PrincipalKind kind = PrincipalKind::kService;
  std::vector<std::string> groups;
  std::string tenant;
  std::vector<SubjectMapping> mappings;  // first match wins
  bool require_client_auth_eku = true;   // leaf must list extendedKeyUsage clientAuth
  size_t max_chain_certificates = 8;     // certificates accepted from the peer
  size_t max_pem_bytes = 64 * 1024;
};

// Parses and validates the whole configuration (keys in README.md); relative
// paths resolve against the kernel configuration's directory. Errors are
// InvalidArgument naming the key.
Result<MtlsConfig> ParseConfig(const Json& config, const sdk::Host& host);

// Glob match of `text` against `pattern` (`*`, `?`); linear time.
bool GlobMatch(std::string_view pattern, std::string_view text);

}  // namespace airlock::identity::mtls
