// Claim lookup and the mapping from verified claims to a principal.
#pragma once

#include <string>
#include <string_view>

#include "airlock/cpp/status.hpp"
#include "airlock/cpp/values.hpp"
#include "config.h"

namespace airlock::identity::oidc_jwt {

// The claim at `path` in `payload`, or null. The whole path is tried first as
// one top-level name (namespaced claims such as "https://example.com/groups"
// contain dots), then as a dotted path through nested objects
// ("realm_access.roles").
const Json* FindClaim(const Json& payload, std::string_view path);

// Builds the principal from verified claims. Unauthenticated with
// "jwt.missing_claim: ..." when the subject is absent, or
// "jwt.bad_claim: ..." when a mapped claim has the wrong type, an unknown
// kind value or exceeds its size bound.
Result<Principal> MapPrincipal(const Json& payload, const ClaimMapping& mapping);

}  // namespace airlock::identity::oidc_jwt
