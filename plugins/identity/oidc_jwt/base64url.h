// Base64url as JOSE uses it: the SDK's (airlock/cpp/base64url.hpp).
#pragma once

#include "airlock/cpp/base64url.hpp"

namespace airlock::identity::oidc_jwt {

using sdk::Base64UrlDecode;
using sdk::Base64UrlEncode;

}  // namespace airlock::identity::oidc_jwt
